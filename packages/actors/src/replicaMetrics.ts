// The metrics of replicas, engines and the remote reliability layer (docs/metrics.md
// "Replicas and engines", "Remote providers"): prom-client families fed by events
// far rarer than requests (a restart, a state change, an engine step report, a
// limiter refusal), plus the load gauges sampled from the routing table at scrape
// time. A replica's series exist while it does: `sample` drops those of replicas
// that left the table, `forget` those of a removed deployment.

import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { ReplicaLoad } from '@inference/core';
import { METRIC } from './metricNames.js';

/** One replica's load as the routing table sees it, sampled at scrape time. */
export interface ReplicaSample {
  readonly deployment: string;
  readonly replica: string;
  readonly load: ReplicaLoad;
}

/** The key of a replica's series: deployment and replica id. */
export const replicaKey = (deployment: string, replica: string): string => `${deployment}\u0000${replica}`;

/** A local engine's report (MetricsMsg 'engineStats'). */
export interface EngineStats {
  readonly deployment: string;
  readonly replica: string;
  readonly active: number;
  readonly lastStepSequences: number;
  readonly maxStepSequences: number;
  readonly kvCellsUsed: number;
  readonly maxSequences?: number;
}

export type RemoteEventKind = 'retry' | 'limited' | 'upstreamRateLimited' | 'breakerRejected';

const REPLICA = ['deployment', 'replica'];

export class ReplicaMetrics {
  private readonly restarts: Counter;
  private readonly hostExits: Counter;
  private readonly state: Gauge;
  private readonly stepSequences: Gauge;
  private readonly maxStepSequences: Gauge;
  private readonly engineActive: Gauge;
  private readonly kvCells: Gauge;
  private readonly batchOccupancy: Gauge;
  private readonly queued: Gauge;
  private readonly outstanding: Gauge;
  private readonly capacity: Gauge;
  private readonly remoteRetries: Counter;
  private readonly remoteLimited: Counter;
  private readonly upstream429: Counter;
  private readonly breakerState: Gauge;
  private readonly breakerRejections: Counter;
  /** Replicas with per-replica series, so the ones that are gone can be removed. */
  private readonly series = new Map<string, { deployment: string; replica: string; states: Set<string> }>();

  constructor(private readonly registry: Registry) {
    const counter = (name: string, help: string, labelNames: string[]): Counter => new Counter({ name, help, labelNames, registers: [registry] });
    const gauge = (name: string, help: string, labelNames: string[]): Gauge => new Gauge({ name, help, labelNames, registers: [registry] });
    this.restarts = counter(METRIC.replicaRestarts, 'Replica context restarts', REPLICA);
    this.hostExits = counter(METRIC.engineHostExits, 'Engine host processes that ended without being closed, by reason', ['deployment', 'reason']);
    this.state = gauge(METRIC.replicaState, 'Replica state (1 for the current state)', [...REPLICA, 'state']);
    this.stepSequences = gauge(METRIC.stepSequences, 'Sequences that shared the last decode step', REPLICA);
    this.maxStepSequences = gauge(METRIC.maxStepSequences, 'Most sequences that shared one decode step since the engine started', REPLICA);
    this.engineActive = gauge(METRIC.engineActive, 'Sequences active in the engine', REPLICA);
    this.kvCells = gauge(METRIC.kvCellsUsed, 'KV cache cells in use', REPLICA);
    this.batchOccupancy = gauge(METRIC.batchOccupancy, 'Sequences in the last decode step over the engine maxSequences', REPLICA);
    this.queued = gauge(METRIC.replicaQueued, 'Requests waiting in the replica queue', REPLICA);
    this.outstanding = gauge(METRIC.replicaOutstanding, 'Requests admitted by the replica and not finished (queued + running)', REPLICA);
    this.capacity = gauge(METRIC.replicaCapacity, 'Requests the replica runs at once', REPLICA);
    this.remoteRetries = counter(METRIC.remoteRetries, 'Upstream calls retried on the same replica, by the error that caused it', ['deployment', 'kind']);
    this.remoteLimited = counter(METRIC.remoteLimited, 'Requests refused by the local rate limiter, by the limit', ['deployment', 'reason']);
    this.upstream429 = counter(METRIC.remoteUpstream429, 'Upstream 429 answers (each lowers the local rate for a while)', ['deployment']);
    this.breakerState = gauge(METRIC.breakerState, "Circuit breaker state of the deployment's endpoint (1 for the current state)", ['deployment', 'state']);
    this.breakerRejections = counter(METRIC.breakerRejections, 'Requests failed fast by an open circuit', ['deployment']);
  }

