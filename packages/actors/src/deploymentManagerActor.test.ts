import { describe, expect, it } from 'vitest';
import { type DeploymentSpec, InferenceError, type ModelRunner, parseDeployment } from '@inference/core';
import { DeploymentManagerActor, type DeploymentStatus, type ReplicaFactory } from './deploymentManagerActor.js';
import { DeploymentPlacementActor } from './deploymentPlacementActor.js';
import { DpCoordinatorActor } from './dpCoordinatorActor.js';
import { ActorSystem } from './kernel.js';
import { MetricsActor } from './metricsActor.js';
import type { Placement } from './placement.js';
import { type ReplicaEntry, unassign } from './routing.js';

/** A replica whose load the test controls: ready() resolves or rejects on command. */
class Gate {
  outstanding = 0;
  stopped = false;
  resolve!: () => void;
  reject!: (e: Error) => void;
  readonly ready = new Promise<void>((res, rej) => {
    this.resolve = res;
    this.reject = rej;
  });
  runner: ModelRunner = {
    id: 'gate',
    deployment: 'm',
    generate: () => Promise.reject(new InferenceError('internal', 'unused')),
    embed: () => Promise.reject(new InferenceError('internal', 'unused')),
    load: () => ({ outstanding: this.outstanding, queued: 0, capacity: 8 }),
    healthy: () => !this.stopped,
    stop: () => {
      this.stopped = true;
      return Promise.resolve();
    },
  };
}

function setup(options: { gpus?: number } = {}) {
  const sys = new ActorSystem(`mgr${Math.random()}`);
  const gates = new Map<string, Gate>();
  const placements = new Map<string, Placement>();
  const factory: ReplicaFactory = (_spec, id, _events, placement) => {
    const g = new Gate();
    gates.set(id, g);
    placements.set(id, placement);
    return { runner: g.runner, ready: g.ready };
  };
  const coordinator = sys.spawn('coordinator', () => new DpCoordinatorActor());
  const metrics = sys.spawn('metrics', () => new MetricsActor(false));
  const inventory = {
    node: 'n1', cpuThreads: 4, ramMiB: 1000, source: 'synthetic',
    gpus: Array.from({ length: options.gpus ?? 0 }, (_, id) => ({ id, name: 'g', totalMiB: 10_000, freeMiB: 10_000, computeCapability: null })),
  };
  const placement = sys.spawn('placement', () => new DeploymentPlacementActor({ ...inventory, gpus: [] }, () => Promise.resolve(inventory)));
  const manager = sys.spawn('manager', () => new DeploymentManagerActor(coordinator, metrics, factory, 60_000, placement));
  const apply = (spec: DeploymentSpec) => manager.ask<DeploymentStatus>((reply) => ({ type: 'apply', spec, reply }));
  const scale = (name: string, replicas: number) => manager.ask<DeploymentStatus>((reply) => ({ type: 'scale', name, replicas, reply }));
  const get = (name: string) => manager.ask<DeploymentStatus>((reply) => ({ type: 'get', name, reply }));
  const table = () => coordinator.ask<ReplicaEntry[]>((reply) => ({ type: 'table', reply }));
  const until = async (cond: (s: DeploymentStatus) => boolean, name = 'm'): Promise<DeploymentStatus> => {
    for (let i = 0; i < 400; i++) {
      const s = await get(name);
      if (cond(s)) return s;
      await new Promise((r) => setTimeout(r, 5));
    }
    throw new Error(`condition not reached: ${JSON.stringify(await get(name))}`);
  };
  const pick = (deployment: string) => coordinator.ask<ReplicaEntry>((reply) => ({ type: 'pick', deployment, reply }));
  const release = (r: ReplicaEntry) => { unassign(r); };
  return { sys, gates, placements, apply, scale, get, table, until, pick, release };
}

const remote = (extra: Record<string, unknown> = {}) => parseDeployment({ name: 'm', runtime: 'openai', endpoint: 'http://127.0.0.1:1/v1', replicas: 2, ...extra });
const serving = (s: DeploymentStatus) => s.replicas.filter((r) => r.state === 'serving');

