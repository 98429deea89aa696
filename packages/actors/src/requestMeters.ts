// The per-request metrics (docs/metrics.md "Requests and latency", "Tokens and
// cost", routing): one accumulator object per deployment, updated with plain
// number operations on the request path, and rendered into Prometheus text only
// at scrape time. Observing a request hashes no label set and builds no string:
// the deployment's accumulator is one Map lookup, and the label values below it
// (endpoint, outcome, error kind, replica, policy) are closed sets or replica ids
// whose string hashes V8 keeps. A series appears once it is first touched (as
// prom-client does), and `forget` drops every series of a deployment.

import type { ErrorKind, PriceSpec, Usage } from '@inference/core';
import { METRIC } from './metricNames.js';

export type Endpoint = 'chat' | 'completion' | 'embedding' | 'messages' | 'responses';

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

/** What the metrics learn when a request ends (MetricsMsg 'finished'). */
export interface RequestOutcome {
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
}

/** One histogram series: counts per bucket (not cumulative), their sum and count. */
export class Buckets {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length);
  }

  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > (b[i] as number)) i++;
    if (i < b.length) this.counts[i] = (this.counts[i] as number) + 1;
    this.sum += v;
    this.count++;
  }
}

/** Counts under two label values (e.g. endpoint, outcome), each set small and closed. */
class Count2 {
  readonly byFirst = new Map<string, Map<string, number>>();

  inc(a: string, b: string, n = 1): void {
    let inner = this.byFirst.get(a);
    if (inner === undefined) {
      inner = new Map();
      this.byFirst.set(a, inner);
    }
    inner.set(b, (inner.get(b) ?? 0) + n);
  }
}

function inc(m: Map<string, number>, key: string, n = 1): void {
  m.set(key, (m.get(key) ?? 0) + n);
}

/** Every per-request series of one deployment (the `deployment` label). */
export class DeploymentMeters {
  inFlight = 0;
  /** The in-flight gauge exists once a request started. */
  inFlightSeen = false;
  /** endpoint → outcome → count. */
  readonly requests = new Count2();
  readonly errors = new Map<string, number>();
  tokensIn = 0;
  tokensOut = 0;
  tokensCached = 0;
  usageSeen = false;
  cachedSeen = false;
  /** Spend at the serving deployment's price (counted against the one that served). */
  costUsd = 0;
  costSeen = false;
  /** Tokens of the requests this deployment served (itself or as a fallback), for the status page. */
  servedTokensIn = 0;
  servedTokensOut = 0;
  /** Context restarts of its replicas, for the status page. */
  restarts = 0;
  retries = 0;
  readonly ttft = new Buckets(TTFT_BUCKETS);
  readonly e2e = new Buckets(E2E_BUCKETS);
  readonly interToken = new Buckets(ITL_BUCKETS);
  readonly replicaRequests = new Map<string, number>();
  /** policy → outcome → picks. */
  readonly routing = new Count2();
  prefixHits = 0;
  /** fallback target → requests sent on to it. */
  readonly fallbacks = new Map<string, number>();

  constructor(readonly name: string) {}
}

const seconds = (ms: number): number => ms / 1000;

/** The accumulators of every deployment, and their rendering. */
export class RequestMeters {
  private readonly byDeployment = new Map<string, DeploymentMeters>();

  get(deployment: string): DeploymentMeters | undefined {
    return this.byDeployment.get(deployment);
  }

  names(): IterableIterator<string> {
    return this.byDeployment.keys();
  }

  of(deployment: string): DeploymentMeters {
    let d = this.byDeployment.get(deployment);
    if (d === undefined) {
      d = new DeploymentMeters(deployment);
      this.byDeployment.set(deployment, d);
    }
    return d;
  }

  started(deployment: string): void {
    const d = this.of(deployment);
    d.inFlight++;
    d.inFlightSeen = true;
  }

