// Where the shared reliability state lives: one limiter gate per (provider, API key,
// model) and one breaker per (provider, endpoint), shared by every replica that
// talks to the same upstream with the same key. A runtime owns one registry and
// hands it to its remote replicas. The API key is never stored: keys are hashed.

import { createHash } from 'node:crypto';
import type { DeploymentSpec } from '@inference/core';
import { type BreakerState, CircuitBreaker } from './breaker.js';
import { type Clock, LimiterGate, SYSTEM_CLOCK } from './gate.js';
import { RATE_WINDOW_MS, type RateShare } from './rateLimiter.js';

export interface BreakerListener {
  (key: string, from: BreakerState, to: BreakerState): void;
}

function keyHash(apiKey: string | undefined): string {
  return apiKey === undefined ? 'none' : createHash('sha256').update(apiKey).digest('hex').slice(0, 16);
}

function origin(spec: DeploymentSpec): string {
  try {
    return new URL(spec.endpoint ?? '').origin + new URL(spec.endpoint ?? '').pathname;
  } catch {
    return spec.endpoint ?? '';
  }
}

/** A limiter counts in one window: a deployment with another `rateWindowMs` gets a limiter of its own. */
function gateKey(spec: DeploymentSpec, apiKey: string | undefined): string {
  const w = windowOf(spec);
  return `${spec.runtime}|${keyHash(apiKey)}|${origin(spec)}|${spec.model ?? spec.name}${w === RATE_WINDOW_MS ? '' : `|w${String(w)}`}`;
}

function windowOf(spec: DeploymentSpec): number {
  return spec.remote.rateWindowMs ?? RATE_WINDOW_MS;
}

function breakerKey(spec: DeploymentSpec): string {
  return `${spec.runtime}|${origin(spec)}`;
}

export class ReliabilityRegistry {
  private readonly gates = new Map<string, LimiterGate>();
  private readonly breakers = new Map<string, CircuitBreaker>();
  private readonly listeners = new Set<BreakerListener>();
  private share: RateShare | undefined;

  constructor(readonly clock: Clock = SYSTEM_CLOCK) {}

  /** The limiter of (provider, key, model); its limits follow the latest spec that asked. */
  gate(spec: DeploymentSpec, apiKey: string | undefined): LimiterGate {
    const key = gateKey(spec, apiKey);
    const config = { rpm: spec.remote.rpm, tpm: spec.remote.tpm, maxConcurrent: spec.remote.maxConcurrent };
    let g = this.gates.get(key);
    if (g === undefined) {
      g = new LimiterGate(config, this.clock, windowOf(spec));
      if (this.share !== undefined) g.limiter.attachShare(key, this.share);
      this.gates.set(key, g);
    } else {
      g.limiter.reconfigure(config, this.clock.now());
    }
    return g;
  }

  /** Cluster mode: every limiter (present and future) counts the other nodes' admissions. */
  shareRates(share: RateShare): void {
    this.share = share;
    for (const [key, g] of this.gates) g.limiter.attachShare(key, share);
  }

  /**
   * Drops the limiters and breakers no deployment in `live` uses any more (its
   * deployments removed or moved to another upstream), so the registry holds what
   * exists. Replicas still draining keep the objects they hold. Returns how many went.
   */
  retain(live: readonly { readonly spec: DeploymentSpec; readonly apiKey: string | undefined }[]): number {
    const gates = new Set(live.map((l) => gateKey(l.spec, l.apiKey)));
    const breakers = new Set(live.map((l) => breakerKey(l.spec)));
    let dropped = 0;
    for (const k of [...this.gates.keys()]) if (!gates.has(k)) { this.gates.delete(k); dropped++; }
    for (const k of [...this.breakers.keys()]) if (!breakers.has(k)) { this.breakers.delete(k); dropped++; }
    return dropped;
  }

  /** Limiters and breakers held (for tests and the soak). */
  size(): { gates: number; breakers: number } {
    return { gates: this.gates.size, breakers: this.breakers.size };
  }

  /** The breaker of (provider, endpoint). */
  breaker(spec: DeploymentSpec): { key: string; breaker: CircuitBreaker } {
    const key = breakerKey(spec);
    let b = this.breakers.get(key);
    if (b === undefined) {
      b = new CircuitBreaker(spec.remote.breaker, (from, to) => {
        for (const l of this.listeners) l(key, from, to);
      });
      this.breakers.set(key, b);
    } else {
      b.reconfigure(spec.remote.breaker);
    }
    return { key, breaker: b };
  }

  /** Tells `l` about every breaker transition; returns the unsubscribe function. */
  onBreakerChange(l: BreakerListener): () => void {
    this.listeners.add(l);
    return () => { this.listeners.delete(l); };
  }
}

/** The registry used when a runtime passes none: process-wide, so replicas still share. */
export const DEFAULT_REGISTRY = new ReliabilityRegistry();
