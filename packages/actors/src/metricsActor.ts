// MetricsActor: per-deployment counters and histograms, rendered in Prometheus
// text format, plus the live summary the status page reads (rates over the last
// minute, spend since start, recent errors). Observations arrive by `tell` (fire
// and forget, off the request's critical path); scrapes `ask` for the rendered
// text, and a scrape first samples every replica's load, so load gauges are exact
// at scrape time and replicas that are gone leave the export.

import type { ErrorKind, PriceSpec, ReplicaLoad, RoutingPolicy, Usage } from '@inference/core';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { Actor, type Reply } from './kernel.js';
import { METRIC } from './metricNames.js';
import type { RouteOutcome } from './prefixRouting.js';
import { type Rates, RateWindow } from './rateWindow.js';
import { type RecentError, RecentErrors } from './recentErrors.js';
import { Timeline, type TimelineSeries } from './timeline.js';

export type Endpoint = 'chat' | 'completion' | 'embedding' | 'messages' | 'responses';

export type MetricsMsg =
  | { type: 'started'; deployment: string }
  | {
      type: 'finished';
      deployment: string;
      endpoint: Endpoint;
      error?: ErrorKind;
      usage?: Usage;
      ttftMs?: number;
      durationMs: number;
      retries: number;
      /** The client went away before the end. */
      cancelled?: boolean;
      /** The replica that served (or last tried) the request. */
      replica?: string;
      /** The deployment that served (a fallback, or `deployment`); cost is counted against it. */
      served?: string;
      /** The serving deployment's price, where it has one. */
      price?: PriceSpec;
      /** Gaps between consecutive chunks of a choice, ms (streamed output). */
      interTokenMs?: readonly number[];
      /** The client-safe message of `error` (for the recent-errors list). */
      errorMessage?: string;
    }
  /** Inter-token gaps of a long stream, flushed before it finishes (bounds the request's buffer). */
  | { type: 'interToken'; deployment: string; gapsMs: readonly number[] }
  | { type: 'restart'; deployment: string; replica: string }
  | { type: 'replicaState'; deployment: string; replica: string; state: string; on: boolean }
  | { type: 'engineStats'; deployment: string; replica: string; active: number; lastStepSequences: number; maxStepSequences: number; kvCellsUsed: number; maxSequences?: number }
  | { type: 'fallback'; deployment: string; to: string }
  /** One pick of the routing table (DpCoordinatorActor). */
  | { type: 'routed'; deployment: string; policy: RoutingPolicy; outcome: RouteOutcome }
  /** From a remote replica's reliability layer; `label` is the error kind (retry) or the limit (limited). */
  | { type: 'remote'; deployment: string; event: 'retry' | 'limited' | 'upstreamRateLimited' | 'breakerRejected'; label?: string }
  | { type: 'breakerState'; deployment: string; state: string; states: readonly string[] }
  /** The status page's charts (timeline.ts); deployments outside `live`, when given, are forgotten first. */
  | { type: 'timeline'; live?: readonly string[]; reply: Reply<TimelineSnapshot> }
  /** The deployment is gone: its series go too (/metrics holds what exists). */
  | { type: 'deploymentRemoved'; deployment: string }
  | { type: 'render'; reply: Reply<{ contentType: string; body: string }> }
  | { type: 'summary'; reply: Reply<MetricsSummary> };

/** Every deployment's charts at `time` (epoch ms). */
export interface TimelineSnapshot {
  readonly time: number;
  readonly deployments: Record<string, TimelineSeries>;
}

/** One replica's load as the routing table sees it, sampled at scrape time. */
export interface ReplicaSample {
  readonly deployment: string;
  readonly replica: string;
  readonly load: ReplicaLoad;
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

// Bucket bounds in seconds, for LLM serving: first tokens from a few ms (cache
// hit, tiny model) to a minute (long prompt, busy upstream); inter-token gaps from
// sub-ms (an upstream that sends bursts) through the 10–100 ms of typical decoding
// to multi-second stalls; whole requests up to the 600 s default total timeout.
export const TTFT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
export const ITL_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2.5, 5];
export const E2E_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

