// Which free slot a request takes (native/scheduler.h): the slot whose cache holds a
// useful prefix of its prompt; else an empty slot; else the least recently used one.
// Observed through `cachedTokens`, the prompt tokens a sequence did not decode again.

import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tryLoadAddon, type NativeEngine, type NativeStepItem } from './native.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '..', '..', '..');
const MODEL = [process.env['INFERENCE_TEST_MODEL'], join(repoRoot, 'models', 'stories260K.gguf'), '/work/shared/models/stories260K.gguf']
  .filter((p): p is string => p !== undefined && p !== '')
  .find((p) => existsSync(p));

const load = tryLoadAddon();
if (load.addon === null) throw new Error(`engine-local tests need the native addon: ${load.reason}`);
if (MODEL === undefined) throw new Error('engine-local tests need stories260K.gguf (set INFERENCE_TEST_MODEL)');
const addon = load.addon;

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
      { modelPath: MODEL, contextSize: 1024, maxSequences: 2, gpuLayers: 0, threads: 1, batchTokens: 64 },
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
});
