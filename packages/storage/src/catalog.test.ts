// The seed rule: admin changes win over the file on restart; untouched file
// deployments follow the file; admin removals stay removed.
import { type DeploymentSpec, parseDeployment } from '@inference/core';
import { describe, expect, it } from 'vitest';
import { Catalog, planSeed } from './catalog.js';
import { MemoryStore } from './store.js';

function dep(name: string, replicas = 1): DeploymentSpec {
  return parseDeployment({ name, runtime: 'openai', endpoint: 'http://127.0.0.1:1/v1', replicas });
}

describe('planSeed', () => {
  it('an empty store runs the file and records it as config', () => {
    const plan = planSeed([dep('a'), dep('b')], [], 9);
    expect(plan.specs.map((s) => s.name)).toEqual(['a', 'b']);
    expect(plan.put.map((e) => [e.name, e.source])).toEqual([['a', 'config'], ['b', 'config']]);
    expect(plan.drop).toEqual([]);
  });

  it('an admin entry wins over the file, an admin tombstone removes a file deployment, admin-only ones are added', () => {
    const stored = [
      { name: 'a', spec: dep('a', 4), source: 'admin' as const, updatedAt: 1 },
      { name: 'b', spec: null, source: 'admin' as const, updatedAt: 1 },
      { name: 'c', spec: dep('c', 2), source: 'admin' as const, updatedAt: 1 },
    ];
    const plan = planSeed([dep('a', 1), dep('b')], stored, 9);
    expect(plan.specs.map((s) => [s.name, s.replicas])).toEqual([['a', 4], ['c', 2]]);
    expect(plan.put).toEqual([]);
  });

  it('a file-seeded entry follows the file, and is dropped when it leaves the file', () => {
    const stored = [
      { name: 'a', spec: dep('a', 1), source: 'config' as const, updatedAt: 1 },
      { name: 'gone', spec: dep('gone'), source: 'config' as const, updatedAt: 1 },
    ];
    const plan = planSeed([dep('a', 3)], stored, 9);
    expect(plan.specs.map((s) => [s.name, s.replicas])).toEqual([['a', 3]]);
    expect(plan.drop).toEqual(['gone']);
  });

  it('a stored spec that no longer parses is a clear error naming it', () => {
    const stored = [{ name: 'bad', spec: { name: 'bad', runtime: 'nope' }, source: 'admin' as const, updatedAt: 1 }];
    expect(() => planSeed([], stored, 9)).toThrow(/stored deployment 'bad' is no longer valid/);
  });
});

describe('Catalog', () => {
  it('records admin applies and removals so the next seed sees them', () => {
    const store = new MemoryStore();
    const first = new Catalog(store, () => 1);
    expect(first.seed([dep('a'), dep('b')]).map((s) => s.name)).toEqual(['a', 'b']);
    first.applied(dep('a', 5));
    first.removed('b');
    first.applied(dep('z', 2));
    const again = new Catalog(store, () => 2).seed([dep('a'), dep('b')]);
    expect(again.map((s) => [s.name, s.replicas])).toEqual([['a', 5], ['z', 2]]);
  });
});
