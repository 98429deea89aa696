import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DeploymentPlacementActor } from './deploymentPlacementActor.js';
import { ActorSystem } from './kernel.js';
import { type GpuInfo, type NodeInventory, type PlaceResult, type Placement, gpuUsage, place, placementEnv } from './placement.js';

const gpu = (id: number, freeMiB: number): GpuInfo => ({ id, name: `GPU${id}`, totalMiB: 24_000, freeMiB, computeCapability: '8.9' });
const node = (gpus: GpuInfo[], cpuThreads = 16): NodeInventory => ({ node: 'n1', cpuThreads, ramMiB: 64_000, gpus, source: 'synthetic' });
const req = (gpus: number, gpuMemoryMiB: number, strategy: 'binpack' | 'spread' = 'binpack', threads = 1) => ({ gpus, gpuMemoryMiB, threads, strategy });

function ok(r: PlaceResult): Placement {
  if (!r.ok) throw new Error(r.reason);
  return r.placement;
}

describe('place', () => {
  it('bin-packs onto the fullest GPU that fits, spread onto the idlest', () => {
    const inv = node([gpu(0, 20_000), gpu(1, 20_000)]);
    const reserved: Placement[] = [];
    for (let i = 0; i < 2; i++) reserved.push(ok(place(inv, reserved, req(1, 8000))));
    expect(reserved.map((p) => p.gpus)).toEqual([[0], [0]]);
    const spread: Placement[] = [];
    for (let i = 0; i < 2; i++) spread.push(ok(place(inv, spread, req(1, 8000, 'spread'))));
    expect(spread.map((p) => p.gpus)).toEqual([[0], [1]]);
  });

  it('a GPU-less node refuses GPU replicas with a reason and places CPU ones', () => {
    const inv = node([], 2);
    const r = place(inv, [], req(1, 8000));
    expect(r).toEqual({ ok: false, reason: 'needs 1 GPU with 8000 MiB free, node n1 has 0 GPUs (synthetic)' });
    expect(ok(place(inv, [], req(0, 0))).gpus).toEqual([]);
  });

  it('exhaustion leaves a replica unplaced; releasing a reservation makes room', () => {
    const inv = node([gpu(0, 10_000), gpu(1, 10_000)]);
    const a = ok(place(inv, [], req(2, 6000)));
    expect(a.gpus).toEqual([0, 1]);
    const refused = place(inv, [a], req(1, 6000));
    expect(refused.ok).toBe(false);
    if (!refused.ok) expect(refused.reason).toMatch(/needs 1 GPU with 6000 MiB free, node n1 has 0 such \(free after reservations: GPU 0: 4000 MiB, GPU 1: 4000 MiB\)/);
    expect(ok(place(inv, [], req(1, 6000))).gpus).toEqual([0]);
  });

  it('accounts CPU threads with a warning, never a refusal', () => {
    const inv = node([], 2);
    const a = ok(place(inv, [], req(0, 0, 'binpack', 2)));
    expect(a.warning).toBeUndefined();
    expect(ok(place(inv, [a], req(0, 0, 'binpack', 1))).warning).toBe('CPU oversubscribed: 3 threads reserved on 2 cores');
  });

  it('the engine host sees only its GPUs', () => {
    expect(placementEnv({ node: 'n', gpus: [1, 3], gpuMemoryMiB: 0, threads: 1 })).toEqual({ CUDA_VISIBLE_DEVICES: '1,3' });
    expect(placementEnv({ node: 'n', gpus: [], gpuMemoryMiB: 0, threads: 1 })).toEqual({ CUDA_VISIBLE_DEVICES: '' });
  });

  it('property: reservations never overcommit a GPU and ids are distinct', () => {
    fc.assert(fc.property(
      fc.array(fc.integer({ min: 0, max: 40_000 }), { minLength: 0, maxLength: 6 }),
      fc.array(fc.record({ gpus: fc.integer({ min: 0, max: 3 }), mem: fc.integer({ min: 0, max: 20_000 }), spread: fc.boolean() }), { maxLength: 20 }),
      (frees, asks) => {
        const inv = node(frees.map((f, i) => gpu(i, f)));
        const reserved: Placement[] = [];
        for (const a of asks) {
          const r = place(inv, reserved, req(a.gpus, a.gpus === 0 ? 0 : a.mem, a.spread ? 'spread' : 'binpack'));
          if (!r.ok) continue;
          expect(new Set(r.placement.gpus).size).toBe(a.gpus);
          reserved.push(r.placement);
        }
        for (const u of gpuUsage(inv, reserved).values()) expect(u.freeMiB).toBeGreaterThanOrEqual(0);
      },
    ));
  });
});

describe('DeploymentPlacementActor', () => {
  it('reserves per replica and releases on removal', async () => {
    const sys = new ActorSystem(`placement${Math.random()}`);
    let probes = 0;
    const probe = () => {
      probes++;
      return Promise.resolve({ gpus: [gpu(0, 10_000)], source: 'synthetic' });
    };
    const ref = sys.spawn('placement', () => new DeploymentPlacementActor(node([]), probe));
    // CPU replicas place without probing the GPUs.
    expect(await ref.ask<PlaceResult>((reply) => ({ type: 'place', replicaId: 'cpu', request: req(0, 0), reply }))).toMatchObject({ ok: true });
    expect(probes).toBe(0);
    const ask = (replicaId: string) => ref.ask<PlaceResult>((reply) => ({ type: 'place', replicaId, request: req(1, 8000), reply }));
    expect((await ask('a')).ok).toBe(true);
    expect(await ask('a')).toMatchObject({ ok: true, placement: { gpus: [0] } });
    expect((await ask('b')).ok).toBe(false);
    ref.tell({ type: 'release', replicaId: 'a' });
    expect(await ask('b')).toMatchObject({ ok: true, placement: { gpus: [0] } });
    expect(probes).toBe(1);
    await sys.stop();
  });
});
