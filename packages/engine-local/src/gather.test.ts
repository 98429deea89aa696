// Requests that arrive together start together (native/engine.h, Engine::hold): every
// request submitted in one turn of the event loop is admitted to the same first step, so
// their prompts are prefilled in one batch and their first tokens come from that step,
// as llama-server samples every slot that finished its prompt in the same update. Before,
// the engine thread woke on the first submit and decoded it alone: the others' first
// tokens waited for its prefill. Observed through the step number of each event.
// Through the engine host (hostClient.ts -> host.ts) the generations posted in one turn of
// the parent's event loop cross the IPC channel in one write, so the host submits them in
// one turn too: observed through the host's step counts.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EngineHost } from './hostClient.js';
import type { NativeEngine, NativeStepEvent } from './native.js';
import { GPU_LAYERS, MODEL, requireAddon, requireHostBuild } from './testModel.js';

const addon = requireAddon();

// Four prompts of which no two share a tenth of their tokens as a prefix: none waits for another's prefill to copy it.
const PROMPTS = [
  'Once upon a time, there was a little girl named Lily who liked to play in the park.',
  'Tom had a big red ball and he liked to throw it to his dog every morning.',
  'The sun was warm and the birds sang in the tall green tree by the river.',
  'Mom made a cake for the party and all the children came to eat it.',
] as const;

/** Keeps the event loop's current turn busy for `ms`: the engine thread has all the time it wants to wake. */
function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) { /* spin */ }
}

describe('requests submitted together', () => {
  let engine: NativeEngine;
  const steps: { step: number; seqs: number; tokens: number; sampled: number[] }[] = [];
  const done = new Map<number, () => void>();

  beforeAll(async () => {
    engine = new addon.Engine(
      { modelPath: MODEL, contextSize: 2048, maxSequences: 4, gpuLayers: GPU_LAYERS, threads: 1, batchTokens: 512 },
      (ev: NativeStepEvent) => {
        steps.push({ step: ev.step, seqs: ev.seqs, tokens: ev.tokens, sampled: ev.items.filter((i) => i.n > 0).map((i) => i.id) });
        for (const it of ev.items) if (it.done !== undefined || it.error !== undefined) done.get(it.id)?.();
      },
    );
    await engine.ready();
  });
  afterAll(() => {
    engine.close();
  });

  async function burst(firstId: number, gapMs: number): Promise<{ step: number; seqs: number; tokens: number; sampled: number[] }[]> {
    steps.length = 0;
    const finished = PROMPTS.map((_, i) => new Promise<void>((r) => done.set(firstId + i, r)));
    const promptTokens = PROMPTS.map((p) => engine.tokenize(p, true, false));
    promptTokens.forEach((prompt, i) => {
      if (i > 0) busy(gapMs);
      engine.submit({ id: firstId + i, prompt, maxTokens: 3, temperature: 0, stop: [] });
    });
    await Promise.all(finished);
    return [...steps];
  }

  it('are prefilled in one step and all sample their first token in it, however long the turn that submits them', async () => {
    const before = engine.stats().steps;
    const log = await burst(1, 30);
    const first = log[0];
    expect(first).toBeDefined();
    expect(first?.step).toBe(before + 1);
    expect(first?.seqs).toBe(4);
    const promptTotal = PROMPTS.reduce((n, p) => n + engine.tokenize(p, true, false).length, 0);
    expect(first?.tokens).toBe(promptTotal);
    expect(first?.sampled.sort((a, b) => a - b)).toEqual([1, 2, 3, 4]);
    // 3 tokens each: the first step and two decode steps of the 4 together.
    expect(engine.stats().steps - before).toBe(3);
  });

  it('a request submitted in a later turn is not held back: it starts beside the running one', async () => {
    const before = engine.stats().steps;
    steps.length = 0;
    const a = new Promise<void>((r) => done.set(10, r));
    engine.submit({ id: 10, prompt: engine.tokenize(PROMPTS[0], true, false), maxTokens: 200, temperature: 0, stop: [] });
    while (steps.length === 0) await new Promise((r) => setTimeout(r, 1)); // a later turn, the engine running
    const b = new Promise<void>((r) => done.set(11, r));
    engine.submit({ id: 11, prompt: engine.tokenize(PROMPTS[1], true, false), maxTokens: 2, temperature: 0, stop: [] });
    await Promise.all([a, b]);
    const firstOf = (id: number): number | undefined => steps.find((s) => s.sampled.includes(id))?.step;
    expect(firstOf(10)).toBe(before + 1);
    expect(firstOf(11)).toBeGreaterThan(before + 1);
  });
});

