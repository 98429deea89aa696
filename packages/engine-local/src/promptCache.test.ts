// The host-memory prompt cache (native/prompt_cache.h; docs/architecture.md, "Host-memory
// prompt cache"): a slot's KV state saved before its cache is overwritten, restored for a
// later request with the same prefix. Observed through `cachedTokens` and the engine's
// stats, with one slot so that what the resident slot holds is known at every point.

import { afterAll, describe, expect, it } from 'vitest';
import { EngineHost } from './hostClient.js';
import type { NativeEngine, NativeEngineOptions, NativeStepItem } from './native.js';
import { GPU_LAYERS, MODEL, requireAddon, requireHostBuild } from './testModel.js';

const addon = requireAddon();

interface Result {
  text: string;
  cachedTokens: number;
  promptTokens: number;
}

/** An engine whose requests run one at a time, each returning its text and usage. */
class Runner {
  private readonly waiters = new Map<number, { text: string; done: (r: Result) => void; fail: (e: Error) => void }>();
  private nextId = 1;
  readonly engine: NativeEngine;

  constructor(options: Partial<NativeEngineOptions>) {
    this.engine = new addon.Engine(
      { modelPath: MODEL, contextSize: 2048, maxSequences: 1, gpuLayers: GPU_LAYERS, threads: 1, batchTokens: 512, ...options },
      (ev) => {
        for (const it of ev.items) this.onItem(it);
      },
    );
  }

  private onItem(it: NativeStepItem): void {
    const w = this.waiters.get(it.id);
    if (w === undefined) return;
    w.text += it.text;
    if (it.error !== undefined) w.fail(new Error(it.error.message));
    else if (it.done !== undefined) w.done({ text: w.text, cachedTokens: it.cachedTokens ?? -1, promptTokens: it.promptTokens ?? -1 });
  }

  run(prompt: Int32Array, maxTokens: number): Promise<Result> {
    const id = this.nextId++;
    return new Promise<Result>((done, fail) => {
      this.waiters.set(id, { text: '', done, fail });
      this.engine.submit({ id, prompt, maxTokens, temperature: 0, stop: [] });
    });
  }

  text(text: string): Int32Array {
    return this.engine.tokenize(text, true, false);
  }
}

const engines: NativeEngine[] = [];
async function runner(options: Partial<NativeEngineOptions>): Promise<Runner> {
  const r = new Runner(options);
  engines.push(r.engine);
  await r.engine.ready();
  return r;
}
afterAll(() => {
  for (const e of engines) e.close();
});

const story = 'Once upon a time, there was a little girl named Lily. She liked to play in the park with her big red ball every day. One day she saw a bird.';
const unrelated = `Tom had a toy car. ${'He went to the shop with his mom and they bought bread. '.repeat(3)}`;

/** `n` tokens after BOS from a seeded generator: prompts of one length that share no prefix. */
function synthetic(seed: number, n: number, bos: number): Int32Array {
  const out = new Int32Array(n + 1);
  out[0] = bos;
  let x = seed;
  for (let i = 1; i <= n; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    out[i] = 10 + (x % 490);
  }
  return out;
}