describe('DeploymentManagerActor', () => {
  it('tracks pending -> loading -> serving and derives the deployment state', async () => {
    const t = setup();
    let s = await t.apply(remote());
    await t.until((x) => x.replicas.every((r) => r.state === 'loading'));
    s = await t.get('m');
    expect(s).toMatchObject({ state: 'loading', desired: 2, serving: 0, revision: 1 });
    for (const g of t.gates.values()) g.resolve();
    s = await t.until((x) => x.state === 'serving');
    expect(s.serving).toBe(2);
    expect(s.replicas[0]?.placement).toMatchObject({ gpus: [], threads: 0 });
    await t.sys.stop();
  });

  it('a routing change keeps the replicas (same revision) and reaches the routing table', async () => {
    const t = setup();
    await t.apply(remote());
    await t.until((x) => x.replicas.length === 2 && x.replicas.every((r) => r.state === 'loading'));
    for (const g of t.gates.values()) g.resolve();
    const before = await t.until((x) => x.state === 'serving');
    const s = await t.apply(remote({ routing: { policy: 'round_robin' } }));
    expect(s.revision).toBe(before.revision);
    expect(s.spec.routing.policy).toBe('round_robin');
    expect(s.replicas.map((r) => [r.id, r.state])).toEqual(before.replicas.map((r) => [r.id, r.state]));
    // Round robin from the table: four picks alternate over the two replicas.
    const picks: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await t.pick('m');
      picks.push(r.id);
      t.release(r);
    }
    expect(new Set(picks.slice(0, 2)).size).toBe(2);
    expect(picks.slice(2)).toEqual(picks.slice(0, 2));
    await t.sys.stop();
  });

  it('scale down drains the idle replica first and keeps a busy one until its work is done', async () => {
    const t = setup();
    await t.apply(remote({ replicas: 3 }));
    await t.until((x) => x.replicas.length === 3 && x.replicas.every((r) => r.state === 'loading'));
    for (const g of t.gates.values()) g.resolve();
    await t.until((x) => x.state === 'serving');
    const [a, b, c] = [...t.gates.values()];
    if (a === undefined || b === undefined || c === undefined) throw new Error('three replicas expected');
    a.outstanding = 1;
    b.outstanding = 2;
    await t.scale('m', 1);
    // Both surplus replicas drain; the idle one (c) stops at once, the busy one waits.
    await t.until((x) => x.replicas.length === 2);
    expect(c.stopped).toBe(true);
    const s = await t.get('m');
    expect(s.replicas.map((r) => [r.id, r.state])).toEqual([['m#1', 'draining'], ['m#2', 'serving']]);
    expect(a.stopped).toBe(false);
    a.outstanding = 0;
    await t.until((x) => x.replicas.length === 1);
    expect(a.stopped).toBe(true);
    expect(b.stopped).toBe(false);
    await expect(t.scale('m', -1)).rejects.toMatchObject({ kind: 'invalid_request', param: 'replicas' });
    await expect(t.scale('nope', 1)).rejects.toMatchObject({ kind: 'not_found' });
    b.outstanding = 0;
    await t.sys.stop();
  });

  it('a spec change rolls one replica at a time and never serves fewer than desired', async () => {
    const t = setup();
    await t.apply(remote());
    await t.until((x) => x.replicas.every((r) => r.state === 'loading'));
    for (const g of t.gates.values()) g.resolve();
    await t.until((x) => x.state === 'serving');
    let s = await t.apply(remote({ remote: { maxConcurrent: 7 } }));
    expect(s.revision).toBe(2);
    for (let step = 0; step < 2; step++) {
      s = await t.until((x) => x.replicas.some((r) => r.revision === 2 && r.state === 'loading'));
      expect(s.replicas.filter((r) => r.revision === 2 && r.state !== 'serving')).toHaveLength(1);
      expect(serving(s).length).toBeGreaterThanOrEqual(2);
      const loading = s.replicas.find((r) => r.revision === 2 && r.state === 'loading');
      t.gates.get(loading?.id ?? '')?.resolve();
      await t.until((x) => x.replicas.filter((r) => r.revision === 1 && r.state !== 'draining').length === 1 - step);
    }
    s = await t.until((x) => x.state === 'serving' && x.replicas.length === 2);
    expect(s.replicas.every((r) => r.revision === 2)).toBe(true);
    expect((await t.table()).map((e) => e.id).sort()).toEqual(s.replicas.map((r) => r.id).sort());
    await t.sys.stop();
  });

  it('a new replica that fails to load halts the roll; old replicas keep serving; re-apply retries', async () => {
    const t = setup();
    await t.apply(remote());
    await t.until((x) => x.replicas.every((r) => r.state === 'loading'));
    for (const g of t.gates.values()) g.resolve();
    await t.until((x) => x.state === 'serving');
    const bad = remote({ remote: { maxConcurrent: 3 } });
    await t.apply(bad);
    const s1 = await t.until((x) => x.replicas.some((r) => r.revision === 2 && r.state === 'loading'));
    const fresh = s1.replicas.find((r) => r.revision === 2);
    t.gates.get(fresh?.id ?? '')?.reject(new Error('cannot load model x.gguf'));
    const s = await t.until((x) => x.state === 'failed');
    expect(s.reason).toMatch(/failed to load \(cannot load model x\.gguf\)/);
    expect(serving(s).map((r) => r.revision)).toEqual([1, 1]);
    await new Promise((r) => setTimeout(r, 30));
    expect((await t.get('m')).replicas).toHaveLength(3);
    // Applying again retries with a fresh replica.
    await t.apply(bad);
    await t.until((x) => x.replicas.some((r) => r.revision === 2 && r.state === 'loading'));
    await t.sys.stop();
  });

  it('a replica that cannot be placed stays pending with the reason; freed GPUs let it place', async () => {
    const t = setup({ gpus: 1 });
    const local = (name: string, replicas: number) => parseDeployment({ name, runtime: 'llama', model: 'x.gguf', replicas, engine: { gpus: 1, gpuMemoryMiB: 6000 } });
    await t.apply(local('a', 1));
    await t.until((x) => x.state === 'loading', 'a');
    expect(t.placements.get('a#1')?.gpus).toEqual([0]);
    await t.apply(local('b', 1));
    const s = await t.until((x) => x.state === 'pending' && x.reason !== undefined, 'b');
    expect(s.reason).toBe('replica b#2 cannot be placed: needs 1 GPU with 6000 MiB free, node n1 has 0 such (free after reservations: GPU 0: 4000 MiB)');
    expect(s.replicas[0]).toMatchObject({ state: 'pending' });
    await t.scale('a', 0);
    await t.until((x) => x.state === 'loading', 'b');
    expect(t.placements.get('b#2')?.gpus).toEqual([0]);
    await t.sys.stop();
  });
});
