// RequestRun, wired as the gateway wires it (the routing table and the metrics
// read in place, budgets through the BudgetActor, a set of live runs): cancellation
// before and during a run, an owner cancelling what is still live, the replica
// retry and the fallbacks, budgets reserved and settled once, the in-flight gauge
// and the picks back at zero however a run ends, and the spans it leaves.
import { afterEach, describe, expect, it } from 'vitest';
import {
  type BudgetSpec, type ChunkSink, type EmbeddingRequest, type EmbeddingResult, type GenerateRequest, InferenceError, type ModelRunner,
  type RunContext, type TraceAttrs, type TraceSpan, type Tokens,
} from '@inference/core';
import { ActorBudgetGate, BudgetActor, type BudgetMsg, type BudgetStatus, type SpendRecord } from './budgetActor.js';
import { DpCoordinatorActor, localRouter } from './dpCoordinatorActor.js';
import { type ActorRef, ActorSystem } from './kernel.js';
import { METRIC } from './metricNames.js';
import { MetricsActor, type MetricsSummary, localRecorder } from './metricsActor.js';
import type { DeploymentPolicy, Principal, RequestDeps, RequestJob, RequestResult } from './requestJob.js';
import { RequestRun } from './requestRun.js';
import type { ReplicaEntry } from './routing.js';

type Behaviour = (ctx: RunContext, sink: ChunkSink) => Promise<Tokens>;

const TOKENS: Tokens = { choices: [{ index: 0, text: 'ab', finishReason: 'stop' }], usage: { promptTokens: 3, completionTokens: 2 } };

/** Answers at once: two chunks, then the tokens (a runner with nothing to wait for). */
const answer: Behaviour = (_ctx, sink) => {
  sink({ index: 0, text: 'a', tokens: 1 });
  sink({ index: 0, text: 'b', tokens: 1 });
  return Promise.resolve(TOKENS);
};
const fail = (kind: InferenceError['kind'], message = 'replica failed'): Behaviour => () => Promise.reject(new InferenceError(kind, message));
/** Sends `chunks` chunks, then waits until the run is cancelled and fails with `kind` (retryable by default). */
const untilCancelled = (chunks: number, kind: InferenceError['kind'] = 'engine_unavailable'): Behaviour => (ctx, sink) => {
  for (let i = 0; i < chunks; i++) sink({ index: 0, text: 'x', tokens: 1 });
  return new Promise((_resolve, reject) => {
    ctx.signal.addEventListener('abort', () => { reject(new InferenceError(kind, 'work cancelled')); }, { once: true });
  });
};

class Replica implements ModelRunner {
  calls = 0;
  /** What each call's cancellation said when it fired. */
  readonly cancelled: unknown[] = [];
  constructor(readonly id: string, readonly deployment: string, private readonly behave: Behaviour) {}
  generate(_req: GenerateRequest, ctx: RunContext, sink: ChunkSink): Promise<Tokens> {
    this.calls++;
    ctx.signal.addEventListener('abort', () => { this.cancelled.push(ctx.signal.reason); }, { once: true });
    return this.behave(ctx, sink);
  }
  embed(req: EmbeddingRequest): Promise<EmbeddingResult> {
    this.calls++;
    return Promise.resolve({ vectors: req.input.map(() => [0.5, 0.5]), promptTokens: 4 });
  }
  load() {
    return { outstanding: 0, queued: 0, capacity: 8 };
  }
  healthy() {
    return true;
  }
  stop() {
    return Promise.resolve();
  }
}

class Store {
  rows: SpendRecord[] = [];
  spend(now: number): SpendRecord[] {
    return this.rows.filter((r) => r.windowEnd > now);
  }
  putSpend(row: SpendRecord): void {
    this.rows = [...this.rows.filter((r) => !(r.scope === row.scope && r.name === row.name && r.windowStart === row.windowStart)), row];
  }
  pruneSpend(): void {
    /* nothing expires within a test */
  }
}