/** USD for `usage` at `price` (per million tokens). */
export function costUsd(usage: Usage, price: PriceSpec): number {
  return (usage.promptTokens * price.inputPerMTok + usage.completionTokens * price.outputPerMTok) / 1e6;
}

interface Totals {
  costUsd: number;
  tokensIn: number;
  tokensOut: number;
  inFlight: number;
  restarts: number;
}

export class MetricsActor extends Actor<MetricsMsg> {
  readonly registry = new Registry();
  private readonly requests = new Counter({ name: METRIC.requests, help: 'Requests finished, by outcome', labelNames: ['deployment', 'endpoint', 'outcome'], registers: [this.registry] });
  private readonly errors = new Counter({ name: METRIC.errors, help: 'Requests failed, by error kind', labelNames: ['deployment', 'kind'], registers: [this.registry] });
  private readonly tokensIn = new Counter({ name: METRIC.tokensIn, help: 'Prompt tokens', labelNames: ['deployment'], registers: [this.registry] });
  private readonly tokensOut = new Counter({ name: METRIC.tokensOut, help: 'Completion tokens', labelNames: ['deployment'], registers: [this.registry] });
  private readonly tokensCached = new Counter({ name: METRIC.tokensCached, help: 'Prompt tokens the engine reused from its prefix cache (included in the prompt tokens)', labelNames: ['deployment'], registers: [this.registry] });
  private readonly routingDecisions = new Counter({ name: METRIC.routingDecisions, help: 'Replica picks, by routing policy and outcome (hit, miss, spill: prefix policy; none: others)', labelNames: ['deployment', 'policy', 'outcome'], registers: [this.registry] });
  private readonly routingPrefixHits = new Counter({ name: METRIC.routingPrefixHits, help: 'Picks sent to a replica taken to hold part of the prompt in its cache', labelNames: ['deployment'], registers: [this.registry] });
  private readonly ttft = new Histogram({ name: METRIC.ttft, help: 'Time to first token', labelNames: ['deployment'], buckets: TTFT_BUCKETS, registers: [this.registry] });
  private readonly e2e = new Histogram({ name: METRIC.e2e, help: 'Request duration, end to end', labelNames: ['deployment'], buckets: E2E_BUCKETS, registers: [this.registry] });
  private readonly inFlight = new Gauge({ name: METRIC.inFlight, help: 'Requests in flight', labelNames: ['deployment'], registers: [this.registry] });
  private readonly retries = new Counter({ name: METRIC.retries, help: 'Retries on another replica before the first token', labelNames: ['deployment'], registers: [this.registry] });
  private readonly replicaRequests = new Counter({ name: METRIC.replicaRequests, help: 'Requests served, by replica', labelNames: ['deployment', 'replica'], registers: [this.registry] });
  private readonly restarts = new Counter({ name: METRIC.replicaRestarts, help: 'Replica context restarts', labelNames: ['deployment', 'replica'], registers: [this.registry] });
  private readonly replicaState = new Gauge({ name: METRIC.replicaState, help: 'Replica state (1 for the current state)', labelNames: ['deployment', 'replica', 'state'], registers: [this.registry] });
  private readonly stepSequences = new Gauge({ name: METRIC.stepSequences, help: 'Sequences that shared the last decode step', labelNames: ['deployment', 'replica'], registers: [this.registry] });
  private readonly maxStepSequences = new Gauge({ name: METRIC.maxStepSequences, help: 'Most sequences that shared one decode step since the engine started', labelNames: ['deployment', 'replica'], registers: [this.registry] });
  private readonly engineActive = new Gauge({ name: METRIC.engineActive, help: 'Sequences active in the engine', labelNames: ['deployment', 'replica'], registers: [this.registry] });
  private readonly kvCells = new Gauge({ name: METRIC.kvCellsUsed, help: 'KV cache cells in use', labelNames: ['deployment', 'replica'], registers: [this.registry] });