  /** Counts a request that ended; `failed` is an error that was not a cancellation. */
  finished(m: RequestOutcome, failed: boolean): void {
    const d = this.of(m.deployment);
    d.inFlight = Math.max(0, d.inFlight - 1);
    d.requests.inc(m.endpoint, m.cancelled === true ? 'cancelled' : failed ? 'error' : 'ok');
    if (m.error !== undefined) inc(d.errors, m.error);
    if (m.usage !== undefined) this.usage(d, m.usage, m.served ?? m.deployment, m.price);
    if (m.ttftMs !== undefined) d.ttft.observe(seconds(m.ttftMs));
    const gaps = m.interTokenMs;
    if (gaps !== undefined) for (const g of gaps) d.interToken.observe(seconds(g));
    d.e2e.observe(seconds(m.durationMs));
    d.retries += m.retries;
    if (m.replica !== undefined) inc(d.replicaRequests, m.replica);
  }

  private usage(d: DeploymentMeters, u: Usage, served: string, price: PriceSpec | undefined): void {
    d.usageSeen = true;
    d.tokensIn += u.promptTokens;
    d.tokensOut += u.completionTokens;
    if (u.cachedTokens !== undefined) {
      d.cachedSeen = true;
      d.tokensCached += u.cachedTokens;
    }
    const s = served === d.name ? d : this.of(served);
    s.servedTokensIn += u.promptTokens;
    s.servedTokensOut += u.completionTokens;
    if (price === undefined) return;
    s.costSeen = true;
    s.costUsd += costUsd(u, price);
  }

  interToken(deployment: string, gapsMs: readonly number[]): void {
    const h = this.of(deployment).interToken;
    for (const g of gapsMs) h.observe(seconds(g));
  }

  routed(deployment: string, policy: string, outcome: string): void {
    const d = this.of(deployment);
    d.routing.inc(policy, outcome);
    if (outcome === 'hit') d.prefixHits++;
  }

  fallback(deployment: string, to: string): void {
    inc(this.of(deployment).fallbacks, to);
  }

  /** Drops every series of `deployment`, and the fallback series that name it as their target. */
  forget(deployment: string): void {
    this.byDeployment.delete(deployment);
    for (const d of this.byDeployment.values()) d.fallbacks.delete(deployment);
  }

  /** Drops the per-replica series of replicas whose key (`key(deployment, replica)`) is not in `live`. */
  retainReplicas(live: ReadonlySet<string>, key: (deployment: string, replica: string) => string): void {
    for (const d of this.byDeployment.values()) {
      for (const r of d.replicaRequests.keys()) if (!live.has(key(d.name, r))) d.replicaRequests.delete(r);
    }
  }

  /** Prometheus text of every family, HELP and TYPE included (also when a family has no series yet). */
  render(): string {
    const ds = [...this.byDeployment.values()];
    const out: string[] = [];
    for (const f of FAMILIES) {
      out.push(`# HELP ${f.name} ${f.help}\n# TYPE ${f.name} ${f.type}\n`);
      for (const d of ds) f.lines(d, out);
    }
    return out.join('');
  }
}

