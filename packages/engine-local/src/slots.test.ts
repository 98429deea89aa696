// Which free slot a request takes (native/scheduler.h): the slot whose cache holds a
// useful prefix of its prompt; else an empty slot; else the least recently used one.
// Observed through `cachedTokens`, the prompt tokens a sequence did not decode again.
// Prefix sharing: a free slot may start from a copy of another (busy) slot's cells, and
// eviction takes a second copy of a prompt before the only copy of another.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NativeEngine, NativeStepItem } from './native.js';
import { GPU_LAYERS, MODEL, requireAddon } from './testModel.js';

const addon = requireAddon();

describe('slot choice (2 slots, split cache)', () => {
  let engine: NativeEngine;
  const waiters = new Map<number, (item: NativeStepItem) => void>();
  let nextId = 1;

  /** Runs one greedy 1-token sequence and returns its final item. */
  function once(text: string): Promise<NativeStepItem> {
    const id = nextId++;
    const done = new Promise<NativeStepItem>((r) => waiters.set(id, r));
    engine.submit({ id, prompt: engine.tokenize(text, true, false), maxTokens: 1, temperature: 0, stop: [] });
    return done;
  }
  const tokens = (text: string): number => engine.tokenize(text, true, false).length;

  beforeAll(async () => {
    engine = new addon.Engine(
      { modelPath: MODEL, contextSize: 1024, maxSequences: 2, gpuLayers: GPU_LAYERS, threads: 1, batchTokens: 64 },
      (ev) => {
        for (const it of ev.items) if (it.done !== undefined || it.error !== undefined) waiters.get(it.id)?.(it);
      },
    );
    await engine.ready();
  });
  afterAll(() => {
    engine.close();
  });

  const story = 'Once upon a time, there was a little girl named Lily. She liked to play in the park with her big red ball every day. One day she saw a bird.';
  const other = `Once upon a time, ${'the dog ran home and the cat sat on the mat and the sun was warm. '.repeat(6)}`;
  const unrelated = `Tom had a toy car. ${'He went to the shop with his mom and they bought bread. '.repeat(4)}`;

  it('an accidental short match does not evict a long cache: the request takes an empty slot', async () => {
    expect((await once(story)).cachedTokens).toBe(0); // slot 0 now holds `story`
    // `other` shares "Once upon a time," with `story`: under a tenth of its prompt.
    const o = await once(other);
    expect(o.cachedTokens).toBe(0);
    // `story`'s cache is intact: a continuation of it decodes only its new tokens.
    const again = await once(`${story} The end.`);
    expect(again.cachedTokens).toBeGreaterThanOrEqual(tokens(story) - 1);
  });

  it('with no useful cache and no empty slot, the least recently used cache is evicted', async () => {
    // Slot 0: `story` (used last), slot 1: `other` (used before it).
    const u = await once(unrelated);
    expect(u.cachedTokens).toBeLessThanOrEqual(1); // at most the BOS token every prompt starts with
    const s = await once(`${story} The bird sang.`);
    expect(s.cachedTokens).toBeGreaterThanOrEqual(tokens(story) - 1);
    // `other` was evicted for `unrelated`, which is still cached.
    expect((await once(`${unrelated} The end.`)).cachedTokens).toBeGreaterThanOrEqual(tokens(unrelated) - 1);
  });

  it('a pause that arrives after its sequence ended is not kept (nothing grows with such races)', async () => {
    const id = nextId;
    await once('The cat sat.');
    engine.pause(id); // its sequence is over: the client fell behind on its last tokens
    await once('The dog ran.'); // a later step, after the engine took the pause from its inbox
    expect(engine.stats().pausedSequences).toBe(0);
    engine.resume(id);
  });
});

/** An engine of `slots` split slots, and greedy sequences on it. */
function harness(slots: number, batchTokens = 64) {
  const done = new Map<number, (item: NativeStepItem) => void>();
  const sampled = new Map<number, (item: NativeStepItem) => void>();
  let nextId = 1;
  const engine: NativeEngine = new addon.Engine(
    { modelPath: MODEL, contextSize: 512 * slots, maxSequences: slots, gpuLayers: GPU_LAYERS, threads: 1, batchTokens },
    (ev) => {
      for (const it of ev.items) {
        sampled.get(it.id)?.(it);
        if (it.done !== undefined || it.error !== undefined) done.get(it.id)?.(it);
      }
    },
  );
  /**
   * Submits a greedy sequence: `started` resolves at its first sampled token (or error),
   * `finished` with its last item; `text()` is what it wrote so far.
   */
  function run(text: string, maxTokens: number, logitBias?: [number, number][], pauseAtStart = false) {
    const id = nextId++;
    let out = '';
    let onStart = (): void => undefined;
    const started = new Promise<void>((r) => { onStart = r; });
    sampled.set(id, (it) => {
      out += it.text;
      if (pauseAtStart && it.n > 0) engine.pause(id); // in the event callback: as early as JS can
      pauseAtStart = false;
      if (it.n > 0 || it.error !== undefined) onStart();
    });
    const finished = new Promise<NativeStepItem>((r) => done.set(id, r));
    engine.submit({ id, prompt: engine.tokenize(text, true, false), maxTokens, temperature: 0, stop: [], ...(logitBias ? { logitBias } : {}) });
    return { id, started, finished, text: () => out };
  }
  /**
   * A sequence that holds its slot: end of generation banned, paused at its first token
   * (of 300: the engine cannot finish it before the pause lands).
   */
  async function hold(text: string) {
    const h = run(text, 300, [[engine.modelInfo().eos, Number.NEGATIVE_INFINITY]], true);
    await h.started;
    return h;
  }
  const tokens = (text: string): number => engine.tokenize(text, true, false).length;
  return { engine, run, hold, tokens };
}

