// Prefix routing as pure functions: the routing key, the bounded index, and the
// pick properties (routable only, within the load slack, holder first at equal load).

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { type ChatRequest, type CompletionRequest, type ModelRunner, defaultRouting } from '@inference/core';
import { PREFIX_BLOCK_CHARS, PREFIX_MAX_BLOCKS, PrefixIndex, hasFreeSlot, pickPrefix, pickRoundRobin, prefixKey, route, routingState } from './prefixRouting.js';
import { type ReplicaEntry, loadOf } from './routing.js';

function replica(id: string, outstanding: number, healthy = true, state: ReplicaEntry['state'] = 'serving', capacity = 8): ReplicaEntry {
  const runner = {
    id, deployment: 'd', healthy: () => healthy, load: () => ({ outstanding, queued: 0, capacity }),
  } as unknown as ModelRunner;
  return { id, deployment: 'd', runner, state };
}

const base = { model: 'd', sampling: { stop: [], n: 1 }, stream: false, includeUsage: false, passthrough: {} };
const completion = (prompt: string): CompletionRequest => ({ ...base, kind: 'completion', prompt });
const chat = (system: string, user: string): ChatRequest => ({
  ...base, kind: 'chat', messages: [{ role: 'system', content: system }, { role: 'user', content: user }],
});

const SYSTEM_A = 'You are a helpful assistant who tells short stories about animals. '.repeat(8);
const SYSTEM_B = 'You are a terse assistant who answers questions about the weather. '.repeat(8);

describe('prefixKey', () => {
  it('is one hash per full block, and shared leading text gives a shared leading key', () => {
    const a1 = prefixKey(chat(SYSTEM_A, 'Tell me about a cat.'));
    const a2 = prefixKey(chat(SYSTEM_A, 'Tell me about a dog, please, a long one.'));
    const b = prefixKey(chat(SYSTEM_B, 'Tell me about a cat.'));
    expect(a1.length).toBeGreaterThanOrEqual(Math.floor(SYSTEM_A.length / PREFIX_BLOCK_CHARS));
    const shared = Math.floor(SYSTEM_A.length / PREFIX_BLOCK_CHARS);
    expect(a1.slice(0, shared)).toEqual(a2.slice(0, shared));
    expect(a1[0]).not.toBe(b[0]);
    expect(prefixKey(completion('short'))).toEqual([]);
  });

  it('keys two texts alike up to the first block that differs (property)', () => {
    fc.assert(fc.property(fc.string({ maxLength: 600 }), fc.string({ maxLength: 300 }), fc.string({ maxLength: 300 }), (p, s1, s2) => {
      const k1 = prefixKey(completion(p + s1));
      const k2 = prefixKey(completion(p + s2));
      const common = Math.floor(p.length / PREFIX_BLOCK_CHARS);
      expect(k1.slice(0, common)).toEqual(k2.slice(0, common));
      expect(k1.length).toBe(Math.min(PREFIX_MAX_BLOCKS, Math.floor((p + s1).length / PREFIX_BLOCK_CHARS)));
    }));
  });

  it('stops at PREFIX_MAX_BLOCKS whatever the prompt length', () => {
    expect(prefixKey(completion('x'.repeat(PREFIX_BLOCK_CHARS * PREFIX_MAX_BLOCKS * 4))).length).toBe(PREFIX_MAX_BLOCKS);
    const many = { ...chat(SYSTEM_A, 'u'), messages: Array.from({ length: 1000 }, () => ({ role: 'user' as const, content: SYSTEM_A })) };
    expect(prefixKey(many).length).toBe(PREFIX_MAX_BLOCKS);
  });

  it('tells message boundaries apart', () => {
    const x = 'y'.repeat(PREFIX_BLOCK_CHARS);
    const one: ChatRequest = { ...chat('', ''), messages: [{ role: 'user', content: x + x }] };
    const two: ChatRequest = { ...chat('', ''), messages: [{ role: 'user', content: x }, { role: 'user', content: x }] };
    expect(prefixKey(one)[1]).not.toBe(prefixKey(two)[1]);
  });
});

