// The request path's own steps in one process, this build against another built
// checkout (`--baseline DIR`, an earlier commit): what one request costs in the
// metrics (started, routed, finished; streamed: plus 15 inter-token gaps), the
// pick of a replica, a deadline set and cleared (64 pending, as with 64
// requests in flight), and a whole request run as that build's gateway makes it
// (a RequestRun where the build has one, else a RequestActor spawned under a
// parent actor and asked to run) against an in-process runner that answers at
// once, 64 at a time; with `node --expose-gc`, also the heap a run holds while
// its runner waits (an idle stream's share on the request path). Tight loops measure the
// steps without sockets, so the comparison holds on a machine busy with other
// work better than a whole-gateway run does; the two builds alternate in rotated
// rounds and the summary is the median and spread (min..max) of the µs per
// request over the rounds.
//
//   node [--expose-gc] test/bench/request-path-micro.mjs --baseline DIR [--rounds 5] [--requests 20000]
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { fmtStats, interleaved, saveRaw, stats } from './lib.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { values } = parseArgs({
  options: {
    baseline: { type: 'string' },
    rounds: { type: 'string', default: '5' },
    requests: { type: 'string', default: '20000' },
  },
});
if (values.baseline === undefined) throw new Error('--baseline DIR: a built checkout to compare with');
const rounds = Number(values.rounds);
const n = Number(values.requests);

const load = async (checkout) => ({
  actors: await import(pathToFileURL(join(checkout, 'packages/actors/dist/index.js')).href),
  core: await import(pathToFileURL(join(checkout, 'packages/core/dist/index.js')).href),
});
const builds = { current: await load(root), baseline: await load(values.baseline) };

const runner = {
  id: 'mock#1', deployment: 'mock', healthy: () => true, load: () => ({ outstanding: 0, queued: 0, capacity: 512 }),
  generate: () => Promise.reject(new Error('unused')), embed: () => Promise.reject(new Error('unused')), stop: () => Promise.resolve(),
};
const usage = { promptTokens: 12, completionTokens: 16 };
const gaps = Array.from({ length: 15 }, (_, i) => 0.2 + i * 0.01);

/** The request path's metrics of `n` requests, as the gateway of that build sends them. */
function metrics(b, streamed) {
  const sys = new b.actors.ActorSystem(`micro${Math.random()}`);
  const actor = new b.actors.MetricsActor({ defaultMetrics: false });
  const ref = sys.spawn('metrics', () => actor, { mailbox: 16_384 });
  const record = b.actors.localRecorder === undefined ? (m) => ref.tell(m) : b.actors.localRecorder(ref, actor).record;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    record({ type: 'started', deployment: 'mock' });
    record({ type: 'routed', deployment: 'mock', policy: 'least_load', outcome: 'none' });
    record({
      type: 'finished', deployment: 'mock', endpoint: 'chat', durationMs: 3.2, retries: 0, replica: 'mock#1', served: 'mock', usage, ttftMs: 1.1,
      ...(streamed ? { interTokenMs: gaps } : {}),
    });
  }
  const us = ((performance.now() - t0) * 1000) / n;
  void sys.stop();
  return us;
}

/** `n` picks of the only replica and their hand-back, as the gateway of that build makes them. */
async function pick(b) {
  const sys = new b.actors.ActorSystem(`micro${Math.random()}`);
  const table = new b.actors.DpCoordinatorActor(Math.random, { onDecision: () => undefined });
  const ref = sys.spawn('coordinator', () => table, { mailbox: 4096 });
  ref.tell({ type: 'deployment', name: 'mock', present: true });
  ref.tell({ type: 'register', replica: { id: 'mock#1', deployment: 'mock', runner, state: 'serving' } });
  const exclude = new Set();
  const router = b.actors.localRouter === undefined ? undefined : b.actors.localRouter(ref, table);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const r = router === undefined
      ? await ref.ask((reply) => ({ type: 'pick', deployment: 'mock', exclude, request: undefined, reply }), 10_000)
      : router.pick('mock', exclude, undefined);
    b.actors.unassign(r);
  }
  const us = ((performance.now() - t0) * 1000) / n;
  await sys.stop();
  return us;
}

/**
 * `n` deadlines of an upstream call (600 s) set and cleared before they fire, as
 * that build does it, 64 of them pending at any time (64 requests in flight).
 */
function deadline(b) {
  const parent = new b.core.Cancellation();
  const ring = Array.from({ length: 64 }, () => b.core.linkedCancellation(parent, 600_000, () => 'timeout'));
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    ring[i % 64].done();
    ring[i % 64] = b.core.linkedCancellation(parent, 600_000, () => 'timeout');
  }
  const us = ((performance.now() - t0) * 1000) / n;
  for (const d of ring) d.done();
  return us;
}

/** A ready answer: `chunks` chunks through the sink, then the tokens (what an upstream read in one piece looks like to the request path). */
function readyRunner(chunks) {
  const tokens = { choices: [{ index: 0, text: 'x'.repeat(chunks), finishReason: 'stop' }], usage: { promptTokens: 12, completionTokens: chunks } };
  return {
    ...runner,
    generate: (_req, _ctx, sink) => {
      for (let i = 0; i < chunks; i++) sink({ index: 0, text: 'x', tokens: 1 });
      return Promise.resolve(tokens);
    },
  };
}

