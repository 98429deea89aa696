// The addon used directly (no host process): its JS contract, the one-event-per-step
// rule, request validation, and the UTF-8 / stop-string filter. Needs `pnpm build:native`.

import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findAddon, tryLoadAddon, type NativeEngine, type NativeStepEvent, type NativeStepItem } from './native.js';
import { MODEL, repoRoot, requireAddon } from './testModel.js';

const here = dirname(fileURLToPath(import.meta.url));
const addon = requireAddon();
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('addon discovery', () => {
  it('finds build/Release/inference_native.node above the package, and honours the override', () => {
    expect(findAddon({}, here)).toBe(join(repoRoot, 'build', 'Release', 'inference_native.node'));
    expect(findAddon({ INFERENCE_NATIVE_ADDON: '/nonexistent.node' })).toBeNull();
    const missing = tryLoadAddon({ INFERENCE_NATIVE_ADDON: '/nonexistent.node' });
    expect(missing.addon).toBeNull();
  });

  it('reports the inventory', () => {
    const inv = addon.inventory();
    expect(['cpu', 'cuda']).toContain(inv.backend);
    expect(inv.cpuThreads).toBeGreaterThan(0);
    expect(inv.totalRam).toBeGreaterThan(inv.freeRam);
    for (const g of inv.gpus) expect(g.totalMemory).toBeGreaterThan(0);
  });
});

describe('text stream (UTF-8 and stop strings)', () => {
  const textStream = (pieces: Uint8Array[], stops: string[]): ReturnType<typeof addon.testing.textStream> =>
    addon.testing.textStream(pieces, stops);

  it('never splits a multi-byte character across chunks', () => {
    const bytes = utf8('aé€😀b');
    const pieces = Array.from(bytes, (b) => Uint8Array.of(b));
    const r = textStream(pieces, []);
    expect(r.chunks.join('') + r.rest).toBe('aé€😀b');
    for (const c of r.chunks) expect(c).not.toContain('\uFFFD');
    expect(r.chunks.filter((c) => c !== '')).toEqual(['a', 'é', '€', '😀', 'b']);
  });

  it('holds back a possible stop-string prefix and never emits the stop string', () => {
    const r = textStream([utf8('Hello'), utf8(' wor'), utf8('ld!'), utf8(' more')], ['world']);
    expect(r.stopped).toBe(true);
    expect(r.chunks.join('')).toBe('Hello ');
    expect(r.chunks[1]).toBe(' '); // "wor" was held back
  });

  it('releases held text once it cannot become a stop string', () => {
    const r = textStream([utf8('a wo'), utf8('nder')], ['world']);
    expect(r.stopped).toBe(false);
    expect(r.chunks).toEqual(['a ', 'wonder']);
  });

  it('cuts at the earliest of several stop strings, also inside one piece', () => {
    const r = textStream([utf8('one. two! three')], ['!', '.']);
    expect(r.chunks).toEqual(['one']);
    expect(r.stopped).toBe(true);
  });

  it('flushes held text at the end', () => {
    const r = textStream([utf8('the end wor')], ['world']);
    expect(r.chunks).toEqual(['the end ']);
    expect(r.rest).toBe('wor');
  });
});