/** A label value in the exposition format: backslash, double quote and newline escaped. */
export function escapeLabel(v: string): string {
  return /[\\"\n]/.test(v) ? v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"') : v;
}

/** A sample value as Prometheus writes it. */
function num(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(v);
}

interface Family {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  readonly lines: (d: DeploymentMeters, out: string[]) => void;
}

const dep = (d: DeploymentMeters): string => `deployment="${escapeLabel(d.name)}"`;

function scalar(name: string, help: string, type: 'counter' | 'gauge', value: (d: DeploymentMeters) => number | undefined): Family {
  return {
    name, help, type,
    lines: (d, out) => {
      const v = value(d);
      if (v !== undefined) out.push(`${name}{${dep(d)}} ${num(v)}\n`);
    },
  };
}

function byLabel(name: string, help: string, label: string, values: (d: DeploymentMeters) => Map<string, number>): Family {
  return {
    name, help, type: 'counter',
    lines: (d, out) => {
      for (const [k, v] of values(d)) out.push(`${name}{${dep(d)},${label}="${escapeLabel(k)}"} ${num(v)}\n`);
    },
  };
}

function byTwoLabels(name: string, help: string, labels: readonly [string, string], values: (d: DeploymentMeters) => Count2): Family {
  return {
    name, help, type: 'counter',
    lines: (d, out) => {
      for (const [a, inner] of values(d).byFirst) {
        for (const [b, v] of inner) out.push(`${name}{${dep(d)},${labels[0]}="${escapeLabel(a)}",${labels[1]}="${escapeLabel(b)}"} ${num(v)}\n`);
      }
    },
  };
}

function histogram(name: string, help: string, of: (d: DeploymentMeters) => Buckets, present: (d: DeploymentMeters) => boolean): Family {
  return {
    name, help, type: 'histogram',
    lines: (d, out) => {
      if (!present(d)) return;
      const h = of(d);
      const l = dep(d);
      let cumulative = 0;
      for (let i = 0; i < h.bounds.length; i++) {
        cumulative += h.counts[i] as number;
        out.push(`${name}_bucket{${l},le="${num(h.bounds[i] as number)}"} ${num(cumulative)}\n`);
      }
      out.push(`${name}_bucket{${l},le="+Inf"} ${num(h.count)}\n${name}_sum{${l}} ${num(h.sum)}\n${name}_count{${l}} ${num(h.count)}\n`);
    },
  };
}

const FAMILIES: readonly Family[] = [
  byTwoLabels(METRIC.requests, 'Requests finished, by outcome', ['endpoint', 'outcome'], (d) => d.requests),
  byLabel(METRIC.errors, 'Requests failed, by error kind', 'kind', (d) => d.errors),
  scalar(METRIC.inFlight, 'Requests in flight', 'gauge', (d) => (d.inFlightSeen ? d.inFlight : undefined)),
  scalar(METRIC.tokensIn, 'Prompt tokens', 'counter', (d) => (d.usageSeen ? d.tokensIn : undefined)),
  scalar(METRIC.tokensOut, 'Completion tokens', 'counter', (d) => (d.usageSeen ? d.tokensOut : undefined)),
  scalar(METRIC.tokensCached, 'Prompt tokens the engine reused from its prefix cache (included in the prompt tokens)', 'counter',
    (d) => (d.cachedSeen ? d.tokensCached : undefined)),
  scalar(METRIC.cost, 'Spend at the deployment price, USD', 'counter', (d) => (d.costSeen ? d.costUsd : undefined)),
  histogram(METRIC.ttft, 'Time to first token', (d) => d.ttft, (d) => d.ttft.count > 0),
  histogram(METRIC.e2e, 'Request duration, end to end', (d) => d.e2e, (d) => d.e2e.count > 0),
  histogram(METRIC.interToken, 'Gap between consecutive streamed chunks of one choice', (d) => d.interToken, (d) => d.interToken.count > 0),
  scalar(METRIC.retries, 'Retries on another replica before the first token', 'counter', (d) => (d.retries > 0 ? d.retries : undefined)),
  byLabel(METRIC.replicaRequests, 'Requests served, by replica', 'replica', (d) => d.replicaRequests),
  byTwoLabels(METRIC.routingDecisions, 'Replica picks, by routing policy and outcome (hit, miss, spill: prefix policy; none: others)',
    ['policy', 'outcome'], (d) => d.routing),
  scalar(METRIC.routingPrefixHits, 'Picks sent to a replica taken to hold part of the prompt in its cache', 'counter',
    (d) => (d.prefixHits > 0 ? d.prefixHits : undefined)),
  byLabel(METRIC.fallbacks, 'Requests sent to a fallback deployment before the first token', 'to', (d) => d.fallbacks),
];