  private readonly fallbacks = new Counter({ name: METRIC.fallbacks, help: 'Requests sent to a fallback deployment before the first token', labelNames: ['deployment', 'to'], registers: [this.registry] });
  private readonly remoteRetries = new Counter({ name: METRIC.remoteRetries, help: 'Upstream calls retried on the same replica, by the error that caused it', labelNames: ['deployment', 'kind'], registers: [this.registry] });
  private readonly remoteLimited = new Counter({ name: METRIC.remoteLimited, help: 'Requests refused by the local rate limiter, by the limit', labelNames: ['deployment', 'reason'], registers: [this.registry] });
  private readonly upstream429 = new Counter({ name: METRIC.remoteUpstream429, help: 'Upstream 429 answers (each lowers the local rate for a while)', labelNames: ['deployment'], registers: [this.registry] });
  private readonly breakerState = new Gauge({ name: METRIC.breakerState, help: "Circuit breaker state of the deployment's endpoint (1 for the current state)", labelNames: ['deployment', 'state'], registers: [this.registry] });
  private readonly breakerRejections = new Counter({ name: METRIC.breakerRejections, help: 'Requests failed fast by an open circuit', labelNames: ['deployment'], registers: [this.registry] });

  private readonly interToken = new Histogram({ name: METRIC.interToken, help: 'Gap between consecutive streamed chunks of one choice', labelNames: ['deployment'], buckets: ITL_BUCKETS, registers: [this.registry] });
  private readonly replicaQueued = new Gauge({ name: METRIC.replicaQueued, help: 'Requests waiting in the replica queue', labelNames: ['deployment', 'replica'], registers: [this.registry] });
  private readonly replicaOutstanding = new Gauge({ name: METRIC.replicaOutstanding, help: 'Requests admitted by the replica and not finished (queued + running)', labelNames: ['deployment', 'replica'], registers: [this.registry] });
  private readonly replicaCapacity = new Gauge({ name: METRIC.replicaCapacity, help: 'Requests the replica runs at once', labelNames: ['deployment', 'replica'], registers: [this.registry] });
  private readonly batchOccupancy = new Gauge({ name: METRIC.batchOccupancy, help: 'Sequences in the last decode step over the engine maxSequences', labelNames: ['deployment', 'replica'], registers: [this.registry] });
  private readonly cost = new Counter({ name: METRIC.cost, help: 'Spend at the deployment price, USD', labelNames: ['deployment'], registers: [this.registry] });

  private readonly sample: (() => Promise<readonly ReplicaSample[]>) | undefined;
  private readonly now: () => number;
  private readonly rates: RateWindow;
  private readonly recent: RecentErrors;
  private readonly timeline = new Timeline();
  private readonly totals = new Map<string, Totals>();
  /** Removed deployments whose requests are still in flight: forgotten when the last one finishes. */
  private readonly forgetting = new Set<string>();
  /** Replicas with per-replica series, so the ones that are gone can be removed. */
  private readonly replicaSeries = new Map<string, { deployment: string; replica: string; states: Set<string> }>();

