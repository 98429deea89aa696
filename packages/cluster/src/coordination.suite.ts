/* eslint-disable @typescript-eslint/no-non-null-assertion -- test code, as in *.test.ts (the workspace config relaxes this rule there) */
// The behavioural contract every Coordination implementation passes, run by
// memory.test.ts (in-process store), ipc.test.ts (the store across message
// channels) and etcd.test.ts (a real etcd). Times it
// measures (failure detection, takeover, recovery) are printed, and asserted
// only against generous bounds a loaded machine always meets.

import { afterEach, describe, expect, it } from 'vitest';
import type { CloseOptions } from './coordination.js';
import { leaderOf } from './election.js';
import { electionPrefix } from './keys.js';
import { MemoryStore } from './memoryKv.js';
import type { Coordination, Json, Leadership, Membership, WatchUpdate } from './types.js';
import { FencedError } from './types.js';

export interface ContractEnv {
  readonly name: string;
  /** A new, independent client of the same cluster (as another node would have). */
  node(): Coordination & { close(options?: CloseOptions): Promise<void> };
  /** Make the store unreachable for every client, then reachable again. */
  outage(): Promise<void>;
  restore(): Promise<void>;
  /** Delete a key behind the coordination's back (an operator, or an expired lease). */
  deleteRaw(key: string): Promise<void>;
  /** Keys under a prefix, read directly from the store. */
  rawKeys(prefix: string): Promise<string[]>;
  teardown(): Promise<void>;
}

/** A node's coordination of a store, and what to let go of once it has closed (a served channel). */
export interface StoreConnection {
  readonly coordination: ReturnType<ContractEnv['node']>;
  readonly release?: () => void;
}

/**
 * The contract's env over one in-process MemoryStore, reached by each node the way
 * `connect` says (directly, or across a channel); an outage makes the store unreachable.
 */
export function memoryStoreEnv(name: string, connect: (store: MemoryStore) => StoreConnection): Promise<ContractEnv> {
  const store = new MemoryStore();
  const nodes: StoreConnection[] = [];
  return Promise.resolve({
    name,
    node: () => {
      const n = connect(store);
      nodes.push(n);
      return n.coordination;
    },
    outage: () => {
      store.setReachable(false);
      return Promise.resolve();
    },
    restore: () => {
      store.setReachable(true);
      return Promise.resolve();
    },
    deleteRaw: async (key) => {
      await store.backend().txn([], [{ type: 'delete', key }]);
    },
    rawKeys: async (prefix) => (await store.backend().range(prefix)).records.map((r) => r.key),
    teardown: async () => {
      store.setReachable(true);
      await Promise.all(nodes.map((n) => n.coordination.close()));
      for (const n of nodes) n.release?.();
      store.close();
    },
  });
}

export const TTL = 2;
const SYNC_MS = 200;