describe('short prompts on an engine whose slots are empty', () => {
  it('start in one step: sharing their first token is no reason to wait for the other prefill', async () => {
    const firstStep = new Map<number, number>();
    const done = new Map<number, () => void>();
    const engine = new addon.Engine(
      { modelPath: MODEL, contextSize: 2048, maxSequences: 4, gpuLayers: GPU_LAYERS, threads: 1, batchTokens: 512 },
      (ev: NativeStepEvent) => {
        for (const it of ev.items) {
          if (it.n > 0 && !firstStep.has(it.id)) firstStep.set(it.id, ev.step);
          if (it.done !== undefined || it.error !== undefined) done.get(it.id)?.();
        }
      },
    );
    try {
      await engine.ready();
      const runs = ['Tom had a big red ball.', 'The sun was warm.'].map((p, i) => {
        const finished = new Promise<void>((r) => done.set(i + 1, r));
        engine.submit({ id: i + 1, prompt: engine.tokenize(p, true, false), maxTokens: 2, temperature: 0, stop: [] });
        return finished;
      });
      await Promise.all(runs);
      expect(firstStep.get(1)).toBe(1);
      expect(firstStep.get(2)).toBe(1);
      expect(engine.stats().admissionsDeferred).toBe(0);
    } finally {
      engine.close();
    }
  });
});

describe('a burst that reaches an idle engine over several turns', () => {
  // Clients whose sequences ran together send their next requests at once, but the
  // engine thread sees them a little apart. The engine waits for the rest of such a burst (a
  // share of a step's cost: nothing measurable for stories260K, so the test sets a floor).
  let engine: NativeEngine;
  const firstStep = new Map<number, number>();
  const done = new Map<number, () => void>();
  beforeAll(async () => {
    engine = new addon.Engine(
      { modelPath: MODEL, contextSize: 2048, maxSequences: 4, gpuLayers: GPU_LAYERS, threads: 1, batchTokens: 512, gatherFloorUs: 500_000 },
      (ev: NativeStepEvent) => {
        for (const it of ev.items) {
          if (it.n > 0 && !firstStep.has(it.id)) firstStep.set(it.id, ev.step);
          if (it.done !== undefined || it.error !== undefined) done.get(it.id)?.();
        }
      },
    );
    await engine.ready();
  });
  afterAll(() => {
    engine.close();
  });
  const run = (id: number, prompt: string, maxTokens: number): Promise<void> => {
    const finished = new Promise<void>((r) => done.set(id, r));
    engine.submit({ id, prompt: engine.tokenize(prompt, true, false), maxTokens, temperature: 0, stop: [] });
    return finished;
  };
  const later = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

  it('the followers of sequences that ran together start in one step, though they arrive turns apart', async () => {
    // Two sequences that run together: their clients' next requests are a burst of two.
    await Promise.all([run(1, PROMPTS[0], 3), run(2, PROMPTS[1], 3)]);
    expect(firstStep.get(2)).toBe(firstStep.get(1));
    const a = run(3, PROMPTS[2], 3);
    await later(30);
    const b = run(4, PROMPTS[3], 3);
    await Promise.all([a, b]);
    expect(firstStep.get(3)).toBeDefined();
    expect(firstStep.get(4)).toBe(firstStep.get(3));
  });

  it('after a lone sequence, the next request starts at once', async () => {
    await run(5, PROMPTS[0], 3);
    const a = run(6, PROMPTS[1], 3);
    await later(30);
    const b = run(7, PROMPTS[2], 3);
    await Promise.all([a, b]);
    expect(firstStep.get(7)).toBeGreaterThan(firstStep.get(6) ?? Infinity);
  });
});

describe('generations posted together through the engine host', () => {
  let host: EngineHost;
  beforeAll(async () => {
    requireHostBuild();
    host = await EngineHost.start({ modelPath: MODEL, contextSize: 2048, maxSequences: 4, gpuLayers: GPU_LAYERS, threads: 1, batchTokens: 512 });
  });
  afterAll(async () => {
    await host.close();
  });

  it('start in one decode step, however long the turn that posts them', async () => {
    const before = await host.stats();
    const signal = new AbortController().signal;
    const runs = PROMPTS.map((prompt, i) => {
      // Time enough for the host to read and start a generation posted on its own.
      if (i > 0) busy(30);
      return host.generate({ prompt }, { maxTokens: 3, temperature: 0, stop: [] }, signal, () => undefined);
    });
    const results = await Promise.all(runs);
    expect(results.map((r) => r.completionTokens)).toEqual([3, 3, 3, 3]);
    const after = await host.stats();
    // One step prefills the 4 prompts and samples their first tokens, two more decode the 4 together.
    expect(after.steps - before.steps).toBe(3);
    expect(after.maxStepSequences).toBe(4);
  });

  it('one generation alone is sent without waiting for another', async () => {
    const before = await host.stats();
    const r = await host.generate({ prompt: PROMPTS[0] }, { maxTokens: 2, temperature: 0, stop: [] }, new AbortController().signal, () => undefined);
    expect(r.completionTokens).toBe(2);
    expect((await host.stats()).steps - before.steps).toBe(2);
  });
});