  constructor(options: MetricsOptions | boolean = {}) {
    super();
    const o: MetricsOptions = typeof options === 'boolean' ? { defaultMetrics: options } : options;
    if (o.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'inference_process_' });
    this.sample = o.sample;
    this.now = o.now ?? Date.now;
    this.rates = new RateWindow(60, this.now());
    this.recent = new RecentErrors(o.recentErrors ?? 50);
  }

  private total(deployment: string): Totals {
    let t = this.totals.get(deployment);
    if (t === undefined) {
      t = { costUsd: 0, tokensIn: 0, tokensOut: 0, inFlight: 0, restarts: 0 };
      this.totals.set(deployment, t);
    }
    return t;
  }

  private seen(deployment: string, replica: string, state?: string): void {
    const key = `${deployment}\u0000${replica}`;
    let s = this.replicaSeries.get(key);
    if (s === undefined) {
      s = { deployment, replica, states: new Set() };
      this.replicaSeries.set(key, s);
    }
    if (state !== undefined) s.states.add(state);
  }

  /** Synchronous but for a scrape (most messages are per-request counters: no promise each). */
  receive(m: MetricsMsg): void | Promise<void> {
    switch (m.type) {
      case 'started':
        this.inFlight.inc({ deployment: m.deployment });
        this.total(m.deployment).inFlight++;
        return;
      case 'finished':
        this.finished(m);
        if (this.forgetting.has(m.deployment) && (this.totals.get(m.deployment)?.inFlight ?? 0) === 0) return this.forget(m.deployment);
        return;
      case 'interToken':
        for (const g of m.gapsMs) this.interToken.observe({ deployment: m.deployment }, g / 1000);
        return;
      case 'restart':
        this.seen(m.deployment, m.replica);
        this.restarts.inc({ deployment: m.deployment, replica: m.replica });
        this.total(m.deployment).restarts++;
        return;
      case 'replicaState':
        this.seen(m.deployment, m.replica, m.state);
        this.replicaState.set({ deployment: m.deployment, replica: m.replica, state: m.state }, m.on ? 1 : 0);
        return;
      case 'engineStats': {
        const l = { deployment: m.deployment, replica: m.replica };
        this.seen(m.deployment, m.replica);
        this.stepSequences.set(l, m.lastStepSequences);
        this.maxStepSequences.set(l, m.maxStepSequences);
        this.engineActive.set(l, m.active);
        this.kvCells.set(l, m.kvCellsUsed);
        if (m.maxSequences !== undefined && m.maxSequences > 0) this.batchOccupancy.set(l, m.lastStepSequences / m.maxSequences);
        return;
      }
      case 'fallback':
        this.fallbacks.inc({ deployment: m.deployment, to: m.to });
        return;
      case 'routed':
        this.routingDecisions.inc({ deployment: m.deployment, policy: m.policy, outcome: m.outcome });
        if (m.outcome === 'hit') this.routingPrefixHits.inc({ deployment: m.deployment });
        return;
      case 'remote':
        switch (m.event) {
          case 'retry':
            this.remoteRetries.inc({ deployment: m.deployment, kind: m.label ?? 'unknown' });
            return;
          case 'limited':
            this.remoteLimited.inc({ deployment: m.deployment, reason: m.label ?? 'unknown' });
            return;
          case 'upstreamRateLimited':
            this.upstream429.inc({ deployment: m.deployment });
            return;
          case 'breakerRejected':
            this.breakerRejections.inc({ deployment: m.deployment });
            return;
          default: {
            const never: never = m.event;
            throw new Error(`unknown remote event ${String(never)}`);
          }
        }
      case 'breakerState':
        for (const s of m.states) this.breakerState.set({ deployment: m.deployment, state: s }, s === m.state ? 1 : 0);
        return;
      case 'timeline':
        m.reply.resolve(this.charts(m.live));
        return;
      case 'deploymentRemoved':
        // Requests still in flight would re-create its series (and drive the in-flight gauge below 0): wait for them.
        if ((this.totals.get(m.deployment)?.inFlight ?? 0) > 0) {
          this.forgetting.add(m.deployment);
          return;
        }
        return this.forget(m.deployment);
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

  /** Removes every series labelled with `deployment` (or naming it as a fallback target), its totals and its charts. */
  private async forget(deployment: string): Promise<void> {
    this.forgetting.delete(deployment);
    this.totals.delete(deployment);
    this.timeline.remove(deployment);
    for (const [key, r] of this.replicaSeries) if (r.deployment === deployment) this.replicaSeries.delete(key);
    for (const metric of this.registry.getMetricsAsArray()) {
      if (!(metric instanceof Counter || metric instanceof Gauge || metric instanceof Histogram)) continue;
      const data = await metric.get();
      const gone = new Map<string, Record<string, string | number>>();
      for (const v of data.values) {
        const labels = v.labels as Record<string, string | number | undefined>;
        if (labels.deployment !== deployment && labels.to !== deployment) continue;
        // Histograms report one value per bucket (with `le`); the series is the labels without it.
        const own: Record<string, string | number> = {};
        for (const [k, x] of Object.entries(labels)) if (k !== 'le' && x !== undefined) own[k] = x;
        gone.set(JSON.stringify(own), own);
      }
      for (const labels of gone.values()) metric.remove(labels);
    }
  }

  private async render(reply: Extract<MetricsMsg, { type: 'render' }>['reply']): Promise<void> {
    await this.sampleReplicas();
    reply.resolve({ contentType: this.registry.contentType, body: await this.registry.metrics() });
  }

  private finished(m: Extract<MetricsMsg, { type: 'finished' }>): void {
    const d = { deployment: m.deployment };
    const t = this.total(m.deployment);
    this.inFlight.dec(d);
    t.inFlight = Math.max(0, t.inFlight - 1);
    const failed = m.cancelled !== true && m.error !== undefined;
    this.requests.inc({ deployment: m.deployment, endpoint: m.endpoint, outcome: m.cancelled === true ? 'cancelled' : failed ? 'error' : 'ok' });
    if (m.error !== undefined) this.errors.inc({ deployment: m.deployment, kind: m.error });
    if (m.usage !== undefined) {
      this.tokensIn.inc(d, m.usage.promptTokens);
      this.tokensOut.inc(d, m.usage.completionTokens);
      if (m.usage.cachedTokens !== undefined) this.tokensCached.inc(d, m.usage.cachedTokens);
      const served = m.served ?? m.deployment;
      const st = this.total(served);
      st.tokensIn += m.usage.promptTokens;
      st.tokensOut += m.usage.completionTokens;
      if (m.price !== undefined) {
        const usd = costUsd(m.usage, m.price);
        this.cost.inc({ deployment: served }, usd);
        st.costUsd += usd;
      }
    }
    if (m.ttftMs !== undefined) this.ttft.observe(d, m.ttftMs / 1000);
    for (const g of m.interTokenMs ?? []) this.interToken.observe(d, g / 1000);
    this.e2e.observe(d, m.durationMs / 1000);
    if (m.retries > 0) this.retries.inc(d, m.retries);
    if (m.replica !== undefined) {
      this.seen(m.deployment, m.replica);
      this.replicaRequests.inc({ deployment: m.deployment, replica: m.replica });
    }
    const now = this.now();
    this.rates.add(now, m.deployment, {
      requests: 1,
      errors: failed ? 1 : 0,
      tokensIn: m.usage?.promptTokens ?? 0,
      tokensOut: m.usage?.completionTokens ?? 0,
    });
    this.timeline.add(now, m.deployment, {
      requests: 1,
      errors: failed ? 1 : 0,
      tokensIn: m.usage?.promptTokens ?? 0,
      tokensOut: m.usage?.completionTokens ?? 0,
      ttftMs: m.ttftMs,
    });
    if (failed && m.error !== undefined) this.recent.add({ time: now, deployment: m.deployment, kind: m.error, message: m.errorMessage ?? m.error });
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
    this.replicaQueued.reset();
    this.replicaOutstanding.reset();
    this.replicaCapacity.reset();
    const live = new Set<string>();
    for (const s of samples) {
      const l = { deployment: s.deployment, replica: s.replica };
      live.add(`${s.deployment}\u0000${s.replica}`);
      this.replicaQueued.set(l, s.load.queued);
      this.replicaOutstanding.set(l, s.load.outstanding);
      this.replicaCapacity.set(l, s.load.capacity);
    }
    for (const [key, r] of this.replicaSeries) {
      if (live.has(key)) continue;
      const l = { deployment: r.deployment, replica: r.replica };
      for (const g of [this.stepSequences, this.maxStepSequences, this.engineActive, this.kvCells, this.batchOccupancy]) g.remove(l);
      this.replicaRequests.remove(l);
      this.restarts.remove(l);
      for (const state of r.states) this.replicaState.remove({ ...l, state });
      this.replicaSeries.delete(key);
    }
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
    const names = new Set([...this.totals.keys(), ...rates.keys()]);
    for (const name of names) {
      const t = this.totals.get(name);
      deployments[name] = {
        rates: rates.get(name) ?? zero,
        inFlight: t?.inFlight ?? 0,
        costUsd: t?.costUsd ?? 0,
        tokensIn: t?.tokensIn ?? 0,
        tokensOut: t?.tokensOut ?? 0,
        restarts: t?.restarts ?? 0,
      };
    }
    return { time: now, windowSeconds: 60, deployments, errors: this.recent.list() };
  }
}
