// MetricsActor: per-deployment counters and histograms, rendered in Prometheus
// text format. Observations arrive by `tell` (fire and forget, off the request's
// critical path); scrapes `ask` for the rendered text.

import type { ErrorKind, Usage } from '@inference/core';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { Actor, type Reply } from './kernel.js';
import { METRIC } from './metricNames.js';

export type Endpoint = 'chat' | 'completion' | 'embedding' | 'messages';

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
    }
  | { type: 'restart'; deployment: string; replica: string }
  | { type: 'replicaState'; deployment: string; replica: string; state: string; on: boolean }
  | { type: 'engineStats'; deployment: string; replica: string; active: number; lastStepSequences: number; maxStepSequences: number; kvCellsUsed: number }
  | { type: 'fallback'; deployment: string; to: string }
  /** From a remote replica's reliability layer; `label` is the error kind (retry) or the limit (limited). */
  | { type: 'remote'; deployment: string; event: 'retry' | 'limited' | 'upstreamRateLimited' | 'breakerRejected'; label?: string }
  | { type: 'breakerState'; deployment: string; state: string; states: readonly string[] }
  | { type: 'render'; reply: Reply<{ contentType: string; body: string }> };

const TTFT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const E2E_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export class MetricsActor extends Actor<MetricsMsg> {
  readonly registry = new Registry();
  private readonly requests = new Counter({ name: METRIC.requests, help: 'Requests finished, by outcome', labelNames: ['deployment', 'endpoint', 'outcome'], registers: [this.registry] });
  private readonly errors = new Counter({ name: METRIC.errors, help: 'Requests failed, by error kind', labelNames: ['deployment', 'kind'], registers: [this.registry] });
  private readonly tokensIn = new Counter({ name: METRIC.tokensIn, help: 'Prompt tokens', labelNames: ['deployment'], registers: [this.registry] });
  private readonly tokensOut = new Counter({ name: METRIC.tokensOut, help: 'Completion tokens', labelNames: ['deployment'], registers: [this.registry] });
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

  constructor(defaultMetrics = true) {
    super();
    if (defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'inference_process_' });
  }

  async receive(m: MetricsMsg): Promise<void> {
    switch (m.type) {
      case 'started':
        this.inFlight.inc({ deployment: m.deployment });
        return;
      case 'finished': {
        const d = { deployment: m.deployment };
        this.inFlight.dec(d);
        this.requests.inc({ deployment: m.deployment, endpoint: m.endpoint, outcome: m.cancelled === true ? 'cancelled' : m.error === undefined ? 'ok' : 'error' });
        if (m.error !== undefined) this.errors.inc({ deployment: m.deployment, kind: m.error });
        if (m.usage !== undefined) {
          this.tokensIn.inc(d, m.usage.promptTokens);
          this.tokensOut.inc(d, m.usage.completionTokens);
        }
        if (m.ttftMs !== undefined) this.ttft.observe(d, m.ttftMs / 1000);
        this.e2e.observe(d, m.durationMs / 1000);
        if (m.retries > 0) this.retries.inc(d, m.retries);
        if (m.replica !== undefined) this.replicaRequests.inc({ deployment: m.deployment, replica: m.replica });
        return;
      }
      case 'restart':
        this.restarts.inc({ deployment: m.deployment, replica: m.replica });
        return;
      case 'replicaState':
        this.replicaState.set({ deployment: m.deployment, replica: m.replica, state: m.state }, m.on ? 1 : 0);
        return;
      case 'engineStats': {
        const l = { deployment: m.deployment, replica: m.replica };
        this.stepSequences.set(l, m.lastStepSequences);
        this.maxStepSequences.set(l, m.maxStepSequences);
        this.engineActive.set(l, m.active);
        this.kvCells.set(l, m.kvCellsUsed);
        return;
      }
      case 'fallback':
        this.fallbacks.inc({ deployment: m.deployment, to: m.to });
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
      case 'render':
        m.reply.resolve({ contentType: this.registry.contentType, body: await this.registry.metrics() });
        return;
      default: {
        const never: never = m;
        throw new Error(`unknown message ${JSON.stringify(never)}`);
      }
    }
  }
}