  private seen(deployment: string, replica: string, state?: string): void {
    const key = replicaKey(deployment, replica);
    let s = this.series.get(key);
    if (s === undefined) {
      s = { deployment, replica, states: new Set() };
      this.series.set(key, s);
    }
    if (state !== undefined) s.states.add(state);
  }

  restart(deployment: string, replica: string): void {
    this.seen(deployment, replica);
    this.restarts.inc({ deployment, replica });
  }

  replicaState(deployment: string, replica: string, state: string, on: boolean): void {
    this.seen(deployment, replica, state);
    this.state.set({ deployment, replica, state }, on ? 1 : 0);
  }

  /** `reason` comes from a closed set (engine-local hostExit.ts), so the series stay bounded. */
  hostExit(deployment: string, reason: string): void {
    this.hostExits.inc({ deployment, reason });
  }

  engineStats(m: EngineStats): void {
    const l = { deployment: m.deployment, replica: m.replica };
    this.seen(m.deployment, m.replica);
    this.stepSequences.set(l, m.lastStepSequences);
    this.maxStepSequences.set(l, m.maxStepSequences);
    this.engineActive.set(l, m.active);
    this.kvCells.set(l, m.kvCellsUsed);
    if (m.maxSequences !== undefined && m.maxSequences > 0) this.batchOccupancy.set(l, m.lastStepSequences / m.maxSequences);
  }

  remote(deployment: string, event: RemoteEventKind, label: string | undefined): void {
    switch (event) {
      case 'retry':
        this.remoteRetries.inc({ deployment, kind: label ?? 'unknown' });
        return;
      case 'limited':
        this.remoteLimited.inc({ deployment, reason: label ?? 'unknown' });
        return;
      case 'upstreamRateLimited':
        this.upstream429.inc({ deployment });
        return;
      case 'breakerRejected':
        this.breakerRejections.inc({ deployment });
        return;
      default: {
        const never: never = event;
        throw new Error(`unknown remote event ${String(never)}`);
      }
    }
  }

  breaker(deployment: string, state: string, states: readonly string[]): void {
    for (const s of states) this.breakerState.set({ deployment, state: s }, s === state ? 1 : 0);
  }

  /** Sets the load gauges from the routing table and drops the series of replicas that are gone; returns the live replicas' keys. */
  sample(samples: readonly ReplicaSample[]): Set<string> {
    this.queued.reset();
    this.outstanding.reset();
    this.capacity.reset();
    const live = new Set<string>();
    for (const s of samples) {
      const l = { deployment: s.deployment, replica: s.replica };
      live.add(replicaKey(s.deployment, s.replica));
      this.queued.set(l, s.load.queued);
      this.outstanding.set(l, s.load.outstanding);
      this.capacity.set(l, s.load.capacity);
    }
    for (const [key, r] of this.series) {
      if (live.has(key)) continue;
      const l = { deployment: r.deployment, replica: r.replica };
      for (const g of [this.stepSequences, this.maxStepSequences, this.engineActive, this.kvCells, this.batchOccupancy]) g.remove(l);
      this.restarts.remove(l);
      for (const state of r.states) this.state.remove({ ...l, state });
      this.series.delete(key);
    }
    return live;
  }

  /** Removes every prom-client series labelled with `deployment`. */
  async forget(deployment: string): Promise<void> {
    for (const [key, r] of this.series) if (r.deployment === deployment) this.series.delete(key);
    for (const metric of this.registry.getMetricsAsArray()) {
      if (!(metric instanceof Counter || metric instanceof Gauge || metric instanceof Histogram)) continue;
      const data = await metric.get();
      const gone = new Map<string, Record<string, string | number>>();
      for (const v of data.values) {
        const labels = v.labels as Record<string, string | number | undefined>;
        if (labels.deployment !== deployment) continue;
        // Histograms report one value per bucket (with `le`); the series is the labels without it.
        const own: Record<string, string | number> = {};
        for (const [k, x] of Object.entries(labels)) if (k !== 'le' && x !== undefined) own[k] = x;
        gone.set(JSON.stringify(own), own);
      }
      for (const labels of gone.values()) metric.remove(labels);
    }
  }
}
