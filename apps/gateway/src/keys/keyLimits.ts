// Requests and tokens per minute of a virtual key, cluster-wide. Counts are kept
// per key and minute bucket (`krpm:<key>:<bucket start>`, `ktpm:...`) in a Tally:
// this process's own map, or the cluster's per-node counters in etcd (each node
// adds its own, every node sums all), like deployment rpm (cluster/clusterRate.ts).
// The window is sliding: the current bucket plus the previous one weighted by how
// much of it is still inside the last minute. A request is admitted while the
// key's count, with this request, stays within rpm, and while the tokens used stay
// under tpm; tokens are added when a request ends, from its reported usage.
// Overspend bound in a cluster: the others' counts arrive late by at most the
// counter sync interval, so N nodes each admitting R requests/s overshoot rpm by
// at most counterSyncMs x R x (N - 1) (docs/keys.md).

import { InferenceError } from '@inference/core';
import type { KeyRegistry } from './keyRegistry.js';

export interface Tally {
  /** `expiresAt`: when the scope no longer counts (the cluster's counters drop it then). */
  add(scope: string, n: number, expiresAt: number): void;
  sum(scope: string): number;
}

const BUCKET_MS = 60_000;

/** One process's counts; only the current and previous bucket are kept. */
export class LocalTally implements Tally {
  private readonly counts = new Map<string, number>();
  private newest = 0;

  add(scope: string, n: number): void {
    this.counts.set(scope, (this.counts.get(scope) ?? 0) + n);
    const bucket = Number(scope.slice(scope.lastIndexOf(':') + 1));
    if (bucket > this.newest) {
      this.newest = bucket;
      for (const s of this.counts.keys()) {
        if (Number(s.slice(s.lastIndexOf(':') + 1)) < bucket - BUCKET_MS) this.counts.delete(s);
      }
    }
  }

  sum(scope: string): number {
    return this.counts.get(scope) ?? 0;
  }
}

export class KeyLimits {
  private tally: Tally = new LocalTally();

  constructor(private readonly registry: KeyRegistry, private readonly now: () => number = Date.now) {}

  /** Cluster mode: count in the cluster's counters from now on. */
  attach(tally: Tally): void {
    this.tally = tally;
  }

  /** Whether a key (by name) has rpm or tpm limits: the request path skips everything else. */
  limited(name: string): boolean {
    const k = this.registry.get(name);
    return k !== undefined && (k.rpm !== undefined || k.tpm !== undefined);
  }

  private windowed(kind: 'krpm' | 'ktpm', name: string, now: number): { used: number; bucket: number; current: number; previous: number } {
    const bucket = Math.floor(now / BUCKET_MS) * BUCKET_MS;
    const current = this.tally.sum(`${kind}:${name}:${String(bucket)}`);
    const previous = this.tally.sum(`${kind}:${name}:${String(bucket - BUCKET_MS)}`);
    const inside = 1 - (now - bucket) / BUCKET_MS;
    return { used: current + previous * inside, bucket, current, previous };
  }

  /** Counts one request of key `name`, or throws rate_limited (429, retry-after) when its rpm or tpm is spent. */
  admit(name: string): void {
    const k = this.registry.get(name);
    if (k === undefined) return;
    const now = this.now();
    if (k.rpm !== undefined) {
      const w = this.windowed('krpm', name, now);
      if (w.used + 1 > k.rpm) throw refusal(name, 'rpm', retryAfter(w, k.rpm - 1, now));
    }
    if (k.tpm !== undefined) {
      const w = this.windowed('ktpm', name, now);
      if (w.used >= k.tpm) throw refusal(name, 'tpm', retryAfter(w, k.tpm, now));
    }
    const bucket = Math.floor(now / BUCKET_MS) * BUCKET_MS;
    // A bucket counts while it is the current or the previous one.
    if (k.rpm !== undefined) this.tally.add(`krpm:${name}:${String(bucket)}`, 1, bucket + 2 * BUCKET_MS);
  }

  /** Adds the tokens a request of key `name` used. */
  used(name: string, tokens: number): void {
    const k = this.registry.get(name);
    if (k?.tpm === undefined || !(tokens > 0)) return;
    const bucket = Math.floor(this.now() / BUCKET_MS) * BUCKET_MS;
    this.tally.add(`ktpm:${name}:${String(bucket)}`, tokens, bucket + 2 * BUCKET_MS);
  }
}

/** When the weighted count falls to `room`: as the previous bucket slides out, or at the next bucket. */
function retryAfter(w: { bucket: number; current: number; previous: number }, room: number, now: number): number {
  const end = w.bucket + BUCKET_MS;
  if (w.current > room || w.previous === 0) return Math.max(1000, end - now);
  const t = w.bucket + BUCKET_MS * (1 - (room - w.current) / w.previous);
  return Math.max(1000, Math.ceil(t - now));
}

function refusal(name: string, limit: 'rpm' | 'tpm', retryAfterMs: number): InferenceError {
  return new InferenceError('rate_limited', `API key '${name}' has used its ${limit} limit for this minute`, { retryAfterMs });
}
