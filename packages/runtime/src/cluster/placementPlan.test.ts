import type { DeploymentSpec } from '@inference/core';
import { parseDeployment } from '@inference/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type NodeCounts, type PlacementMember, planPlacement } from './placementPlan.js';

const remote = (name: string, replicas: number): DeploymentSpec => parseDeployment({ name, runtime: 'openai', endpoint: 'http://x', replicas });
const member = (name: string, gpus = 0): PlacementMember => ({ name, inventory: { gpus, cpuThreads: 8, ramMiB: 8192 } });
const sum = (c: NodeCounts | undefined): number => Object.values(c ?? {}).reduce((a, b) => a + b, 0);

describe('planPlacement', () => {
  it('spreads replicas across nodes, least loaded first', () => {
    const plan = planPlacement([remote('gpt', 3), remote('s1', 1), remote('s2', 1)], [member('a'), member('b'), member('c')], new Map());
    expect(plan.get('gpt')).toEqual({ a: 1, b: 1, c: 1 });
    expect(Object.keys(plan.get('s1') ?? {})).not.toEqual(Object.keys(plan.get('s2') ?? {}));
  });

  it('keeps replicas on live nodes and moves only those of a node that left', () => {
    const current = new Map<string, NodeCounts>([['gpt', { a: 1, b: 1, c: 1 }], ['solo', { b: 1 }]]);
    const plan = planPlacement([remote('gpt', 3), remote('solo', 1)], [member('a'), member('c')], current);
    expect(sum(plan.get('gpt'))).toBe(3);
    expect(plan.get('gpt')?.b).toBeUndefined();
    expect((plan.get('gpt')?.a ?? 0) >= 1 && (plan.get('gpt')?.c ?? 0) >= 1).toBe(true);
    expect(sum(plan.get('solo'))).toBe(1);
  });

  it('a node in holding keeps its replicas and gets nothing new', () => {
    const current = new Map<string, NodeCounts>([['gpt', { a: 1, b: 1 }]]);
    const plan = planPlacement([remote('gpt', 3), remote('new', 2)], [member('a')], current, new Set(['b']));
    expect(plan.get('gpt')).toEqual({ a: 2, b: 1 });
    expect(plan.get('new')).toEqual({ a: 2 });
  });

  it('GPU deployments go only where the GPUs are', () => {
    const llama = parseDeployment({ name: 'l', runtime: 'llama', model: '/m.gguf', replicas: 3, engine: { gpus: 1 } });
    const plan = planPlacement([llama], [member('a', 2), member('b', 0), member('c', 0)], new Map());
    expect(plan.get('l')).toEqual({ a: 2 });
  });

  it('property: counts sum to replicas (remote), and re-planning changes nothing', () => {
    fc.assert(fc.property(
      fc.array(fc.integer({ min: 0, max: 6 }), { minLength: 1, maxLength: 5 }),
      fc.integer({ min: 1, max: 5 }),
      (replicas, nodes) => {
        const specs = replicas.map((r, i) => remote(`d${String(i)}`, r));
        const members = Array.from({ length: nodes }, (_, i) => member(`n${String(i)}`));
        const plan = planPlacement(specs, members, new Map());
        for (const s of specs) expect(sum(plan.get(s.name))).toBe(s.replicas);
        expect(planPlacement(specs, members, plan)).toEqual(plan);
        // Spread: per node totals differ by at most one.
        const totals = members.map((m) => specs.reduce((a, s) => a + (plan.get(s.name)?.[m.name] ?? 0), 0));
        expect(Math.max(...totals) - Math.min(...totals)).toBeLessThanOrEqual(1);
      },
    ));
  });
});
