// MetricsActor: per-deployment counters and histograms, rendered in Prometheus
// text format, plus the live summary the status page reads (rates over the last
// minute, spend since start, recent errors). Observations arrive by `tell` (fire
// and forget, off the request's critical path); scrapes `ask` for the rendered
// text, and a scrape first samples every replica's load, so load gauges are exact
// at scrape time and replicas that are gone leave the export.
//
// The per-request families are plain accumulators (requestMeters.ts) rendered at
// scrape time; the rarer replica, engine and remote events go to prom-client
// (replicaMetrics.ts), as do the process metrics.

import type { RoutingPolicy } from '@inference/core';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { Actor, type ActorRef, type Reply } from './kernel.js';
import type { RouteOutcome } from './prefixRouting.js';
import { type Rates, RateWindow } from './rateWindow.js';
import { type RecentError, RecentErrors } from './recentErrors.js';
import { type EngineStats, type RemoteEventKind, ReplicaMetrics, type ReplicaSample, replicaKey } from './replicaMetrics.js';
import { RequestMeters, type RequestOutcome } from './requestMeters.js';
import { Timeline, type TimelineSample, type TimelineSeries } from './timeline.js';

export { E2E_BUCKETS, type Endpoint, ITL_BUCKETS, TTFT_BUCKETS, costUsd } from './requestMeters.js';
export type { ReplicaSample } from './replicaMetrics.js';

export type MetricsMsg =
  | { type: 'started'; deployment: string }
  | (RequestOutcome & {
      type: 'finished';
      /** The client-safe message of `error` (for the recent-errors list). */
      errorMessage?: string;
    })
  /** Inter-token gaps of a long stream, flushed before it finishes (bounds the request's buffer). */
  | { type: 'interToken'; deployment: string; gapsMs: readonly number[] }
  | { type: 'restart'; deployment: string; replica: string }
  /** An engine host process ended without being closed; `reason` is from a closed set (engine-local hostExit.ts). */
  | { type: 'hostExit'; deployment: string; reason: string }
  | { type: 'replicaState'; deployment: string; replica: string; state: string; on: boolean }
  | (EngineStats & { type: 'engineStats' })
  | { type: 'fallback'; deployment: string; to: string }
  /** One pick of the routing table (DpCoordinatorActor). */
  | { type: 'routed'; deployment: string; policy: RoutingPolicy; outcome: RouteOutcome }
  /** From a remote replica's reliability layer; `label` is the error kind (retry) or the limit (limited). */
  | { type: 'remote'; deployment: string; event: RemoteEventKind; label?: string }
  | { type: 'breakerState'; deployment: string; state: string; states: readonly string[] }
  /** The status page's charts (timeline.ts); deployments outside `live`, when given, are forgotten first. */
  | { type: 'timeline'; live?: readonly string[]; reply: Reply<TimelineSnapshot> }
  /** The deployment is gone: its series go too (/metrics holds what exists). */
  | { type: 'deploymentRemoved'; deployment: string }
  | { type: 'render'; reply: Reply<{ contentType: string; body: string }> }
  | { type: 'summary'; reply: Reply<MetricsSummary> };

/** The per-request observations: what a MetricsRecorder takes in place. */
export type RequestMetricsMsg = Extract<MetricsMsg, { type: 'started' | 'finished' | 'interToken' | 'fallback' | 'routed' }>;

/** Takes a request's observations; false when the metrics are gone (the observation dropped), as `tell` answers. */
export interface MetricsRecorder {
  record(m: RequestMetricsMsg): boolean;
}

/** Every deployment's charts at `time` (epoch ms). */
export interface TimelineSnapshot {
  readonly time: number;
  readonly deployments: Record<string, TimelineSeries>;
}

export interface DeploymentSummary {
  readonly rates: Rates;
  readonly inFlight: number;
  /** Since the process started, for requests this deployment served. */
  readonly costUsd: number;
  readonly tokensIn: number;
  readonly tokensOut: number;
  readonly restarts: number;
}

/** What the status page needs that only the metrics know. */
export interface MetricsSummary {
  /** Epoch ms of the summary. */
  readonly time: number;
  readonly windowSeconds: number;
  readonly deployments: Record<string, DeploymentSummary>;
  /** Newest first. */
  readonly errors: RecentError[];
}

