import { describe, expect, it } from 'vitest';
import {
  type ChunkSink, type GenerateRequest, InferenceError, type ModelRunner, type ReplicaLoad, type Tokens,
} from '@inference/core';
import { DpCoordinatorActor } from './dpCoordinatorActor.js';
import { ActorSystem } from './kernel.js';
import { METRIC } from './metricNames.js';
import { MetricsActor, type MetricsMsg, type MetricsSummary, type ReplicaSample, costUsd } from './metricsActor.js';
import type { DeploymentPolicy } from './requestJob.js';
import { RequestRun } from './requestRun.js';

/** The value of one series in Prometheus text (undefined when absent). */
function series(body: string, name: string, labels: Record<string, string>): number | undefined {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of body.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const inner = line.slice(name.length).split(' ')[0] ?? '';
    const have = inner.replace(/^\{|\}$/g, '').split(',').filter((x) => x !== '');
    if (want.length === have.length && want.every((w) => have.includes(w))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

function setup(opts: { now?: () => number; sample?: () => Promise<readonly ReplicaSample[]> } = {}) {
  const sys = new ActorSystem('metrics-test');
  const metrics = sys.spawn('metrics', () => new MetricsActor({ defaultMetrics: false, recentErrors: 3, ...opts }));
  const render = async () => (await metrics.ask<{ body: string }>((reply) => ({ type: 'render', reply }))).body;
  const summary = () => metrics.ask<MetricsSummary>((reply) => ({ type: 'summary', reply }));
  return { sys, metrics, render, summary };
}

const finished = (o: Partial<Extract<MetricsMsg, { type: 'finished' }>> = {}): MetricsMsg => ({
  type: 'finished', deployment: 'm', endpoint: 'chat', durationMs: 100, retries: 0, ...o,
});

describe('MetricsActor accounting', () => {
  it("a removed deployment's series go, once its requests in flight have finished (the gauge never goes below 0)", async () => {
    const t = setup();
    t.metrics.tell({ type: 'started', deployment: 'gone' });
    t.metrics.tell(finished({ deployment: 'gone', replica: 'r1' }));
    t.metrics.tell({ type: 'started', deployment: 'gone' });
    t.metrics.tell({ type: 'started', deployment: 'kept' });
    t.metrics.tell({ type: 'deploymentRemoved', deployment: 'gone' });
    expect(series(await t.render(), METRIC.inFlight, { deployment: 'gone' })).toBe(1);
    t.metrics.tell(finished({ deployment: 'gone' }));
    const body = await t.render();
    expect(body).not.toContain('deployment="gone"');
    expect(series(body, METRIC.inFlight, { deployment: 'kept' })).toBe(1);
    // Removed with nothing in flight: at once.
    t.metrics.tell(finished({ deployment: 'kept' }));
    t.metrics.tell({ type: 'deploymentRemoved', deployment: 'kept' });
    expect(await t.render()).not.toContain('deployment="kept"');
    await t.sys.stop();
  });

  it('counts routing decisions by policy and outcome, prefix hits, and cached prompt tokens', async () => {
    const t = setup();
    t.metrics.tell({ type: 'routed', deployment: 'm', policy: 'prefix', outcome: 'hit' });
    t.metrics.tell({ type: 'routed', deployment: 'm', policy: 'prefix', outcome: 'hit' });
    t.metrics.tell({ type: 'routed', deployment: 'm', policy: 'prefix', outcome: 'spill' });
    t.metrics.tell({ type: 'routed', deployment: 'r', policy: 'round_robin', outcome: 'none' });
    t.metrics.tell(finished({ usage: { promptTokens: 300, completionTokens: 5, cachedTokens: 250 } }));
    t.metrics.tell(finished({ usage: { promptTokens: 300, completionTokens: 5, cachedTokens: 0 } }));
    const body = await t.render();
    expect(series(body, METRIC.routingDecisions, { deployment: 'm', policy: 'prefix', outcome: 'hit' })).toBe(2);
    expect(series(body, METRIC.routingDecisions, { deployment: 'm', policy: 'prefix', outcome: 'spill' })).toBe(1);
    expect(series(body, METRIC.routingDecisions, { deployment: 'r', policy: 'round_robin', outcome: 'none' })).toBe(1);
    expect(series(body, METRIC.routingPrefixHits, { deployment: 'm' })).toBe(2);
    expect(series(body, METRIC.routingPrefixHits, { deployment: 'r' })).toBeUndefined();
    expect(series(body, METRIC.tokensCached, { deployment: 'm' })).toBe(250);
    expect(series(body, METRIC.tokensIn, { deployment: 'm' })).toBe(600);
    await t.sys.stop();
  });

  it('counts engine host exits by deployment and reason; they go with the deployment', async () => {
    const t = setup();
    t.metrics.tell({ type: 'hostExit', deployment: 'm', reason: 'SIGSEGV' });
    t.metrics.tell({ type: 'hostExit', deployment: 'm', reason: 'SIGSEGV' });
    t.metrics.tell({ type: 'hostExit', deployment: 'm', reason: 'unrecoverable' });
    const body = await t.render();
    expect(series(body, METRIC.engineHostExits, { deployment: 'm', reason: 'SIGSEGV' })).toBe(2);
    expect(series(body, METRIC.engineHostExits, { deployment: 'm', reason: 'unrecoverable' })).toBe(1);
    t.metrics.tell({ type: 'deploymentRemoved', deployment: 'm' });
    expect(series(await t.render(), METRIC.engineHostExits, { deployment: 'm', reason: 'SIGSEGV' })).toBeUndefined();
    await t.sys.stop();
  });

  it('prices usage per million tokens', () => {
    expect(costUsd({ promptTokens: 1_000_000, completionTokens: 500_000 }, { inputPerMTok: 0.15, outputPerMTok: 0.6 })).toBeCloseTo(0.45, 12);
    expect(costUsd({ promptTokens: 0, completionTokens: 0 }, { inputPerMTok: 3, outputPerMTok: 15 })).toBe(0);
  });

  it('counts cost against the deployment that served, and tokens, in-flight and rates', async () => {
    let now = 1_000_000;
    const t = setup({ now: () => now });
    const price = { inputPerMTok: 2, outputPerMTok: 10 };
    t.metrics.tell({ type: 'started', deployment: 'm' });
    t.metrics.tell({ type: 'started', deployment: 'm' });
    t.metrics.tell(finished({ usage: { promptTokens: 1000, completionTokens: 200 }, price }));
    t.metrics.tell(finished({ served: 'fb', usage: { promptTokens: 500, completionTokens: 100 }, price }));
    await t.summary();
    now += 10_000;
    const body = await t.render();
    expect(series(body, METRIC.cost, { deployment: 'm' })).toBeCloseTo((1000 * 2 + 200 * 10) / 1e6, 12);
    expect(series(body, METRIC.cost, { deployment: 'fb' })).toBeCloseTo((500 * 2 + 100 * 10) / 1e6, 12);
    expect(series(body, METRIC.tokensOut, { deployment: 'm' })).toBe(300);
    expect(series(body, METRIC.inFlight, { deployment: 'm' })).toBe(0);
    const s = await t.summary();
    expect(s.deployments.m?.costUsd).toBeCloseTo(0.004, 12);
    expect(s.deployments.fb?.costUsd).toBeCloseTo(0.002, 12);
    expect(s.deployments.m?.inFlight).toBe(0);
    // Two requests, 1800 tokens, 10 s after the actor started: rates over 10 s.
    expect(s.deployments.m?.rates.requestsPerSec).toBeCloseTo(0.2, 9);
    expect(s.deployments.m?.rates.tokensPerSec).toBeCloseTo(180, 9);
    await t.sys.stop();
  });

  it('observes inter-token gaps, including ones flushed before the end', async () => {
    const t = setup();
    t.metrics.tell(finished({ interTokenMs: [5, 20, 40] }));
    t.metrics.tell({ type: 'interToken', deployment: 'm', gapsMs: [1, 2] });
    const body = await t.render();
    expect(series(body, `${METRIC.interToken}_count`, { deployment: 'm' })).toBe(5);
    expect(series(body, `${METRIC.interToken}_sum`, { deployment: 'm' })).toBeCloseTo(0.068, 9);
    expect(series(body, `${METRIC.interToken}_bucket`, { deployment: 'm', le: '0.005' })).toBe(3);
    expect(series(body, `${METRIC.interToken}_bucket`, { deployment: 'm', le: '0.025' })).toBe(4);
    await t.sys.stop();
  });

  it('keeps the last errors newest first, bounded, with their client-safe message; not cancellations', async () => {
    const t = setup();
    for (let i = 0; i < 5; i++) t.metrics.tell(finished({ error: 'upstream_error', errorMessage: `failure ${i}` }));
    t.metrics.tell(finished({ cancelled: true, error: 'internal', errorMessage: 'client went away' }));
    t.metrics.tell(finished({ error: 'rate_limited', errorMessage: 'x'.repeat(1000) }));
    const s = await t.summary();
    expect(s.errors.map((e) => e.message.slice(0, 9))).toEqual(['xxxxxxxxx', 'failure 4', 'failure 3']);
    expect(s.errors[0]?.kind).toBe('rate_limited');
    expect(s.errors[0]?.message.length).toBeLessThanOrEqual(300);
    expect(s.deployments.m?.rates.errorsPerSec).toBeGreaterThan(0);
    const body = await t.render();
    expect(series(body, METRIC.requests, { deployment: 'm', endpoint: 'chat', outcome: 'cancelled' })).toBe(1);
    expect(series(body, METRIC.requests, { deployment: 'm', endpoint: 'chat', outcome: 'error' })).toBe(6);
    await t.sys.stop();
  });

  it('samples replica load at scrape time and drops the series of replicas that are gone', async () => {
    let replicas: ReplicaSample[] = [
      { deployment: 'local', replica: 'local#1', load: { outstanding: 5, queued: 2, capacity: 4 } },
      { deployment: 'local', replica: 'local#2', load: { outstanding: 1, queued: 0, capacity: 4 } },
    ];
    const t = setup({ sample: () => Promise.resolve(replicas) });
    t.metrics.tell({ type: 'engineStats', deployment: 'local', replica: 'local#1', active: 4, lastStepSequences: 3, maxStepSequences: 4, kvCellsUsed: 100, maxSequences: 4 });
    t.metrics.tell({ type: 'replicaState', deployment: 'local', replica: 'local#1', state: 'serving', on: true });
    let body = await t.render();
    expect(series(body, METRIC.replicaQueued, { deployment: 'local', replica: 'local#1' })).toBe(2);
    expect(series(body, METRIC.replicaOutstanding, { deployment: 'local', replica: 'local#1' })).toBe(5);
    expect(series(body, METRIC.replicaCapacity, { deployment: 'local', replica: 'local#2' })).toBe(4);
    expect(series(body, METRIC.batchOccupancy, { deployment: 'local', replica: 'local#1' })).toBe(0.75);
    expect(series(body, METRIC.replicaState, { deployment: 'local', replica: 'local#1', state: 'serving' })).toBe(1);
    replicas = [{ deployment: 'local', replica: 'local#2', load: { outstanding: 0, queued: 0, capacity: 4 } }];
    body = await t.render();
    expect(series(body, METRIC.replicaQueued, { deployment: 'local', replica: 'local#1' })).toBeUndefined();
    expect(series(body, METRIC.batchOccupancy, { deployment: 'local', replica: 'local#1' })).toBeUndefined();
    expect(series(body, METRIC.replicaState, { deployment: 'local', replica: 'local#1', state: 'serving' })).toBeUndefined();
    expect(series(body, METRIC.replicaOutstanding, { deployment: 'local', replica: 'local#2' })).toBe(0);
    await t.sys.stop();
  });
});

/** Emits `chunks` chunks `gapMs` apart, or fails before the first. */
class ScriptedRunner implements ModelRunner {
  fail: InferenceError | undefined;
  constructor(readonly id: string, readonly deployment: string, private readonly chunks = 4, private readonly gapMs = 15) {}
  async generate(_req: GenerateRequest, _ctx: unknown, sink: ChunkSink): Promise<Tokens> {
    if (this.fail !== undefined) throw this.fail;
    for (let i = 0; i < this.chunks; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, this.gapMs));
      sink({ index: 0, text: `t${i}`, tokens: 1 });
    }
    return { choices: [{ index: 0, text: 'x', finishReason: 'stop' }], usage: { promptTokens: 10, completionTokens: this.chunks } };
  }
  embed(): Promise<never> {
    return Promise.reject(new InferenceError('invalid_request', 'no embeddings'));
  }
  load(): ReplicaLoad {
    return { outstanding: 0, queued: 0, capacity: 1 };
  }
  healthy(): boolean {
    return true;
  }
  stop(): Promise<void> {
    return Promise.resolve();
  }
}