/** A span tree kept in memory: what a run started, failed and ended. */
class Span implements TraceSpan {
  readonly children: Span[] = [];
  attrs: TraceAttrs = {};
  failed: string | undefined;
  ended = false;
  constructor(readonly name: string) {}
  child(name: string, attrs?: TraceAttrs): Span {
    const s = new Span(name);
    if (attrs !== undefined) s.set(attrs);
    this.children.push(s);
    return s;
  }
  set(attrs: TraceAttrs): void {
    this.attrs = { ...this.attrs, ...attrs };
  }
  event(): void {
    /* no events on the request path's own spans */
  }
  fail(e: unknown): void {
    this.failed = e instanceof InferenceError ? e.kind : 'error';
  }
  end(): void {
    this.ended = true;
  }
  inject(): void {
    /* no outgoing calls here */
  }
  /** name(failed kind) per span, depth first, and whether every span ended. */
  outline(): string[] {
    return [`${this.name}${this.failed === undefined ? '' : `(${this.failed})`}${this.ended ? '' : ' OPEN'}`, ...this.children.flatMap((c) => c.outline().map((l) => `  ${l}`))];
  }
}

const systems: ActorSystem[] = [];
afterEach(async () => {
  for (const s of systems.splice(0)) await s.stop();
});

interface WorldOptions {
  readonly policies?: Record<string, DeploymentPolicy>;
  /** Deployment budgets (a BudgetActor and its gate, as the runtime wires them). */
  readonly budgets?: Record<string, BudgetSpec>;
}

function world(replicas: readonly Replica[], opts: WorldOptions = {}) {
  const sys = new ActorSystem(`request-run-${systems.length}`);
  systems.push(sys);
  const meters = new MetricsActor({ defaultMetrics: false });
  const metrics = sys.spawn('metrics', () => meters);
  // Ties between equally loaded replicas go to the one registered first (power-of-two choices with random() = 0).
  const table = new DpCoordinatorActor(() => 0);
  const coordinator = sys.spawn('coordinator', () => table);
  const entries = new Map<string, ReplicaEntry>();
  for (const r of replicas) {
    const entry: ReplicaEntry = { id: r.id, deployment: r.deployment, runner: r, state: 'serving' };
    entries.set(r.id, entry);
    coordinator.tell({ type: 'deployment', name: r.deployment, present: true });
    coordinator.tell({ type: 'register', replica: entry });
  }
  const budgets = opts.budgets ?? {};
  let budget: ActorRef<BudgetMsg> | undefined;
  let gate: ActorBudgetGate | undefined;
  if (Object.keys(budgets).length > 0) {
    const b = sys.spawn('budget', () => new BudgetActor({ store: new Store(), deployment: (n) => ({ budget: budgets[n] }), keys: new Map() }));
    budget = b;
    gate = new ActorBudgetGate(b, () => Promise.resolve({ promptTokens: 3, completionTokens: 7 }), (d) => budgets[d] !== undefined);
  }
  const live = new Set<RequestRun>();
  const deps: RequestDeps = {
    coordinator, metrics, router: localRouter(coordinator, table), recorder: localRecorder(metrics, meters),
    policyOf: (d) => opts.policies?.[d], live, ...(gate === undefined ? {} : { budget: gate }),
  };
  let n = 0;
  const chunks: string[] = [];
  const served: string[] = [];
  const request = (model: string, extra: { principal?: Principal; trace?: TraceSpan } = {}): RequestRun => {
    const req: GenerateRequest = { kind: 'chat', model, messages: [{ role: 'user', content: 'hi' }], sampling: { stop: [], n: 1 }, stream: true, includeUsage: false, passthrough: {} };
    const job: RequestJob = { kind: 'generate', endpoint: 'chat', req, sink: (c) => { chunks.push(c.text); }, onDeployment: (d) => { served.push(d); }, ...extra };
    return new RequestRun(deps, `r${++n}`, job);
  };
  const summary = () => metrics.ask<MetricsSummary>((reply) => ({ type: 'summary', reply }));
  const render = async () => (await metrics.ask<{ body: string }>((reply) => ({ type: 'render', reply }))).body;
  return {
    sys, deps, live, chunks, served, request, render,
    inFlight: async (d: string) => (await summary()).deployments[d]?.inFlight ?? 0,
    picks: () => [...entries.values()].reduce((sum, e) => sum + (e.assigned ?? 0), 0),
    spend: async (): Promise<BudgetStatus[]> => (budget === undefined ? [] : budget.ask((reply) => ({ type: 'spend', reply }))),
  };
}