describe('PrefixIndex', () => {
  it('matches the longest recorded prefix per replica, and forgets replicas and expired holders', () => {
    const idx = new PrefixIndex({ ttlMs: 1000 });
    idx.record([1, 2, 3], 'a', 0);
    idx.record([1, 2], 'b', 10);
    expect(idx.match([1, 2, 3, 4], 20)).toEqual(new Map([['a', 3], ['b', 2]]));
    expect(idx.match([9, 2, 3], 20).size).toBe(0);
    expect(idx.match([1, 2, 3], 1005)).toEqual(new Map([['b', 2]]));
    idx.forget('b');
    expect(idx.match([1, 2, 3], 20)).toEqual(new Map([['a', 3]]));
  });

  it('keeps memory bounded: at most `capacity` hashes and `maxHolders` replicas per hash (property)', () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 4 }),
      fc.array(fc.record({ key: fc.array(fc.integer({ min: 0, max: 60 }), { maxLength: 12 }), replica: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f') }), { maxLength: 80 }),
      (capacity, maxHolders, ops) => {
        const idx = new PrefixIndex({ capacity, maxHolders });
        ops.forEach((op, t) => {
          idx.record(op.key, op.replica, t);
          expect(idx.size).toBeLessThanOrEqual(capacity);
          expect(idx.holders()).toBeLessThanOrEqual(capacity * maxHolders);
        });
      },
    ));
  });

  it('evicts the deep blocks of a prefix before its shallow ones', () => {
    const idx = new PrefixIndex({ capacity: 4 });
    idx.record([1, 2, 3, 4], 'a', 0);
    idx.record([7, 8], 'b', 1);
    // The two least recently used hashes were a's deepest: a still matches 2 blocks.
    expect(idx.match([1, 2, 3, 4], 2)).toEqual(new Map([['a', 2]]));
  });
});

interface Scenario {
  loads: { load: number; healthy: boolean; state: ReplicaEntry['state'] }[];
  holders: { replica: number; depth: number }[];
  slack: number;
  excluded: number[];
}

const scenario: fc.Arbitrary<Scenario> = fc.record({
  loads: fc.array(fc.record({
    load: fc.integer({ min: 0, max: 10 }), healthy: fc.boolean(),
    state: fc.constantFrom<ReplicaEntry['state']>('serving', 'serving', 'serving', 'draining', 'failed', 'loading'),
  }), { minLength: 1, maxLength: 8 }),
  holders: fc.array(fc.record({ replica: fc.integer({ min: 0, max: 7 }), depth: fc.integer({ min: 1, max: 6 }) }), { maxLength: 8 }),
  slack: fc.integer({ min: 0, max: 5 }),
  excluded: fc.array(fc.integer({ min: 0, max: 7 }), { maxLength: 3 }),
});

const KEY = [11, 12, 13, 14, 15, 16];

function setUp(s: Scenario): { entries: ReplicaEntry[]; idx: PrefixIndex; exclude: Set<string> } {
  const entries = s.loads.map((r, i) => replica(String(i), r.load, r.healthy, r.state));
  const idx = new PrefixIndex();
  for (const h of s.holders) idx.record(KEY.slice(0, h.depth), String(h.replica), 0);
  return { entries, idx, exclude: new Set(s.excluded.map(String)) };
}

