import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { ModelRunner } from '@inference/core';
import { pickReplica, type ReplicaEntry } from './routing.js';

function replica(id: string, outstanding: number, healthy = true, state: ReplicaEntry['state'] = 'serving'): ReplicaEntry {
  const runner = {
    id, deployment: 'd', healthy: () => healthy, load: () => ({ outstanding, queued: 0, capacity: 8 }),
  } as unknown as ModelRunner;
  return { id, deployment: 'd', runner, state };
}

describe('pickReplica', () => {
  it('picks the least loaded replica', () => {
    expect(pickReplica([replica('a', 3), replica('b', 1), replica('c', 2)])?.id).toBe('b');
  });

  it('skips unhealthy, draining and excluded replicas', () => {
    expect(pickReplica([replica('a', 0, false), replica('b', 0, true, 'draining'), replica('c', 5)])?.id).toBe('c');
    expect(pickReplica([replica('a', 0), replica('b', 1)], Math.random, new Set(['a']))?.id).toBe('b');
    expect(pickReplica([replica('a', 0, false)])).toBeUndefined();
  });

  it('always returns a routable replica of minimal load (property)', () => {
    fc.assert(fc.property(
      fc.array(fc.record({ load: fc.integer({ min: 0, max: 5 }), healthy: fc.boolean() }), { minLength: 1, maxLength: 12 }),
      fc.double({ min: 0, max: 0.999999, noNaN: true }),
      (rs, x) => {
        const entries = rs.map((r, i) => replica(String(i), r.load, r.healthy));
        const picked = pickReplica(entries, () => x);
        const healthy = rs.filter((r) => r.healthy);
        if (healthy.length === 0) return picked === undefined;
        const min = Math.min(...healthy.map((r) => r.load));
        return picked !== undefined && rs[Number(picked.id)]?.healthy === true && rs[Number(picked.id)]?.load === min;
      },
    ));
  });

  it('spreads ties across replicas', () => {
    const entries = [replica('a', 0), replica('b', 0), replica('c', 0)];
    const seen = new Set<string>();
    for (let i = 0; i < 100; i++) seen.add(pickReplica(entries)?.id ?? '');
    expect(seen).toEqual(new Set(['a', 'b', 'c']));
  });

  it('a replica a hop away (remoteBias) is taken only when the local ones are busier by more than the bias', () => {
    const far = (outstanding: number): ReplicaEntry => ({ ...replica('far', outstanding), remoteBias: 8 });
    expect(pickReplica([replica('near', 5), far(0)])?.id).toBe('near');
    expect(pickReplica([replica('near', 9), far(0)])?.id).toBe('far');
    expect(pickReplica([replica('near', 0, false), far(3)])?.id).toBe('far');
  });
});