describe('RequestRun feeds the metrics', () => {
  function wire(runner: ScriptedRunner, policy: DeploymentPolicy) {
    const t = setup();
    const coordinator = t.sys.spawn('coordinator', () => new DpCoordinatorActor());
    coordinator.tell({ type: 'register', replica: { id: runner.id, deployment: runner.deployment, runner, state: 'serving' } });
    const req: GenerateRequest = { kind: 'chat', model: runner.deployment, messages: [{ role: 'user', content: 'secret prompt' }], sampling: { stop: [], n: 1 }, stream: true, includeUsage: false, passthrough: {} };
    const run = () => new RequestRun({ coordinator, metrics: t.metrics, maxAttempts: 1, policyOf: () => policy }, 'r1', { kind: 'generate', endpoint: 'chat', req, sink: () => undefined })
      .run();
    return { ...t, run };
  }

  it('measures gaps between chunks and prices the usage', async () => {
    const runner = new ScriptedRunner('d#1', 'd', 4, 15);
    const t = wire(runner, { fallbacks: [], onCapacityExhausted: 'queue', price: { inputPerMTok: 1, outputPerMTok: 100 } });
    await t.run();
    const body = await t.render();
    expect(series(body, `${METRIC.interToken}_count`, { deployment: 'd' })).toBe(3);
    // Each gap is at least the runner's sleep; timers never fire early by more than a ms.
    expect(series(body, `${METRIC.interToken}_sum`, { deployment: 'd' })).toBeGreaterThanOrEqual(3 * 0.014);
    expect(series(body, METRIC.cost, { deployment: 'd' })).toBeCloseTo((10 * 1 + 4 * 100) / 1e6, 12);
    await t.sys.stop();
  });

  it('puts the client-safe message in the recent errors, never the diagnostic or the prompt', async () => {
    const runner = new ScriptedRunner('d#1', 'd');
    runner.fail = new InferenceError('upstream_error', 'the upstream failed', { diagnostic: 'upstream said: sk-live-key leaked' });
    const t = wire(runner, { fallbacks: [], onCapacityExhausted: 'queue' });
    await expect(t.run()).rejects.toMatchObject({ kind: 'upstream_error' });
    const s = await t.summary();
    expect(s.errors).toHaveLength(1);
    expect(s.errors[0]).toMatchObject({ deployment: 'd', kind: 'upstream_error', message: 'the upstream failed' });
    expect(JSON.stringify(s)).not.toMatch(/sk-live|secret prompt/);
    await t.sys.stop();
  });
});