describe('prefix sharing (split cache)', () => {
  const system = `Once upon a time, ${'the dog ran home and the cat sat on the mat and the sun was warm. '.repeat(5)}`;
  const question = `${system}Then Lily saw a big red ball.`;
  let h2: ReturnType<typeof harness>;
  let h3: ReturnType<typeof harness>;
  let slow: ReturnType<typeof harness>;
  beforeAll(async () => {
    h2 = harness(2);
    h3 = harness(3);
    slow = harness(2, 4); // 4 prompt tokens a step: a long prefill takes many steps
    await Promise.all([h2.engine.ready(), h3.engine.ready(), slow.engine.ready()]);
  });
  afterAll(() => {
    h2.engine.close();
    h3.engine.close();
    slow.engine.close();
  });

  it('a request whose prefix sits in a busy slot starts from a copy of its cells, with the output of a cold decode', async () => {
    const { engine, run, hold, tokens } = h2;
    // Reference: the question decoded cold (fresh engine, empty slots).
    const ref = run(question, 8);
    expect((await ref.finished).cachedTokens).toBe(0);
    // Two unrelated prompts evict its cache (least recently used first).
    for (const t of ['Tom had a toy car and a blue hat.', 'The fish swam in the big blue sea all day.']) {
      expect((await run(t, 1).finished).error).toBeUndefined();
    }
    // A long answer to the system prompt alone holds one slot.
    const long = await hold(system);
    const before = engine.stats().promptTokensShared;
    // The question shares the busy slot's prefix: the free slot starts from a copy of its cells.
    const q = run(question, 8);
    const item = await q.finished;
    expect(item.error).toBeUndefined();
    expect(item.cachedTokens).toBeGreaterThanOrEqual(tokens(system) - 1);
    expect(engine.stats().promptTokensShared - before).toBe(item.cachedTokens);
    // The copied cells are the real ones: the same greedy text as the cold decode.
    expect(ref.text().length).toBeGreaterThan(0);
    expect(q.text()).toBe(ref.text());
    engine.resume(long.id);
    engine.cancel(long.id);
    expect((await long.finished).done).toBe('cancelled');
  });

  it('eviction takes a second copy of a prompt before the least recently used only copy of another', async () => {
    const { engine, run, hold, tokens } = h3;
    const only = 'The fish swam in the big blue sea all day long with his friends and his mom.';
    expect((await run(only, 1).finished).error).toBeUndefined(); // slot 0, used first
    const long = await hold(system); // slot 1
    expect((await run(question, 1).finished).cachedTokens).toBeGreaterThanOrEqual(tokens(system) - 1); // slot 2: a copy
    engine.resume(long.id);
    expect((await long.finished).done).toBe('length');
    // No empty slot and no useful cache: slot 0 is the least recently used, but the only
    // copy of its prompt; slots 1 and 2 both hold the system prompt.
    const unrelated = 'Tom had a toy car and a blue hat and a red ball and a big kite and a green cup.';
    expect((await run(unrelated, 1).finished).cachedTokens).toBeLessThanOrEqual(1);
    expect((await run(`${only} The end.`, 1).finished).cachedTokens).toBeGreaterThanOrEqual(tokens(only) - 1);
    expect((await run(`${system}The end.`, 1).finished).cachedTokens).toBeGreaterThanOrEqual(tokens(system) - 1);
  });

  it('a request arriving with another of the same prefix waits for its prefill and starts from a copy', async () => {
    const { engine, run, tokens } = slow;
    const long = `Once upon a time, ${'the dog ran home and the cat sat on the mat and the sun was warm. '.repeat(12)}`;
    const second = `${long}Then Tom saw a bird.`;
    const ref = run(second, 8);
    expect((await ref.finished).cachedTokens).toBe(0);
    expect((await run('Tom had a toy car and a blue hat.', 1).finished).error).toBeUndefined(); // evicts it
    expect((await run('The fish swam in the big blue sea all day.', 1).finished).error).toBeUndefined();
    const before = engine.stats().admissionsDeferred;
    // Both at once: the first takes ~100 steps to prefill; the second waits for it, not beside it.
    const a = run(`${long}Then Lily saw a big red ball.`, 1);
    const b = run(second, 8);
    const [, item] = await Promise.all([a.finished, b.finished]);
    expect(item.error).toBeUndefined();
    expect(item.cachedTokens).toBeGreaterThanOrEqual(Math.floor(tokens(long) * 0.8));
    expect(engine.stats().admissionsDeferred).toBeGreaterThan(before);
    expect(b.text()).toBe(ref.text());
  });
});