/** The gateway's wiring of that build: routing table and metrics read in place, a parent for request actors where it spawns them. */
function requestPath(b, run) {
  const sys = new b.actors.ActorSystem(`micro${Math.random()}`);
  const meters = new b.actors.MetricsActor({ defaultMetrics: false });
  const metrics = sys.spawn('metrics', () => meters, { mailbox: 16_384 });
  const table = new b.actors.DpCoordinatorActor(Math.random, { onDecision: () => undefined });
  const coordinator = sys.spawn('coordinator', () => table, { mailbox: 4096 });
  coordinator.tell({ type: 'deployment', name: 'mock', present: true });
  coordinator.tell({ type: 'register', replica: { id: 'mock#1', deployment: 'mock', runner: run, state: 'serving' } });
  const live = new Set();
  const policy = { fallbacks: [], onCapacityExhausted: 'queue' };
  const deps = {
    coordinator, metrics, router: b.actors.localRouter(coordinator, table), recorder: b.actors.localRecorder(metrics, meters),
    policyOf: () => policy, live,
  };
  let parent;
  class Gateway extends b.actors.Actor {
    preStart() {
      parent = this.context;
    }
    receive() {}
  }
  sys.spawn('gateway', () => new Gateway());
  const req = { kind: 'chat', model: 'mock', messages: [{ role: 'user', content: 'hi' }], sampling: { stop: [], n: 1 }, stream: true, includeUsage: false, passthrough: {} };
  let seq = 0;
  /** One request as that build's gateway starts it: its cancel hook registered, its run started. */
  const start = () => {
    const id = `req_${++seq}`;
    const job = { kind: 'generate', endpoint: 'chat', req, sink: () => undefined };
    if (b.actors.RequestRun !== undefined) {
      const r = new b.actors.RequestRun(deps, id, job);
      const cancel = () => { r.cancel('client disconnected'); };
      return { cancel, done: r.run() };
    }
    const ref = parent.spawn(`req-${seq}`, () => new b.actors.RequestActor(deps, id, job), { mailbox: 4 });
    const cancel = () => ref.tell({ type: 'cancel', reason: 'client disconnected' });
    return { cancel, done: ref.ask((reply) => ({ type: 'run', reply }), Infinity) };
  };
  return { sys, start, live };
}

/** `n` whole runs, 64 in flight at a time, against a runner that answers at once with `chunks` chunks. */
async function wholeRun(b, chunks) {
  const path = requestPath(b, readyRunner(chunks));
  const batch = new Array(64);
  const t0 = performance.now();
  for (let i = 0; i < n; i += 64) {
    for (let j = 0; j < 64; j++) batch[j] = path.start().done;
    await Promise.all(batch);
  }
  const us = ((performance.now() - t0) * 1000) / n;
  await path.sys.stop();
  return us;
}

/** KiB of heap per run held open (its runner waits until cancelled), 4000 runs, after a full GC each side. */
async function heldRun(b) {
  const waiting = {
    ...runner,
    generate: (_req, ctx, sink) => {
      sink({ index: 0, text: 'x', tokens: 1 });
      return new Promise((_resolve, reject) => { ctx.signal.addEventListener('abort', () => { reject(ctx.signal.reason); }); });
    },
  };
  const path = requestPath(b, waiting);
  const held = 4000;
  // Warm up the shapes, then measure from a collected heap.
  const warm = Array.from({ length: 64 }, () => path.start());
  for (const w of warm) w.cancel();
  await Promise.allSettled(warm.map((w) => w.done));
  globalThis.gc();
  const before = process.memoryUsage().heapUsed;
  const open = Array.from({ length: held }, () => path.start());
  await new Promise((r) => setImmediate(r));
  globalThis.gc();
  const kib = (process.memoryUsage().heapUsed - before) / held / 1024;
  for (const o of open) o.cancel();
  await Promise.allSettled(open.map((o) => o.done));
  await path.sys.stop();
  return kib;
}

const steps = {
  'metrics, non-streamed': (b) => metrics(b, false),
  'metrics, streamed (15 gaps)': (b) => metrics(b, true),
  'pick': pick,
  'deadline set and cleared': deadline,
  'request run, 1 chunk': (b) => wholeRun(b, 1),
  'request run, 16 chunks': (b) => wholeRun(b, 16),
  ...(typeof globalThis.gc === 'function' ? { 'held run (KiB, not µs)': heldRun } : {}),
};
const results = {};
console.log(`request-path steps — ${n} requests per step, build and round; ${rounds} rounds, builds in rotated order; µs per request, median (min..max)`);
console.log(`baseline: ${values.baseline}${typeof globalThis.gc === 'function' ? '' : '   (held runs need node --expose-gc: not measured)'}`);
for (const [name, fn] of Object.entries(steps)) {
  // One unmeasured pass each (JIT).
  for (const b of Object.values(builds)) await fn(b);
  const r = await interleaved(Object.keys(builds), rounds, (side) => fn(builds[side]));
  results[name] = r;
  const ratio = stats(r.current.map((x, i) => x / r.baseline[i]));
  console.log(`  ${name.padEnd(30)} baseline ${fmtStats(stats(r.baseline))}   current ${fmtStats(stats(r.current))}   current/baseline ${fmtStats(ratio)}x`);
}
console.log(`raw rounds: ${saveRaw('request-path-micro', { settings: { rounds, requests: n, baseline: values.baseline }, results })}`);