/** Whether `p` has settled after `turns` turns of the microtask queue. */
async function settledWithin(p: Promise<unknown>, turns: number): Promise<boolean> {
  let settled = false;
  p.then(() => { settled = true; }, () => { settled = true; });
  for (let i = 0; i < turns; i++) await Promise.resolve();
  return settled;
}

describe('RequestRun', () => {
  it('with a synchronous pick and no budget, waits on nothing but its runner: settled two microtask turns after a ready answer', async () => {
    const w = world([new Replica('d#1', 'd', answer)]);
    // A run that chained async functions or went through a mailbox and an ask would need more turns than this.
    expect(await settledWithin(w.request('d').run(), 2)).toBe(true);
    expect(w.live.size).toBe(0);
    expect(w.chunks).toEqual(['a', 'b']);
  });

  it('answers with the replica and deployment that served; counts and hands back everything; runs once only', async () => {
    const w = world([new Replica('d#1', 'd', answer)]);
    const run = w.request('d');
    const out = await run.run();
    expect(out).toMatchObject({ kind: 'generate', replica: 'd#1', deployment: 'd', tokens: TOKENS });
    await expect(run.run()).rejects.toMatchObject({ kind: 'internal' });
    expect(await w.inFlight('d')).toBe(0);
    expect(w.picks()).toBe(0);
    const body = await w.render();
    expect(body).toContain(`${METRIC.requests}{deployment="d",endpoint="chat",outcome="ok"} 1`);
    expect(body).toContain(`${METRIC.interToken}_count{deployment="d"} 1`);
  });

  it("measures the gaps between each choice's own chunks (n = 2): not between chunks of different choices", async () => {
    const two: Behaviour = (_ctx, sink) => {
      for (const index of [0, 1, 0, 1, 1]) sink({ index, text: 'x', tokens: 1 });
      // A chunk without tokens (a finish reason alone) is no gap.
      sink({ index: 0, text: '', tokens: 0 });
      return Promise.resolve(TOKENS);
    };
    const w = world([new Replica('d#1', 'd', two)]);
    await w.request('d').run();
    expect(await w.render()).toContain(`${METRIC.interToken}_count{deployment="d"} 3`);
  });

  it('a failure of its own wiring is a rejection of the run, never a throw from run(); nothing stays live', async () => {
    const w = world([new Replica('d#1', 'd', answer)]);
    const broken: RequestDeps = { ...w.deps, policyOf: () => { throw new Error('spec table gone'); } };
    const run = new RequestRun(broken, 'r1', { kind: 'embed', req: { model: 'd', input: ['x'], encodingFormat: 'float' } });
    let p: Promise<RequestResult> | undefined;
    expect(() => { p = run.run(); }).not.toThrow();
    await expect(p).rejects.toMatchObject({ kind: 'internal' });
    expect(w.live.size).toBe(0);
  });

  it('cancelled before it starts: the runner is never called, nothing is picked or counted', async () => {
    const replica = new Replica('d#1', 'd', answer);
    const w = world([replica]);
    const run = w.request('d');
    run.cancel('client disconnected');
    await expect(run.run()).rejects.toMatchObject({ kind: 'internal', message: 'client disconnected' });
    expect(replica.calls).toBe(0);
    expect(w.picks()).toBe(0);
    expect(w.live.size).toBe(0);
    expect(await w.render()).not.toContain(`${METRIC.requests}{`);
  });

  it('cancelled mid-stream: the runner sees the cancellation, the run fails, counted as cancelled, nothing left in flight', async () => {
    const first = new Replica('d#1', 'd', untilCancelled(2));
    const other = new Replica('d#2', 'd', answer);
    const w = world([first, other]);
    const run = w.request('d');
    const p = run.run();
    expect(first.calls).toBe(1);
    expect(w.chunks).toEqual(['x', 'x']);
    expect(w.live.size).toBe(1);
    run.cancel('client disconnected');
    await expect(p).rejects.toMatchObject({ kind: 'engine_unavailable', message: 'work cancelled' });
    expect(first.cancelled).toEqual([expect.objectContaining({ kind: 'internal', message: 'client disconnected' })]);
    // Retryable, but the client has output and the run was cancelled: no other replica is tried.
    expect(other.calls).toBe(0);
    expect(await w.inFlight('d')).toBe(0);
    expect(w.picks()).toBe(0);
    expect(w.live.size).toBe(0);
    const body = await w.render();
    expect(body).toContain(`${METRIC.requests}{deployment="d",endpoint="chat",outcome="cancelled"} 1`);
    expect(body).not.toContain(`${METRIC.errors}{`);
  });

  it('cancelled before its first token: neither another replica nor a fallback is tried', async () => {
    const waiting = new Replica('a#1', 'a', untilCancelled(0));
    const spare = new Replica('a#2', 'a', answer);
    const fallback = new Replica('b#1', 'b', answer);
    const w = world([waiting, spare, fallback], { policies: { a: { fallbacks: ['b'], onCapacityExhausted: 'fallback' } } });
    const run = w.request('a');
    const p = run.run();
    expect(waiting.calls).toBe(1);
    run.cancel('client disconnected');
    // The runner's retryable failure would move a run that was not cancelled to a#2, then to b.
    await expect(p).rejects.toMatchObject({ kind: 'engine_unavailable' });
    expect(spare.calls).toBe(0);
    expect(fallback.calls).toBe(0);
    expect(await w.inFlight('a')).toBe(0);
    expect(w.picks()).toBe(0);
    expect(await w.render()).toContain(`${METRIC.requests}{deployment="a",endpoint="chat",outcome="cancelled"} 1`);
  });

  it("an owner that stops cancels what is still live from its set: every run fails, nothing is left in flight or picked", async () => {
    const replicas = [new Replica('d#1', 'd', untilCancelled(1)), new Replica('d#2', 'd', untilCancelled(0))];
    const w = world(replicas);
    const runs = Array.from({ length: 5 }, () => w.request('d').run());
    expect(w.live.size).toBe(5);
    expect(await w.inFlight('d')).toBe(5);
    // What the gateway does when it stops (ApiGatewayActor.postStop).
    for (const run of [...w.live]) run.cancel('request ended');
    const outcomes = await Promise.allSettled(runs);
    expect(outcomes.every((o) => o.status === 'rejected')).toBe(true);
    expect(replicas.flatMap((r) => r.cancelled)).toHaveLength(5);
    expect(replicas.flatMap((r) => r.cancelled).every((c) => c instanceof InferenceError && c.message === 'request ended')).toBe(true);
    expect(w.live.size).toBe(0);
    expect(await w.inFlight('d')).toBe(0);
    expect(w.picks()).toBe(0);
  });

  it('a failure before the first token is retried once on another replica; not after the first token', async () => {
    const broken = new Replica('d#1', 'd', fail('engine_unavailable', 'host died'));
    const healthy = new Replica('d#2', 'd', answer);
    const w = world([broken, healthy]);
    const root = new Span('request');
    await expect(w.request('d', { trace: root }).run()).resolves.toMatchObject({ replica: 'd#2', deployment: 'd' });
    // The request span is its creator's to end (the gateway's); every span below it is ended by the run.
    expect(root.outline()).toEqual([
      'request OPEN', '  deployment d', '    route', '    attempt d(engine_unavailable)', '    route', '    attempt d',
    ]);
    expect(root.children[0]?.children[3]?.attrs).toMatchObject({ 'inference.replica.id': 'd#2', 'inference.attempt': 2 });
    expect(root.attrs).toMatchObject({ 'inference.retries': 1 });
    expect(await w.render()).toContain(`${METRIC.retries}{deployment="d"} 1`);

    // Not a cancellation of the run: the runner's own failure after a chunk went out.
    const chunked = new Replica('f#1', 'f', (_ctx, sink) => {
      sink({ index: 0, text: 'x', tokens: 1 });
      return Promise.reject(new InferenceError('engine_unavailable', 'host died mid-stream'));
    });
    const spare = new Replica('f#2', 'f', answer);
    const w2 = world([chunked, spare]);
    await expect(w2.request('f').run()).rejects.toMatchObject({ kind: 'engine_unavailable', message: 'host died mid-stream' });
    expect(spare.calls).toBe(0);
    expect(await w2.inFlight('f')).toBe(0);
    expect(w2.picks()).toBe(0);
  });

  it('with no other replica, the failure on the only one is what the client hears (not the empty pick)', async () => {
    const w = world([new Replica('d#1', 'd', fail('engine_unavailable', 'host died'))]);
    await expect(w.request('d').run()).rejects.toMatchObject({ kind: 'engine_unavailable', message: 'host died' });
    expect(await w.inFlight('d')).toBe(0);
    expect(w.picks()).toBe(0);
    expect(await w.render()).toContain(`${METRIC.requests}{deployment="d",endpoint="chat",outcome="error"} 1`);
  });

  it('falls back to the next deployment after a transient failure; the answer names it; spans and metrics say so', async () => {
    const primary = new Replica('a#1', 'a', fail('upstream_error'));
    const fallback = new Replica('b#1', 'b', answer);
    const w = world([primary, fallback], { policies: { a: { fallbacks: ['b'], onCapacityExhausted: 'reject' }, b: { fallbacks: [], onCapacityExhausted: 'reject' } } });
    const root = new Span('request');
    await expect(w.request('a', { trace: root }).run()).resolves.toMatchObject({ replica: 'b#1', deployment: 'b' });
    expect(w.served).toEqual(['a', 'b']);
    expect(root.outline()).toEqual([
      'request OPEN', '  deployment a(upstream_error)', '    route', '    attempt a(upstream_error)', '    route(engine_unavailable)',
      '  fallback b', '    route', '    attempt b',
    ]);
    const body = await w.render();
    expect(body).toContain(`${METRIC.fallbacks}{deployment="a",to="b"} 1`);
    expect(body).toContain(`${METRIC.requests}{deployment="a",endpoint="chat",outcome="ok"} 1`);
    expect(await w.inFlight('a')).toBe(0);
    expect(w.picks()).toBe(0);
  });

  it('does not fall back on a request error, nor on a capacity refusal unless the deployment says so', async () => {
    const policies = (on: DeploymentPolicy['onCapacityExhausted']) => ({ a: { fallbacks: ['b'], onCapacityExhausted: on } });
    const bad = world([new Replica('a#1', 'a', fail('context_length_exceeded')), new Replica('b#1', 'b', answer)], { policies: policies('fallback') });
    await expect(bad.request('a').run()).rejects.toMatchObject({ kind: 'context_length_exceeded' });
    const full = () => Promise.reject(new InferenceError('overloaded', 'queue full', { capacity: true }));
    const refused = world([new Replica('a#1', 'a', full), new Replica('b#1', 'b', answer)], { policies: policies('reject') });
    await expect(refused.request('a').run()).rejects.toMatchObject({ kind: 'overloaded' });
    const moved = world([new Replica('a#1', 'a', full), new Replica('b#1', 'b', answer)], { policies: policies('fallback') });
    await expect(moved.request('a').run()).resolves.toMatchObject({ deployment: 'b' });
    for (const w of [bad, refused, moved]) {
      expect(await w.inFlight('a')).toBe(0);
      expect(w.picks()).toBe(0);
    }
  });

  it("a key's forbidden deployment: 403 naming `model` when asked for, skipped as a fallback (the primary's failure stands)", async () => {
    const w = world([new Replica('a#1', 'a', fail('upstream_error', 'upstream down')), new Replica('b#1', 'b', answer)], {
      policies: { a: { fallbacks: ['b'], onCapacityExhausted: 'reject' } },
    });
    const onlyB: Principal = { name: 'team', deployments: ['b'] };
    await expect(w.request('a', { principal: onlyB }).run()).rejects.toMatchObject({ kind: 'forbidden', param: 'model' });
    expect(await w.render()).not.toContain(`${METRIC.requests}{`);
    const onlyA: Principal = { name: 'team', deployments: ['a'] };
    await expect(w.request('a', { principal: onlyA }).run()).rejects.toMatchObject({ kind: 'upstream_error', message: 'upstream down' });
    expect(await w.inFlight('a')).toBe(0);
    expect(w.picks()).toBe(0);
  });

  it('budgets: reserved before the run, settled once with the real usage, with nothing or with the estimate on failure', async () => {
    const budget: BudgetSpec = { window: '1h', maxTokens: 1000, onExceeded: 'reject' };
    const tokens = async (w: ReturnType<typeof world>) => {
      const s = (await w.spend()).find((b) => b.name === 'd');
      return { spent: s?.tokens, reserved: s?.reservedTokens };
    };
    const ok = world([new Replica('d#1', 'd', answer)], { budgets: { d: budget } });
    await ok.request('d').run();
    expect(await tokens(ok)).toEqual({ spent: 5, reserved: 0 });
    const early = world([new Replica('d#1', 'd', fail('context_length_exceeded'))], { budgets: { d: budget } });
    await expect(early.request('d').run()).rejects.toMatchObject({ kind: 'context_length_exceeded' });
    expect(await tokens(early)).toEqual({ spent: 0, reserved: 0 });
    // Output went out, then the run was cancelled: no usage known, the estimate (3 + 7) is charged.
    const late = world([new Replica('d#1', 'd', untilCancelled(1))], { budgets: { d: budget } });
    const run = late.request('d');
    const p = run.run();
    while (late.chunks.length === 0) await new Promise((r) => setTimeout(r, 1));
    run.cancel('client disconnected');
    await expect(p).rejects.toBeInstanceOf(InferenceError);
    expect(await tokens(late)).toEqual({ spent: 10, reserved: 0 });
    expect(await late.inFlight('d')).toBe(0);
  });

  it("an exhausted budget falls back only under onExceeded: fallback; the fallback's own budget is reserved", async () => {
    const tiny = (onExceeded: 'reject' | 'fallback'): BudgetSpec => ({ window: '1h', maxTokens: 5, onExceeded });
    const policies = { a: { fallbacks: ['b'], onCapacityExhausted: 'reject' as const } };
    const refused = world([new Replica('a#1', 'a', answer), new Replica('b#1', 'b', answer)], { budgets: { a: tiny('reject') }, policies });
    await expect(refused.request('a').run()).rejects.toMatchObject({ kind: 'budget_exceeded' });
    const moved = world([new Replica('a#1', 'a', answer), new Replica('b#1', 'b', answer)], {
      budgets: { a: tiny('fallback'), b: { window: '1h', maxTokens: 100, onExceeded: 'reject' } }, policies,
    });
    await expect(moved.request('a').run()).resolves.toMatchObject({ deployment: 'b' });
    expect((await moved.spend()).map((b) => [b.name, b.tokens, b.reservedTokens])).toEqual(expect.arrayContaining([['a', 0, 0], ['b', 5, 0]]));
    for (const w of [refused, moved]) expect(await w.inFlight('a')).toBe(0);
  });

  it('embeddings run on the same path: the answer, the usage, the gauge', async () => {
    const w = world([new Replica('d#1', 'd', answer)]);
    const req: EmbeddingRequest = { model: 'd', input: ['one', 'two'], encodingFormat: 'float' };
    const out: RequestResult = await new RequestRun(w.deps, 'e1', { kind: 'embed', req }).run();
    expect(out).toMatchObject({ kind: 'embed', replica: 'd#1', deployment: 'd', result: { promptTokens: 4 } });
    const body = await w.render();
    expect(body).toContain(`${METRIC.requests}{deployment="d",endpoint="embedding",outcome="ok"} 1`);
    expect(await w.inFlight('d')).toBe(0);
    expect(w.picks()).toBe(0);
  });
});