describe('pickPrefix', () => {
  it('never picks an unhealthy, non-serving or excluded replica, and never exceeds the load slack (property)', () => {
    fc.assert(fc.property(scenario, fc.double({ min: 0, max: 0.999999, noNaN: true }), (s, x) => {
      const { entries, idx, exclude } = setUp(s);
      const ok = entries.filter((r) => r.state === 'serving' && r.runner.healthy() && !exclude.has(r.id));
      const choice = pickPrefix(entries, KEY, idx, s.slack, 1, () => x, exclude);
      if (ok.length === 0) {
        expect(choice).toBeUndefined();
        return;
      }
      expect(choice).toBeDefined();
      if (choice === undefined) return;
      expect(ok).toContain(choice.replica);
      const min = Math.min(...ok.map(loadOf));
      expect(loadOf(choice.replica)).toBeLessThanOrEqual(min + s.slack);
      if (choice.outcome !== 'hit') expect(loadOf(choice.replica)).toBe(min);
    }));
  });

  it('with equal load, picks the replica holding the longest prefix (property)', () => {
    fc.assert(fc.property(fc.integer({ min: 2, max: 8 }), fc.integer({ min: 0, max: 7 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 5 }), (n, h, depth, load) => {
      const holder = h % n;
      const entries = Array.from({ length: n }, (_, i) => replica(String(i), load));
      const idx = new PrefixIndex();
      idx.record(KEY.slice(0, depth), String(holder), 0);
      // Another replica holds less of the prompt.
      if (depth > 1) idx.record(KEY.slice(0, depth - 1), String((holder + 1) % n), 0);
      const choice = pickPrefix(entries, KEY, idx, 0, 1, Math.random);
      expect(choice?.replica.id).toBe(String(holder));
      expect(choice?.outcome).toBe('hit');
      expect(choice?.depth).toBe(depth);
    }));
  });

  it('spills to the least loaded replica when the holder is past the slack', () => {
    const entries = [replica('a', 5), replica('b', 1)];
    const idx = new PrefixIndex();
    idx.record(KEY, 'a', 0);
    expect(pickPrefix(entries, KEY, idx, 4, 1)).toMatchObject({ outcome: 'hit', depth: KEY.length, replica: { id: 'a' } });
    expect(pickPrefix(entries, KEY, idx, 3, 1)).toMatchObject({ outcome: 'spill', replica: { id: 'b' } });
    expect(pickPrefix(entries, [99], idx, 3, 1)).toMatchObject({ outcome: 'miss', replica: { id: 'b' } });
  });

  it('with freeSlot, follows a holder that has a free sequence slot past the slack, and applies the slack once it is full', () => {
    const idx = new PrefixIndex();
    idx.record(KEY, 'a', 0);
    // 7 of 8 slots busy, 7 above the idle replica: a free slot, so a hit; the old rule spills.
    expect(pickPrefix([replica('a', 7), replica('b', 0)], KEY, idx, 4, 1, Math.random, undefined, true)).toMatchObject({ outcome: 'hit', replica: { id: 'a' } });
    expect(pickPrefix([replica('a', 7), replica('b', 0)], KEY, idx, 4, 1)).toMatchObject({ outcome: 'spill', replica: { id: 'b' } });
    // Full (8 of 8): the slack rule decides, within it a hit, past it a spill.
    expect(pickPrefix([replica('a', 8), replica('b', 4)], KEY, idx, 4, 1, Math.random, undefined, true)).toMatchObject({ outcome: 'hit', replica: { id: 'a' } });
    expect(pickPrefix([replica('a', 8), replica('b', 3)], KEY, idx, 4, 1, Math.random, undefined, true)).toMatchObject({ outcome: 'spill', replica: { id: 'b' } });
    // Picks not yet admitted count against the slots; a replica that reports no capacity has none free.
    const assigned = replica('a', 0);
    assigned.assigned = 8;
    expect(hasFreeSlot(assigned)).toBe(false);
    expect(pickPrefix([assigned, replica('b', 0)], KEY, idx, 4, 1, Math.random, undefined, true)).toMatchObject({ outcome: 'spill' });
    expect(pickPrefix([replica('a', 5, true, 'serving', 0), replica('b', 0)], KEY, idx, 4, 1, Math.random, undefined, true))
      .toMatchObject({ outcome: 'spill', replica: { id: 'b' } });
    // A free slot never makes an unroutable holder routable.
    expect(pickPrefix([replica('a', 0, false), replica('b', 3)], KEY, idx, 0, 1, Math.random, undefined, true)).toMatchObject({ outcome: 'miss', replica: { id: 'b' } });
  });

  it('with freeSlot, a hit is within the slack or on a holder with a free slot; others are least loaded (property)', () => {
    fc.assert(fc.property(scenario, fc.double({ min: 0, max: 0.999999, noNaN: true }), (s, x) => {
      const { entries, idx, exclude } = setUp(s);
      const ok = entries.filter((r) => r.state === 'serving' && r.runner.healthy() && !exclude.has(r.id));
      const choice = pickPrefix(entries, KEY, idx, s.slack, 1, () => x, exclude, true);
      if (choice === undefined) {
        expect(ok).toEqual([]);
        return;
      }
      expect(ok).toContain(choice.replica);
      const min = Math.min(...ok.map(loadOf));
      if (choice.outcome === 'hit') expect(loadOf(choice.replica) <= min + s.slack || hasFreeSlot(choice.replica)).toBe(true);
      else expect(loadOf(choice.replica)).toBe(min);
    }));
  });
});