describe('host-memory prompt cache (1 slot, split cache)', () => {
  it('restores a prefix the resident slot no longer holds, with the same output as without the cache', async () => {
    const off = await runner({});
    const on = await runner({ promptCacheBytes: 16 << 20 });
    const results: Record<'off' | 'on', Result[]> = { off: [], on: [] };
    for (const [name, r] of [['off', off], ['on', on]] as const) {
      // The slot holds `story`, then `unrelated` (saving `story` when the cache is on), then a continuation of `story`.
      for (const prompt of [story, unrelated, `${story} The bird sang a song.`]) results[name].push(await r.run(r.text(prompt), 12));
    }
    const storyTokens = on.text(story).length;
    const [offLast, onLast] = [results.off[2], results.on[2]];
    // Without the cache the only slot holds `unrelated`: nothing of `story` is left to reuse.
    expect(offLast?.cachedTokens).toBeLessThanOrEqual(1);
    expect(onLast?.cachedTokens).toBeGreaterThanOrEqual(storyTokens - 1);
    expect(onLast?.text).toBe(offLast?.text);
    expect(onLast?.text.length).toBeGreaterThan(0);
    const s = on.engine.stats();
    expect(s).toMatchObject({ promptCacheHits: 1, promptCacheCapacity: 16 << 20 });
    expect(s.promptTokensRestored).toBe(onLast?.cachedTokens);
    expect(s.promptCacheSaves).toBeGreaterThanOrEqual(2); // `story`, then `unrelated` when the restore overwrote it
    expect(off.engine.stats()).toMatchObject({ promptCacheHits: 0, promptCacheSaves: 0, promptCacheCapacity: 0 });
  });

  it('stays within its bytes and evicts the least recently used state first', async () => {
    // One state's size, measured: a cache as large as needed, a state saved when the slot is overwritten.
    const probe = await runner({ promptCacheBytes: 64 << 20 });
    const bos = probe.text('a')[0] ?? 1;
    const p = [1, 2, 3, 4].map((seed) => synthetic(seed, 200, bos));
    const [p0, p1, p2, p3] = p as [Int32Array, Int32Array, Int32Array, Int32Array];
    await probe.run(p0, 2);
    await probe.run(p1, 2);
    const one = probe.engine.stats().promptCacheBytes;
    expect(one).toBeGreaterThan(200 * 4);
    // Room for two states, not three.
    const capacity = Math.floor(one * 2.5);
    const r = await runner({ promptCacheBytes: capacity });
    const within = (): void => {
      const s = r.engine.stats();
      expect(s.promptCacheBytes).toBeLessThanOrEqual(capacity);
      expect(s.promptCacheCapacity).toBe(capacity);
    };
    await r.run(p0, 2);
    await r.run(p1, 2); // saves p0
    const hit = await r.run(p0, 2); // saves p1, restores p0 (now the most recently used)
    expect(hit.cachedTokens).toBe(p0.length - 1);
    expect(r.engine.stats()).toMatchObject({ promptCacheHits: 1, promptCacheEntries: 2, promptCacheEvictions: 0 });
    await r.run(p2, 2); // the slot held p0 as saved: nothing new to save
    await r.run(p3, 2); // saves p2: one state must go, and it is p1 (used before p0)
    within();
    expect(r.engine.stats()).toMatchObject({ promptCacheEntries: 2, promptCacheEvictions: 1, promptCacheSaves: 3 });
    const again = await r.run(p0, 2); // p0 was kept
    expect(again.cachedTokens).toBe(p0.length - 1);
    const lost = await r.run(p1, 2); // p1 was evicted
    expect(lost.cachedTokens).toBeLessThanOrEqual(1);
    within();
    expect(r.engine.stats().promptCacheHits).toBe(2);
  });

  it('is off in the unified layout, and refuses a bad size', async () => {
    const r = await runner({ kvUnified: true, promptCacheBytes: 16 << 20 });
    for (const prompt of [story, unrelated, story]) await r.run(r.text(prompt), 4);
    expect(r.engine.stats()).toMatchObject({ promptCacheCapacity: 0, promptCacheSaves: 0, promptCacheHits: 0 });
    for (const bad of [-1, 1.5, Number.NaN, '1024']) {
      expect(() => new addon.Engine({ modelPath: MODEL, contextSize: 256, maxSequences: 1, gpuLayers: 0, threads: 1, batchTokens: 64,
        promptCacheBytes: bad as number }, () => undefined)).toThrow(/promptCacheBytes must be an integer >= 0/);
    }
  });
});

describe('host-memory prompt cache through the engine host', () => {
  it('takes promptCacheBytes across the process boundary and reports restored tokens as cached', async () => {
    requireHostBuild();
    const host = await EngineHost.start({
      modelPath: MODEL, contextSize: 2048, maxSequences: 1, gpuLayers: GPU_LAYERS, threads: 1, batchTokens: 512, promptCacheBytes: 8 << 20,
    });
    try {
      const signal = new AbortController().signal;
      const run = (prompt: string): ReturnType<EngineHost['generate']> =>
        host.generate({ prompt }, { maxTokens: 4, temperature: 0, stop: [] }, signal, () => undefined);
      await run(story);
      await run(unrelated);
      const r = await run(`${story} The end.`);
      const storyTokens = (await host.tokenize(story)).length;
      expect(r.cachedTokens).toBeGreaterThanOrEqual(storyTokens - 1);
      const s = await host.stats();
      expect(s).toMatchObject({ promptCacheHits: 1, promptCacheCapacity: 8 << 20 });
      expect(s.promptTokensRestored).toBe(r.cachedTokens);
    } finally {
      await host.close();
    }
  });
});