export function timing(env: string, what: string, ms: number): void {
  console.log(`[cluster timing] ${env}: ${what}: ${Math.round(ms)} ms`);
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<number> {
  const start = performance.now();
  while (!(await cond())) {
    if (performance.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return performance.now() - start;
}

const inv = (gpus: number): Json => ({ gpus, memoryMiB: gpus * 1024 });

export function coordinationContract(makeEnv: () => Promise<ContractEnv>): void {
  let env: ContractEnv | undefined;
  const open = async (): Promise<ContractEnv> => {
    env = await makeEnv();
    return env;
  };
  afterEach(async () => {
    await env?.teardown();
    env = undefined;
  });

  async function threeNodes(e: ContractEnv): Promise<{ coords: ReturnType<ContractEnv['node']>[]; members: Membership[] }> {
    const coords = [e.node(), e.node(), e.node()];
    const members = await Promise.all(
      coords.map((c, i) => c.join({ name: `n${i}`, advertise: `127.0.0.1:${9000 + i}`, inventory: inv(i) }, { ttlSeconds: TTL, counterSyncMs: SYNC_MS })),
    );
    return { coords, members };
  }

  describe('membership', () => {
    it('three nodes see each other with their inventories; a node that stops renewing vanishes after its TTL', async () => {
      const e = await open();
      const { coords, members } = await threeNodes(e);
      for (const m of members) await waitFor(() => m.members().length === 3, 10_000, 'three members');
      const seen = members[0]!.members().map((m) => [m.name, m.advertise, m.inventory]);
      expect(seen).toEqual([
        ['n0', '127.0.0.1:9000', inv(0)],
        ['n1', '127.0.0.1:9001', inv(1)],
        ['n2', '127.0.0.1:9002', inv(2)],
      ]);

      await members[1]!.setInventory(inv(7));
      await waitFor(
        () =>
          members[0]!.members().find((m) => m.name === 'n1')?.inventory !== inv(1) &&
          JSON.stringify(members[0]!.members().find((m) => m.name === 'n1')?.inventory) === JSON.stringify(inv(7)),
        10_000,
        'inventory update',
      );

      const t0 = performance.now();
      await coords[2]!.close({ leave: false });
      await waitFor(() => members.slice(0, 2).every((m) => !m.members().some((x) => x.name === 'n2')), TTL * 1000 * 5, 'n2 to expire');
      const detected = performance.now() - t0;
      timing(e.name, `lease expiry of a silent node detected (TTL ${TTL} s)`, detected);
      expect(detected).toBeGreaterThanOrEqual(TTL * 1000 * 0.5);
      expect(members[1]!.members().map((m) => m.name)).toEqual(['n0', 'n1']);

      await members[1]!.leave();
      await waitFor(() => members[0]!.members().length === 1, 5_000, 'n1 to leave');
      expect(members[0]!.state()).toBe('live');
    });

    it('a draining node stays a member, seen draining by every node, until it leaves', async () => {
      const e = await open();
      const { members } = await threeNodes(e);
      for (const m of members) await waitFor(() => m.members().length === 3, 10_000, 'three members');
      expect(members[0]!.members().map((m) => m.draining)).toEqual([false, false, false]);
      await members[1]!.setDraining();
      for (const m of members) await waitFor(() => m.members().find((x) => x.name === 'n1')?.draining === true, 10_000, 'n1 draining');
      // Later writes of its entry (an inventory change, a rejoin) keep the mark.
      await members[1]!.setInventory(inv(5));
      await waitFor(() => JSON.stringify(members[0]!.members().find((x) => x.name === 'n1')?.inventory) === JSON.stringify(inv(5)), 10_000, 'inventory');
      expect(members[0]!.members().map((m) => [m.name, m.draining])).toEqual([['n0', false], ['n1', true], ['n2', false]]);
      await members[1]!.leave();
      await waitFor(() => members[0]!.members().length === 2, 5_000, 'n1 to leave');
    });
  });

  describe('election', () => {
    it('one leader at a time; on resign or death another takes over with a higher fencing token', async () => {
      const e = await open();
      const { coords, members } = await threeNodes(e);
      const won: Leadership[] = [];
      const pending = members.map((m) => m.campaign('manager').then((l) => (won.push(l), l)));
      await waitFor(() => won.length === 1, 10_000, 'a first leader');
      await new Promise((r) => setTimeout(r, 300));
      expect(won.length).toBe(1);
      const first = won[0]!;

      let t0 = performance.now();
      await first.resign();
      expect(first.signal.aborted).toBe(true);
      expect(await first.lost).toBe('resigned');
      await waitFor(() => won.length === 2, 10_000, 'a second leader');
      timing(e.name, 'leader takeover after resign', performance.now() - t0);
      const second = won[1]!;
      expect(second.node).not.toBe(first.node);
      const candidates = e.node().watchPrefix(electionPrefix('manager'));
      await candidates.ready;
      expect(leaderOf(candidates.entries().values())).toEqual({ node: second.node, fencingToken: second.fencingToken });
      expect(second.fencingToken).toBeGreaterThan(first.fencingToken);

      t0 = performance.now();
      const idx = members.findIndex((m) => m.node.name === second.node);
      await coords[idx]!.close({ leave: false });
      await waitFor(() => won.length === 3, TTL * 1000 * 6, 'a third leader after the second died');
      const takeover = performance.now() - t0;
      timing(e.name, `leader takeover after the leader died (TTL ${TTL} s)`, takeover);
      const third = won[2]!;
      expect(third.fencingToken).toBeGreaterThan(second.fencingToken);
      expect(new Set(won.map((l) => l.node)).size).toBe(3);
      expect(await Promise.all(pending)).toEqual(expect.arrayContaining([first, second, third]));
    });

    it('a deposed leader cannot write: its fenced write is refused while the new leader writes', async () => {
      const e = await open();
      const { members } = await threeNodes(e);
      const a = await members[0]!.campaign('manager');
      expect(await a.put('catalog/smollm', { replicas: 1 })).toBeGreaterThan(a.fencingToken);

      const keys = await e.rawKeys('election/manager/');
      expect(keys).toHaveLength(1);
      const keyA = keys[0];
      const bWins = members[1]!.campaign('manager');
      await waitFor(async () => (await e.rawKeys('election/manager/')).length === 2, 10_000, "b's candidacy");
      await e.deleteRaw(keyA!);
      const write = a.put('catalog/smollm', { replicas: 99 });
      await expect(write).rejects.toBeInstanceOf(FencedError);
      await expect(write).rejects.toThrow(/no longer held/);
      expect(a.signal.aborted).toBe(true);

      const b = await bWins;
      expect(b.fencingToken).toBeGreaterThan(a.fencingToken);
      await b.put('catalog/smollm', { replicas: 2 });
      await expect(a.delete('catalog/smollm')).rejects.toBeInstanceOf(FencedError);
      await expect(b.put('members/n0', 1)).rejects.toThrow(/not a key a leader may write/);

      const w = members[2]!.node.name === 'n2' ? e.node().watchPrefix('catalog/') : undefined;
      await w?.ready;
      expect(w?.entries().get('smollm')?.value).toEqual({ replicas: 2 });
    });
  });

  describe('watched prefixes', () => {
    it('a snapshot, then every change in order exactly once', async () => {
      const e = await open();
      const { members } = await threeNodes(e);
      const leader = await members[0]!.campaign('manager');
      await leader.put('catalog/a', 1);
      await leader.put('catalog/b', 1);
      const w = e.node().watchPrefix('catalog/');
      const got: WatchUpdate[] = [];
      w.subscribe((u) => got.push(u));
      await w.ready;
      const first = got[0];
      expect(first?.type).toBe('snapshot');
      expect(first?.type === 'snapshot' ? first.entries.map((x) => [x.key, x.value]) : []).toEqual([
        ['a', 1],
        ['b', 1],
      ]);
      await leader.put('catalog/c', 1);
      await leader.delete('catalog/a');
      for (let i = 2; i <= 20; i++) await leader.put('catalog/b', i);
      await waitFor(() => w.entries().get('b')?.value === 20, 10_000, 'b=20');
      const changes = got.filter((u) => u.type === 'put' || u.type === 'delete');
      expect(
        changes.map((u) => (u.type === 'put' ? `put ${u.entry.key}=${JSON.stringify(u.entry.value)}` : u.type === 'delete' ? `del ${u.key}` : '')),
      ).toEqual(['put c=1', 'del a', ...Array.from({ length: 19 }, (_, i) => `put b=${i + 2}`)]);
      const revs = changes.map((u) => (u.type === 'put' || u.type === 'delete' ? u.revision : 0));
      expect(revs).toEqual([...revs].sort((x, y) => x - y));
      expect(new Set(revs).size).toBe(revs.length);
      expect([...w.entries().keys()].sort()).toEqual(['b', 'c']);
      expect(w.revision()).toBe(revs[revs.length - 1]);

      const late: WatchUpdate[] = [];
      w.subscribe((u) => late.push(u));
      expect(late).toHaveLength(1);
      expect(late[0]?.type === 'snapshot' ? late[0].entries.length : -1).toBe(2);
    });

    it('replica entries are written only under their node and vanish with its lease', async () => {
      const e = await open();
      const { coords, members } = await threeNodes(e);
      const table = e.node().watchPrefix('replicas/');
      await table.ready;
      await members[0]!.putReplica('smollm#1', { state: 'serving' });
      await members[1]!.putReplica('smollm#1', { state: 'loading' });
      await members[2]!.putReplica('smollm#2', { state: 'serving' });
      await members[2]!.putReplica('gpt#1', { state: 'serving' });
      await waitFor(() => table.entries().size === 4, 10_000, 'four replicas');
      expect([...table.entries().keys()].sort()).toEqual(['n0/smollm#1', 'n1/smollm#1', 'n2/gpt#1', 'n2/smollm#2']);
      await members[1]!.putReplica('smollm#1', { state: 'serving' });
      await members[0]!.deleteReplica('smollm#1');
      await waitFor(
        () => table.entries().size === 3 && JSON.stringify(table.entries().get('n1/smollm#1')?.value) === '{"state":"serving"}',
        10_000,
        'update and delete',
      );

      const t0 = performance.now();
      await coords[2]!.close({ leave: false });
      await waitFor(() => [...table.entries().keys()].every((k) => !k.startsWith('n2/')), TTL * 1000 * 5, "n2's replicas to vanish");
      timing(e.name, `replica entries of a silent node removed (TTL ${TTL} s)`, performance.now() - t0);
      expect([...table.entries().keys()]).toEqual(['n1/smollm#1']);
      await expect(members[0]!.putReplica('a/b', 1)).rejects.toThrow(/replica id/);
    });
  });

  describe('counters', () => {
    const LATER = Date.now() + 3_600_000;
    it('per-node totals are summed by every node within a sync interval', async () => {
      const e = await open();
      const { coords, members } = await threeNodes(e);
      members[0]!.counters.add('spend:team-a:w1', 10, LATER);
      members[1]!.counters.add('spend:team-a:w1', 5, LATER);
      members[1]!.counters.add('spend:team-a:w1', 5, LATER);
      members[2]!.counters.add('spend:team-a:w1', 2.5, LATER);
      members[2]!.counters.add('spend:team-b:w1', 100, LATER);
      expect(members[0]!.counters.sum('spend:team-a:w1')).toBe(10);
      for (const m of members) await waitFor(() => m.counters.sum('spend:team-a:w1') === 22.5, 10_000, 'sum 22.5');
      // Each scope is its own write: team-b's may land a moment after team-a's.
      for (const m of members) await waitFor(() => m.counters.sum('spend:team-b:w1') === 100, 10_000, 'sum 100');
      members[0]!.counters.add('spend:team-a:w1', 1, LATER);
      await members[0]!.counters.flush();
      await waitFor(() => members[2]!.counters.sum('spend:team-a:w1') === 23.5, 10_000, 'sum 23.5');
      expect(members[0]!.counters.sum('spend:team-c:w1')).toBe(0);

      // A node restarted under the same name continues its total instead of counting it twice.
      await coords[0]!.close();
      const again = await e.node().join({ name: 'n0', advertise: '127.0.0.1:9000', inventory: inv(0) }, { ttlSeconds: TTL, counterSyncMs: SYNC_MS });
      expect(again.counters.sum('spend:team-a:w1')).toBe(23.5);
      again.counters.add('spend:team-a:w1', 0.5, LATER);
      await again.counters.flush();
      await waitFor(() => members[1]!.counters.sum('spend:team-a:w1') === 24, 10_000, 'sum 24');
    });
    it('entries expire with their window: the writer deletes them, a dead node\'s go by lease or sweep, sums stay right', async () => {
      const e = await open();
      const { coords, members } = await threeNodes(e);
      // Short windows: each scope counts for 1.5 s.
      const windows = 4;
      let t = Date.now();
      for (let w = 0; w < windows; w++) {
        const scope = `rpm:k:${String(w)}`;
        const ends = Date.now() + 1500;
        for (const [i, m] of members.entries()) m.counters.add(scope, i + 1, ends);
        await Promise.all(members.map((m) => m.counters.flush()));
        for (const m of members) await waitFor(() => m.counters.sum(scope) === 6, 10_000, `sum 6 in window ${String(w)}`);
        // While the window is open the store holds one entry per node for it.
        expect((await e.rawKeys(`counters/${scope}/`)).length).toBe(3);
        await waitFor(() => Date.now() > ends, 5_000, 'window end');
        // Expired: it no longer counts, at once, on every node.
        for (const m of members) expect(m.counters.sum(scope)).toBe(0);
        // An add to an expired scope is ignored.
        members[0]!.counters.add(scope, 100, ends);
        expect(members[0]!.counters.sum(scope)).toBe(0);
      }
      // The writers delete their expired entries within a few sync intervals (well before any lease would).
      await waitFor(async () => (await e.rawKeys('counters/')).length === 0, 5_000, 'expired entries deleted by their writers');
      timing(e.name, `${String(windows)} windows of 1.5 s, 3 nodes: counter keys back to 0 after`, Date.now() - t);

      // A node dies with a live entry: its lease (or the leader's sweep) removes it after the window and the grace.
      t = Date.now();
      const ends = Date.now() + 1000;
      members[2]!.counters.add('rpm:dead:0', 7, ends);
      await members[2]!.counters.flush();
      await waitFor(() => members[0]!.counters.sum('rpm:dead:0') === 7, 10_000, 'dead node count seen');
      await coords[2]!.close({ leave: false });
      expect((await e.rawKeys('counters/rpm:dead:0/')).length).toBe(1);
      await waitFor(() => Date.now() > ends, 5_000, 'window end');
      expect(members[0]!.counters.sum('rpm:dead:0')).toBe(0);
      await waitFor(async () => {
        await members[0]!.counters.sweep();
        return (await e.rawKeys('counters/')).length === 0;
      }, 40_000, "the dead node's entry removed");
      timing(e.name, "a dead node's expired counter entry removed after", Date.now() - t);
    }, 60_000);
  });

  describe('store loss', () => {
    it('nodes keep their last snapshot while the store is gone, then rejoin, re-write their entries and elect again', async () => {
      const e = await open();
      const { members } = await threeNodes(e);
      const leader = await members[0]!.campaign('manager');
      await leader.put('catalog/smollm', { replicas: 2 });
      await members[1]!.putReplica('smollm#1', { state: 'serving' });
      const catalog = e.node().watchPrefix('catalog/');
      const table = e.node().watchPrefix('replicas/');
      await Promise.all([catalog.ready, table.ready]);
      await waitFor(() => table.entries().size === 1 && members[2]!.members().length === 3, 10_000, 'initial state');
      const states: string[] = [];
      members[1]!.onState((s) => states.push(s));

      await e.outage();
      const outageStart = performance.now();
      await waitFor(() => catalog.stale() && members[1]!.state() === 'lost', TTL * 1000 * 5, 'stale watches and a lost session');
      expect(await leader.lost).toBe('session-lost');
      await expect(leader.put('catalog/smollm', { replicas: 3 })).rejects.toBeInstanceOf(FencedError);
      expect(catalog.entries().get('smollm')?.value).toEqual({ replicas: 2 });
      expect(members[2]!.members()).toHaveLength(3);
      expect(table.entries().size).toBe(1);
      await members[1]!.putReplica('smollm#2', { state: 'loading' }).catch(() => undefined);
      const remaining = 6_000 - (performance.now() - outageStart);
      if (remaining > 0) await new Promise((r) => setTimeout(r, remaining));
      expect(catalog.entries().get('smollm')?.value).toEqual({ replicas: 2 });

      const tRestore = performance.now();
      await e.restore();
      const t0 = performance.now();
      timing(e.name, 'store restart until it answers health checks', t0 - tRestore);
      await waitFor(() => members.every((m) => m.state() === 'live'), 30_000, 'sessions live again');
      timing(e.name, 'sessions live again after the store returned', performance.now() - t0);
      await waitFor(() => !catalog.stale() && !table.stale(), 30_000, 'watches live again');
      timing(e.name, 'watches live again after the store returned', performance.now() - t0);
      await waitFor(() => table.entries().size === 2 && members[2]!.members().length === 3, 30_000, 'entries re-written');
      timing(e.name, 'members and replica entries re-written after the store returned', performance.now() - t0);
      expect([...table.entries().keys()].sort()).toEqual(['n1/smollm#1', 'n1/smollm#2']);
      expect(states).toContain('lost');
      expect(states[states.length - 1]).toBe('live');
      expect(catalog.entries().get('smollm')?.value).toEqual({ replicas: 2 });

      const again = await members[2]!.campaign('manager');
      timing(e.name, 'a leader elected again after the store returned', performance.now() - t0);
      expect(again.fencingToken).toBeGreaterThan(leader.fencingToken);
      const rev = await again.put('catalog/smollm', { replicas: 3 });
      await waitFor(() => catalog.revision() >= rev, 10_000, 'catalog change after recovery');
      expect(catalog.entries().get('smollm')?.value).toEqual({ replicas: 3 });
    });

    it('a watch resumed after the store returns loses no change and repeats none', async () => {
      const e = await open();
      const { members } = await threeNodes(e);
      const writer = e.node();
      const w = e.node().watchPrefix('catalog/');
      const puts: number[] = [];
      w.subscribe((u) => {
        if (u.type === 'put' && typeof u.entry.value === 'number') puts.push(u.entry.value);
      });
      await w.ready;
      let leader = await members[0]!.campaign('manager');
      for (let i = 1; i <= 5; i++) await leader.put('catalog/seq', i);
      await waitFor(() => puts.length === 5, 10_000, 'five puts');
      await e.outage();
      await waitFor(() => w.stale(), 10_000, 'stale');
      await e.restore();
      await writer.join({ name: 'writer', advertise: '127.0.0.1:1', inventory: null }, { ttlSeconds: TTL });
      if (leader.signal.aborted) leader = await members[0]!.campaign('manager', AbortSignal.timeout(60_000));
      for (let i = 6; i <= 15; i++) await leader.put('catalog/seq', i);
      await waitFor(() => puts.length >= 15, 30_000, 'fifteen puts');
      await new Promise((r) => setTimeout(r, 300));
      expect(puts).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
      expect(w.stale()).toBe(false);
    });
  });
}