describe('Engine (direct)', () => {
  let engine: NativeEngine;
  const events: NativeStepEvent[] = [];
  const waiters = new Map<number, (items: NativeStepItem[]) => void>();
  const items = new Map<number, NativeStepItem[]>();

  function run(id: number): Promise<NativeStepItem[]> {
    return new Promise((r) => waiters.set(id, r));
  }

  beforeAll(async () => {
    const progress: number[] = [];
    engine = new addon.Engine(
      {
        modelPath: MODEL,
        contextSize: 2048,
        maxSequences: 4,
        gpuLayers: 0,
        threads: 1,
        batchTokens: 64,
        onProgress: (f) => progress.push(f),
      },
      (ev) => {
        events.push(ev);
        for (const it of ev.items) {
          const list = items.get(it.id) ?? [];
          list.push(it);
          items.set(it.id, list);
          if (it.done !== undefined || it.error !== undefined) waiters.get(it.id)?.(list);
        }
      },
    );
    await engine.ready();
    expect(progress.at(-1)).toBe(1);
  });
  afterAll(() => {
    engine.close();
  });

  it('describes the model', () => {
    const info = engine.modelInfo();
    expect(info).toMatchObject({ nVocab: 512, chatTemplate: null, hasEncoder: false, bos: 1, eos: 2 });
    expect(info.sequenceContext).toBe(512); // 2048 cells split over 4 slots
    expect(engine.applyChatTemplate([{ role: 'user', content: 'hi' }], true)).toBeNull();
  });

  it('tokenizes and detokenizes', () => {
    const t = engine.tokenize('Once upon a time', true, false);
    expect(t).toBeInstanceOf(Int32Array);
    expect(t[0]).toBe(1);
    expect(engine.detokenize(t.subarray(1))).toContain('Once upon a time');
    expect(() => engine.detokenize(Int32Array.of(100000))).toThrow();
  });

  it('delivers one event per decode step carrying every sequence of that step', async () => {
    events.length = 0;
    const prompt = engine.tokenize('Once upon a time', true, false);
    const done = [1, 2, 3].map((id) => run(id));
    for (const id of [1, 2, 3]) engine.submit({ id, prompt, maxTokens: 20, temperature: 0.5, seed: id, stop: [] });
    const results = await Promise.all(done);
    for (const r of results) {
      const last = r.at(-1);
      expect(last).toMatchObject({ done: 'length', completionTokens: 20, promptTokens: prompt.length });
      expect(r.reduce((n, it) => n + it.n, 0)).toBe(20);
      expect(r[0]?.promptTokens).toBe(prompt.length);
    }
    const steps = events.map((e) => e.step);
    expect(new Set(steps).size).toBe(steps.length); // never two events for one step
    for (const e of events) expect(new Set(e.items.map((i) => i.id)).size).toBe(e.items.length);
    expect(Math.max(...events.map((e) => e.items.length))).toBe(3);
  });

  it('rejects invalid requests with an error item, not a crash', async () => {
    const bad = run(10);
    engine.submit({ id: 10, prompt: Int32Array.of(1, 99999), maxTokens: 5, stop: [] });
    expect((await bad)[0]?.error?.kind).toBe('invalid_request');
    const long = run(11);
    engine.submit({ id: 11, prompt: engine.tokenize('a b c', true, false), maxTokens: 600, stop: [] });
    expect((await long)[0]?.error?.kind).toBe('context_length_exceeded');
    expect(() => {
      engine.submit({ id: 12, prompt: new Int32Array(2), maxTokens: 0, stop: [] });
    }).toThrow(RangeError);
  });

  it('cancels a queued or running sequence', async () => {
    const prompt = engine.tokenize('Once upon a time', true, false);
    const r = run(20);
    engine.submit({ id: 20, prompt, maxTokens: 400, stop: [] });
    engine.cancel(20);
    const list = await r;
    expect(list.at(-1)?.done).toBe('cancelled');
    expect(engine.stats().activeSequences).toBe(0);
  });

  it('embeds (mean pooled, normalised) and rejects inputs over the context', async () => {
    const v = await engine.embed(engine.tokenize('Once upon a time', true, false));
    expect(v).toBeInstanceOf(Float32Array);
    expect(v.length).toBe(engine.modelInfo().nEmbd);
    expect(Math.hypot(...v)).toBeCloseTo(1, 4);
    await expect(engine.embed(new Int32Array(5000).fill(5))).rejects.toMatchObject({ code: 'context_length_exceeded' });
  });

  it('a bad model path rejects ready()', async () => {
    const e = new addon.Engine({ modelPath: '/nonexistent.gguf', contextSize: 256, maxSequences: 1, gpuLayers: 0, threads: 1, batchTokens: 32 }, () => undefined);
    await expect(e.ready()).rejects.toMatchObject({ code: 'load_failed' });
    e.close();
    e.close(); // idempotent
    expect(() => e.stats()).toThrow('engine closed');
  });
});