describe('route', () => {
  it('round robin visits every routable replica in turn', () => {
    const entries = [replica('a', 9), replica('b', 0, false), replica('c', 0), replica('d', 3, true, 'draining')];
    const st = routingState({ policy: 'round_robin', prefixLoadSlack: 0, prefixFreeSlot: false });
    const seen = Array.from({ length: 4 }, () => route(st, entries, undefined, 0)?.replica.id);
    expect(seen).toEqual(['a', 'c', 'a', 'c']);
    expect(pickRoundRobin([replica('x', 0, false)], 0)).toBeUndefined();
  });

  it('prefix: a burst of one prompt stays on its holder until the slack, then spreads', () => {
    const entries = [replica('a', 0), replica('b', 0)];
    const st = routingState({ policy: 'prefix', prefixLoadSlack: 2, prefixFreeSlot: false });
    const key = (): number[] => KEY;
    const picks: string[] = [];
    for (let i = 0; i < 10; i++) {
      const c = route(st, entries, key, 0, () => 0);
      if (c === undefined) throw new Error('no pick');
      c.replica.assigned = (c.replica.assigned ?? 0) + 1;
      picks.push(c.replica.id);
      const [a, b] = entries.map(loadOf);
      expect(Math.abs((a ?? 0) - (b ?? 0))).toBeLessThanOrEqual(3);
    }
    // The first three go to the first holder (loads 0, 1, 2 are within 2 of 0).
    expect(picks.slice(0, 3)).toEqual(['a', 'a', 'a']);
    expect(picks).toContain('b');
  });

  it('prefix by default: a burst of one prompt fills its holder\'s free slots, then spills past the slack', () => {
    const entries = [replica('a', 0), replica('b', 0)];
    const st = routingState(defaultRouting('llama'));
    const picks: string[] = [];
    for (let i = 0; i < 12; i++) {
      const c = route(st, entries, () => KEY, 0, () => 0);
      if (c === undefined) throw new Error('no pick');
      c.replica.assigned = (c.replica.assigned ?? 0) + 1;
      picks.push(c.replica.id);
    }
    // All 8 slots of the first holder, then (8 > 0 + 4) the other replica, which then holds the prompt too.
    expect(picks.slice(0, 8)).toEqual(Array<string>(8).fill('a'));
    expect(picks.slice(8)).toEqual(['b', 'b', 'b', 'b']);
  });

  it('least_load ignores the key; prefix without a request key is a miss', () => {
    const entries = [replica('a', 1), replica('b', 0)];
    expect(route(routingState({ policy: 'least_load', prefixLoadSlack: 9, prefixFreeSlot: false }), entries, () => KEY, 0)).toMatchObject({ outcome: 'none', replica: { id: 'b' } });
    expect(route(routingState({ policy: 'prefix', prefixLoadSlack: 9, prefixFreeSlot: false }), entries, undefined, 0)).toMatchObject({ outcome: 'miss', replica: { id: 'b' } });
  });
});