export interface MetricsOptions {
  /** Process metrics (CPU, memory, event loop) under inference_process_. */
  readonly defaultMetrics?: boolean;
  /** Every replica's load, asked at each scrape. */
  readonly sample?: () => Promise<readonly ReplicaSample[]>;
  /** Epoch-ms clock (tests). */
  readonly now?: () => number;
  /** Recent errors kept for the status page. */
  readonly recentErrors?: number;
}

export class MetricsActor extends Actor<MetricsMsg> {
  readonly registry = new Registry();
  /** The per-request families, by deployment. */
  private readonly meters = new RequestMeters();
  private readonly replicas = new ReplicaMetrics(this.registry);
  private readonly sample: (() => Promise<readonly ReplicaSample[]>) | undefined;
  private readonly now: () => number;
  private readonly rates: RateWindow;
  private readonly recent: RecentErrors;
  private readonly timeline = new Timeline();
  /** Removed deployments whose requests are still in flight: forgotten when the last one finishes. */
  private readonly forgetting = new Set<string>();

  constructor(options: MetricsOptions | boolean = {}) {
    super();
    const o: MetricsOptions = typeof options === 'boolean' ? { defaultMetrics: options } : options;
    if (o.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'inference_process_' });
    this.sample = o.sample;
    this.now = o.now ?? Date.now;
    this.rates = new RateWindow(60, this.now());
    this.recent = new RecentErrors(o.recentErrors ?? 50);
  }

  /** Synchronous but for a scrape and a removal (most messages are per-request counters: no promise each). */
  receive(m: MetricsMsg): void | Promise<void> {
    switch (m.type) {
      case 'started':
      case 'finished':
      case 'interToken':
      case 'fallback':
      case 'routed':
        return this.request(m);
      case 'restart':
      case 'hostExit':
      case 'replicaState':
      case 'engineStats':
      case 'remote':
      case 'breakerState':
        this.replica(m);
        return;
      case 'deploymentRemoved':
        return this.removed(m.deployment);
      case 'timeline':
        m.reply.resolve(this.charts(m.live));
        return;
      case 'render':
        return this.render(m.reply);
      case 'summary':
        m.reply.resolve(this.summary());
        return;
      default: {
        const never: never = m;
        throw new Error(`unknown message ${JSON.stringify(never)}`);
      }
    }
  }

  /**
   * A request's observation taken in place (localRecorder, below), as its message
   * would be. Returns the removal of a deployment whose last request this was.
   */
  record(m: RequestMetricsMsg): Promise<void> | undefined {
    return this.request(m);
  }

  /** Per-request observations: plain accumulators (requestMeters.ts). */
  private request(m: RequestMetricsMsg): Promise<void> | undefined {
    switch (m.type) {
      case 'started':
        this.meters.started(m.deployment);
        return undefined;
      case 'finished':
        return this.finished(m);
      case 'interToken':
        this.meters.interToken(m.deployment, m.gapsMs);
        return undefined;
      case 'fallback':
        this.meters.fallback(m.deployment, m.to);
        return undefined;
      case 'routed':
        this.meters.routed(m.deployment, m.policy, m.outcome);
        return undefined;
      default: {
        const never: never = m;
        throw new Error(`unknown message ${JSON.stringify(never)}`);
      }
    }
  }

  /** Replica, engine and remote reliability events (replicaMetrics.ts). */
  private replica(m: Extract<MetricsMsg, { type: 'restart' | 'hostExit' | 'replicaState' | 'engineStats' | 'remote' | 'breakerState' }>): void {
    switch (m.type) {
      case 'hostExit':
        this.replicas.hostExit(m.deployment, m.reason);
        return;
      case 'restart':
        this.replicas.restart(m.deployment, m.replica);
        this.meters.of(m.deployment).restarts++;
        return;
      case 'replicaState':
        this.replicas.replicaState(m.deployment, m.replica, m.state, m.on);
        return;
      case 'engineStats':
        this.replicas.engineStats(m);
        return;
      case 'remote':
        this.replicas.remote(m.deployment, m.event, m.label);
        return;
      case 'breakerState':
        this.replicas.breaker(m.deployment, m.state, m.states);
        return;
      default: {
        const never: never = m;
        throw new Error(`unknown message ${JSON.stringify(never)}`);
      }
    }
  }

  /** Returns the pending removal of a deployment whose last request this was. */
  private finished(m: Extract<MetricsMsg, { type: 'finished' }>): Promise<void> | undefined {
    const failed = m.cancelled !== true && m.error !== undefined;
    this.meters.finished(m, failed);
    const now = this.now();
    const u = m.usage;
    const sample: TimelineSample = {
      requests: 1, errors: failed ? 1 : 0, tokensIn: u?.promptTokens ?? 0, tokensOut: u?.completionTokens ?? 0, ttftMs: m.ttftMs,
    };
    this.rates.add(now, m.deployment, sample);
    this.timeline.add(now, m.deployment, sample);
    if (failed && m.error !== undefined) this.recent.add({ time: now, deployment: m.deployment, kind: m.error, message: m.errorMessage ?? m.error });
    if (this.forgetting.has(m.deployment) && (this.meters.get(m.deployment)?.inFlight ?? 0) === 0) return this.forget(m.deployment);
    return undefined;
  }

  private removed(deployment: string): Promise<void> | undefined {
    // Requests still in flight would re-create its series (and drive the in-flight gauge below 0): wait for them.
    if ((this.meters.get(deployment)?.inFlight ?? 0) > 0) {
      this.forgetting.add(deployment);
      return undefined;
    }
    return this.forget(deployment);
  }

  /** Removes every series labelled with `deployment` (or naming it as a fallback target), its totals and its charts. */
  private forget(deployment: string): Promise<void> {
    this.forgetting.delete(deployment);
    this.meters.forget(deployment);
    this.timeline.remove(deployment);
    return this.replicas.forget(deployment);
  }

  private async render(reply: Extract<MetricsMsg, { type: 'render' }>['reply']): Promise<void> {
    await this.sampleReplicas();
    const body = await this.registry.metrics();
    reply.resolve({ contentType: this.registry.contentType, body: `${body}${this.meters.render()}` });
  }

  /** Sets the load gauges from the routing table and drops series of replicas that are gone. */
  private async sampleReplicas(): Promise<void> {
    if (this.sample === undefined) return;
    let samples: readonly ReplicaSample[];
    try {
      samples = await this.sample();
    } catch {
      // A scrape still answers with what is known; the load gauges keep their last values.
      return;
    }
    this.meters.retainReplicas(this.replicas.sample(samples), replicaKey);
  }

  private charts(live: readonly string[] | undefined): TimelineSnapshot {
    if (live !== undefined) this.timeline.retain(new Set(live));
    const now = this.now();
    const deployments: Record<string, TimelineSeries> = {};
    for (const name of this.timeline.deployments()) {
      const series = this.timeline.series(now, name);
      if (series !== undefined) deployments[name] = series;
    }
    return { time: now, deployments };
  }

  private summary(): MetricsSummary {
    const now = this.now();
    const rates = this.rates.rates(now);
    const zero: Rates = { requestsPerSec: 0, errorsPerSec: 0, tokensPerSec: 0, outputTokensPerSec: 0 };
    const deployments: Record<string, DeploymentSummary> = {};
    const names = new Set([...this.meters.names(), ...rates.keys()]);
    for (const name of names) {
      const t = this.meters.get(name);
      deployments[name] = {
        rates: rates.get(name) ?? zero,
        inFlight: t?.inFlight ?? 0,
        costUsd: t?.costUsd ?? 0,
        tokensIn: t?.servedTokensIn ?? 0,
        tokensOut: t?.servedTokensOut ?? 0,
        restarts: t?.restarts ?? 0,
      };
    }
    return { time: now, windowSeconds: 60, deployments, errors: this.recent.list() };
  }
}

/**
 * The metrics recorded in place, without a message per observation: every
 * per-request handler is plain synchronous arithmetic on the accumulators, and a
 * scrape reads them in one synchronous step after its awaits, so taking an
 * observation while a scrape waits on the replicas is safe. Nothing is queued,
 * so nothing can be dropped: `started` and `finished` always balance while the
 * actor lives.
 */
export function localRecorder(ref: ActorRef<MetricsMsg>, actor: MetricsActor): MetricsRecorder {
  return {
    record: (m) => {
      if (!ref.alive) return false;
      // A deployment's removal waiting on its last request: its series go (asynchronously) now.
      void actor.record(m)?.catch(() => undefined);
      return true;
    },
  };
}
