// KvCounters on the in-process store with a clock the test moves: expiry of
// sums, the writer's deletion, and the sweep (which removes expired entries of
// any node, leaseless or not, and leaves live ones and those inside the grace).

import { afterEach, describe, expect, it } from 'vitest';
import { EXPIRY_GRACE_MS, KvCounters, LEGACY_IDLE_MS } from './counters.js';
import { PREFIX } from './keys.js';
import { MemoryStore } from './memoryKv.js';
import { KvPrefixWatch } from './prefixWatch.js';

let store: MemoryStore | undefined;
const open: KvCounters[] = [];

afterEach(async () => {
  for (const c of open.splice(0)) await c.close();
  store?.close();
  store = undefined;
});

async function nodes(names: string[], now: () => number): Promise<{ kv: ReturnType<MemoryStore['backend']>; counters: KvCounters[] }> {
  store = new MemoryStore();
  const kv = store.backend();
  const counters = await Promise.all(names.map(async (n) => {
    const w = new KvPrefixWatch(kv, PREFIX.counters);
    await w.ready;
    const c = new KvCounters(kv, n, w, 60_000, now);
    open.push(c);
    return c;
  }));
  return { kv, counters };
}

async function keys(kv: ReturnType<MemoryStore['backend']>): Promise<string[]> {
  return (await kv.range(PREFIX.counters)).records.map((r) => r.key).sort();
}

async function until(cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('KvCounters expiry', () => {
  it('a scope stops counting at its expiry and its writer deletes it; own scopes are pruned', async () => {
    let now = 1_000_000;
    const { kv, counters: [a, b] } = await nodes(['a', 'b'], () => now);
    if (a === undefined || b === undefined) throw new Error('two nodes');
    for (let w = 0; w < 50; w++) a.add(`rpm:x:${String(w)}`, 1, now + 1000 * (w + 1));
    b.add('rpm:x:0', 2, now + 1000);
    await a.flush();
    await b.flush();
    await until(() => a.sum('rpm:x:0') === 3 && b.sum('rpm:x:49') === 1);
    expect((await keys(kv)).length).toBe(51);
    now += 25_500;
    expect(a.sum('rpm:x:0')).toBe(0);
    expect(b.sum('rpm:x:24')).toBe(0);
    expect(b.sum('rpm:x:25')).toBe(1);
    await a.flush();
    await b.flush();
    expect(a.ownScopes()).toBe(25);
    expect(b.ownScopes()).toBe(0);
    expect((await keys(kv)).length).toBe(25);
  });

  it('sweep removes expired entries of any node, after the grace, and only those', async () => {
    let now = 1_000_000;
    const { kv, counters: [a, b] } = await nodes(['a', 'b'], () => now);
    if (a === undefined || b === undefined) throw new Error('two nodes');
    b.add('budget:k:old:0:tokens', 5, now + 1000);
    b.add('budget:k:live:0:tokens', 5, now + 3_600_000);
    await b.flush();
    // An older writer's entry: a bare number, no expiry; the sweep leaves it for now (below: until left unchanged long enough).
    await kv.txn([], [{ type: 'put', key: `${PREFIX.counters}legacy:0/c`, value: '3' }]);
    await b.close();
    open.splice(open.indexOf(b), 1);
    await until(() => a.sum('budget:k:old:0:tokens') === 5 && a.sum('legacy:0') === 3);
    now += 1000 + EXPIRY_GRACE_MS - 1;
    expect(a.sum('budget:k:old:0:tokens')).toBe(0);
    expect(await a.sweep()).toBe(0);
    now += 2;
    expect(await a.sweep()).toBe(1);
    expect(await keys(kv)).toEqual([`${PREFIX.counters}budget:k:live:0:tokens/b`, `${PREFIX.counters}legacy:0/c`]);
    await until(() => a.sum('budget:k:live:0:tokens') === 5);

    // The older format is swept once its writer has left it unchanged for LEGACY_IDLE_MS; a write starts the wait again.
    now += LEGACY_IDLE_MS - 10;
    await kv.txn([], [{ type: 'put', key: `${PREFIX.counters}legacy:0/c`, value: '4' }]);
    await until(() => a.sum('legacy:0') === 4);
    expect(await a.sweep()).toBe(0);
    now += LEGACY_IDLE_MS - 1;
    expect(await a.sweep()).toBe(0);
    now += 1;
    expect(await a.sweep()).toBe(1);
    expect(await keys(kv)).toEqual([`${PREFIX.counters}budget:k:live:0:tokens/b`]);
    await until(() => a.sum('legacy:0') === 0);
    // New-format entries never wait for that: the live one stays until its window ends.
    expect(a.sum('budget:k:live:0:tokens')).toBe(5);
  });
});
