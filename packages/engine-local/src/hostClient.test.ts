// End-to-end tests of the engine host with the real addon and the real tiny model
// (stories260K). They need `pnpm build:native` and this package's dist (turbo builds
// it before `test`); a missing addon fails the file instead of skipping it.

import { fork } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InferenceError, type EngineFaultKind } from '@inference/core';
import { EngineHost, type EngineHostOptions } from './hostClient.js';
import type { HostToParent, ParentToHost } from './protocol.js';
import { HOST_SCRIPT, MODEL, requireAddon, requireHostBuild } from './testModel.js';

requireAddon();
requireHostBuild();

// 8 slots of 512 KV cells each (split KV, the default).
const base: EngineHostOptions = {
  modelPath: MODEL,
  contextSize: 4096,
  maxSequences: 8,
  gpuLayers: 0,
  threads: 1,
  batchTokens: 256,
};
// One slot of 4096 cells: room for a generation long enough to be interrupted.
const single: EngineHostOptions = { ...base, maxSequences: 1 };
const PROMPT = { prompt: 'Once upon a time' };
const never = (): AbortSignal => new AbortController().signal;

async function collect(
  host: EngineHost,
  input: Parameters<EngineHost['generate']>[0],
  params: Parameters<EngineHost['generate']>[1],
  signal: AbortSignal = never(),
): Promise<{ text: string; tokens: number; result: Awaited<ReturnType<EngineHost['generate']>> }> {
  let text = '';
  let tokens = 0;
  const result = await host.generate(input, params, signal, (t, n) => {
    text += t;
    tokens += n;
  });
  return { text, tokens, result };
}

async function until<T>(probe: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (ok(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 5));
  }
}

function exitSignal(host: EngineHost): Promise<{ fault: EngineFaultKind; detail: string }> {
  return new Promise((r) => {
    host.onExit((fault, detail) => {
      r({ fault, detail });
    });
  });
}

describe('EngineHost with stories260K', () => {
  let host: EngineHost;
  beforeAll(async () => {
    const progress: number[] = [];
    host = await EngineHost.start({ ...base, onProgress: (f) => progress.push(f) });
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)).toBe(1);
  });
  afterAll(async () => {
    await host.close();
  });

  it('reports the model and uses the fallback template (stories260K has none)', () => {
    expect(host.info.nVocab).toBe(512);
    expect(host.info.chatTemplate).toBeNull();
    expect(host.info.templateSource).toBe('fallback');
    expect(host.pid).toBeGreaterThan(0);
  });

  it('generates text', async () => {
    const { text, tokens, result } = await collect(host, PROMPT, { maxTokens: 40, temperature: 0, stop: [] });
    expect(text.length).toBeGreaterThan(20);
    expect(result.finishReason).toBe('length');
    expect(result.completionTokens).toBe(40);
    expect(tokens).toBe(40);
    expect(result.promptTokens).toBeGreaterThan(1);
  });

  it('generates from chat messages', async () => {
    const { text, result } = await collect(
      host,
      { messages: [{ role: 'system', content: 'A short story.' }, { role: 'user', content: 'Once upon a time' }] },
      { maxTokens: 20, temperature: 0, stop: [] },
    );
    expect(text.length).toBeGreaterThan(0);
    expect(result.promptTokens).toBeGreaterThan(5);
  });

  it('max_tokens ends with length', async () => {
    const { result } = await collect(host, { prompt: 'The cat' }, { maxTokens: 7, temperature: 0.7, seed: 1, stop: [] });
    expect(result).toMatchObject({ finishReason: 'length', completionTokens: 7 });
  });

  it('stops at a stop string, which is not emitted', async () => {
    const free = await collect(host, PROMPT, { maxTokens: 60, temperature: 0, stop: [] });
    const stop = 'named';
    const at = free.text.indexOf(stop);
    expect(at).toBeGreaterThan(0);
    const stopped = await collect(host, PROMPT, { maxTokens: 60, temperature: 0, stop: ['zzz-not-there', stop] });
    expect(stopped.result.finishReason).toBe('stop');
    expect(stopped.text).toBe(free.text.slice(0, at));
    expect(stopped.result.completionTokens).toBeLessThan(60);
  });

  it('is deterministic for a seed at temperature > 0', async () => {
    const params = { maxTokens: 40, temperature: 0.9, topP: 0.95, seed: 1234, stop: [] };
    const a = await collect(host, PROMPT, params);
    const b = await collect(host, PROMPT, params);
    const c = await collect(host, PROMPT, { ...params, seed: 999 });
    expect(a.text).toBe(b.text);
    expect(c.text).not.toBe(a.text);
  });

  it('reuses the cached prompt prefix', async () => {
    const prompt = { prompt: 'Lily and Ben went to the park to play with a red ball and a big blue kite.' };
    const first = await collect(host, prompt, { maxTokens: 5, temperature: 0, stop: [] });
    const second = await collect(host, prompt, { maxTokens: 5, temperature: 0, stop: [] });
    expect(second.result.cachedTokens).toBeGreaterThan(0);
    expect(second.result.cachedTokens).toBe(second.result.promptTokens - 1);
    expect(second.text).toBe(first.text);
    expect((await host.stats()).promptTokensReused).toBeGreaterThan(0);
  });

  it('batches 8 concurrent generations into shared decode steps', async () => {
    const runs = Array.from({ length: 8 }, (_, i) =>
      collect(host, { prompt: `Once upon a time, ${String(i)}` }, { maxTokens: 120, temperature: 0.8, seed: i, stop: [] }),
    );
    const results = await Promise.all(runs);
    for (const r of results) expect(r.result.completionTokens).toBeGreaterThan(0);
    const stats = await host.stats();
    expect(stats.maxStepSequences).toBeGreaterThanOrEqual(8);
    expect(stats.activeSequences).toBe(0);
  });

  it('abort rejects at once and frees the sequence within a step', async () => {
    const before = await host.stats();
    const ac = new AbortController();
    let chunks = 0;
    // stories260K never ends a story within 500 tokens: only the cancel can stop it early.
    const p = host.generate(PROMPT, { maxTokens: 500, temperature: 0.8, seed: 5, stop: [] }, ac.signal, () => {
      chunks++;
      if (chunks === 3) ac.abort(new Error('client went away'));
    });
    await expect(p).rejects.toThrow('client went away');
    const stats = await until(
      () => host.stats(),
      (s) => s.activeSequences === 0,
    );
    expect(stats.activeSequences).toBe(0);
    expect(stats.totalSampledTokens - before.totalSampledTokens).toBeLessThan(250);
    // The host still serves.
    const after = await collect(host, PROMPT, { maxTokens: 3, temperature: 0, stop: [] });
    expect(after.result.completionTokens).toBe(3);
  });

  it('rejects a prompt longer than the context with context_length_exceeded', async () => {
    const long = { prompt: 'word '.repeat(600) };
    const err = await host.generate(long, { maxTokens: 10, stop: [] }, never(), () => undefined).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InferenceError);
    expect(err).toMatchObject({ kind: 'context_length_exceeded', param: 'prompt' });
    const err2 = await host
      .generate({ messages: [{ role: 'user', content: 'hi' }] }, { maxTokens: 510, stop: [] }, never(), () => undefined)
      .catch((e: unknown) => e);
    expect(err2).toMatchObject({ kind: 'context_length_exceeded', param: 'messages' });
  });

  it('embeds texts', async () => {
    const { vectors, promptTokens } = await host.embed(['Once upon a time', 'The dog ran.']);
    expect(vectors).toHaveLength(2);
    expect(vectors[0]).toHaveLength(host.info.nEmbd);
    const norm = Math.hypot(...(vectors[0] ?? []));
    expect(norm).toBeCloseTo(1, 3);
    expect(promptTokens).toBeGreaterThan(4);
  });

  it('an injected OutOfMemory fails that request with overloaded and the host keeps serving', async () => {
    host.injectFault('OutOfMemory');
    const err = await host.generate(PROMPT, { maxTokens: 5, stop: [] }, never(), () => undefined).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InferenceError);
    expect(err).toMatchObject({ kind: 'overloaded', fault: 'OutOfMemory' });
    const next = await collect(host, PROMPT, { maxTokens: 5, temperature: 0, stop: [] });
    expect(next.result.completionTokens).toBe(5);
  });
});

/** A long generation on `host`, once its first token has arrived: the promise of its end. */
async function generating(host: EngineHost): Promise<{ done: Promise<unknown> }> {
  let first!: () => void;
  const started = new Promise<void>((r) => (first = r));
  const p = host.generate(PROMPT, { maxTokens: 3000, temperature: 0.8, stop: [] }, never(), () => {
    first();
  });
  // Whoever awaits the result handles its rejection; until then it must not count as unhandled.
  p.catch(() => undefined);
  await started;
  return { done: p };
}

describe('EngineHost failures', () => {
  it('kill -9 of the host: onExit(ContextPoisoned), in-flight generate rejects engine_unavailable', async () => {
    const host = await EngineHost.start(single);
    const exited = exitSignal(host);
    const { done: p } = await generating(host);
    process.kill(host.pid, 'SIGKILL');
    const err = await p.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InferenceError);
    expect(err).toMatchObject({ kind: 'engine_unavailable', fault: 'ContextPoisoned' });
    expect((await exited).fault).toBe('ContextPoisoned');
    await expect(host.generate(PROMPT, { maxTokens: 3, stop: [] }, never(), () => undefined)).rejects.toMatchObject({
      kind: 'engine_unavailable',
    });
  });

  it('messages sent to a host that is dying (EPIPE) are not errors: close still settles', async () => {
    const host = await EngineHost.start(single);
    const { done: p } = await generating(host);
    // The host reports the fault and exits; the parent reacts at once (as a restart does) while
    // the channel may already be broken.
    host.injectFault('ContextPoisoned');
    await expect(p).rejects.toMatchObject({ kind: 'engine_unavailable' });
    const closing = host.close();
    const until = Date.now() + 300;
    while (Date.now() < until) {
      host.injectFault('OutOfMemory');
      await new Promise((r) => setImmediate(r));
    }
    await closing;
    await expect(host.stats()).rejects.toMatchObject({ kind: 'engine_unavailable' });
  });

  it('an injected ContextPoisoned: fault reported, host exits, in-flight generate rejects', async () => {
    const host = await EngineHost.start(single);
    const exited = exitSignal(host);
    const { done: p } = await generating(host);
    host.injectFault('ContextPoisoned');
    await expect(p).rejects.toMatchObject({ kind: 'engine_unavailable', fault: 'ContextPoisoned' });
    const { fault, detail } = await exited;
    expect(fault).toBe('ContextPoisoned');
    expect(detail).toContain('injected');
  });

  it('a long prompt is prefilled in chunks while another sequence keeps decoding', async () => {
    const host = await EngineHost.start({ ...base, contextSize: 2048, maxSequences: 2, batchTokens: 32 });
    try {
      let aChunks = 0;
      let aChunksBeforeB: number | null = null;
      let bStarted!: () => void;
      const bSubmitted = new Promise<void>((r) => (bStarted = r));
      const a = host.generate(PROMPT, { maxTokens: 400, temperature: 0, stop: [] }, never(), () => {
        aChunks++;
        if (aChunks === 1) bStarted();
      });
      await bSubmitted;
      const startA = aChunks;
      const b = host.generate({ prompt: 'Once upon a time there was a dog. '.repeat(45) }, { maxTokens: 2, temperature: 0, stop: [] }, never(), () => {
        aChunksBeforeB ??= aChunks - startA;
      });
      const [ra, rb] = await Promise.all([a, b]);
      expect(rb.promptTokens).toBeGreaterThan(400);
      // ~400 prompt tokens at <= 31 per step: A got a token in (nearly) every one of those steps.
      expect(aChunksBeforeB).toBeGreaterThanOrEqual(10);
      expect(ra.completionTokens).toBeGreaterThan(20);
    } finally {
      await host.close();
    }
  });

  it('unified KV: exhausting the cells fails the youngest sequence with OutOfMemory, the rest finish', async () => {
    const host = await EngineHost.start({ ...base, contextSize: 256, maxSequences: 4, kvUnified: true });
    try {
      const runs = Array.from({ length: 4 }, (_, i) =>
        host
          .generate({ prompt: `Once upon a time ${String(i)}` }, { maxTokens: 200, temperature: 0, stop: [] }, never(), () => undefined)
          .then(
            (r) => r.finishReason,
            (e: unknown) => e,
          ),
      );
      const outcomes = await Promise.all(runs);
      const failed = outcomes.filter((o) => o instanceof InferenceError);
      expect(failed.length).toBeGreaterThan(0);
      for (const f of failed) expect(f).toMatchObject({ kind: 'overloaded', fault: 'OutOfMemory' });
      expect(outcomes.some((o) => o === 'length' || o === 'stop')).toBe(true);
      const next = await collect(host, PROMPT, { maxTokens: 5, temperature: 0, stop: [] });
      expect(next.result.completionTokens).toBe(5);
    } finally {
      await host.close();
    }
  });

  it('an injected Unrecoverable: onExit(Unrecoverable)', async () => {
    const host = await EngineHost.start(single);
    const exited = exitSignal(host);
    host.injectFault('Unrecoverable');
    const p = host.generate(PROMPT, { maxTokens: 100, stop: [] }, never(), () => undefined);
    await expect(p).rejects.toMatchObject({ kind: 'engine_unavailable', fault: 'Unrecoverable' });
    expect((await exited).fault).toBe('Unrecoverable');
  });

  it('a real ggml abort on the engine thread is reported as ContextPoisoned before the process dies', async () => {
    const host = await EngineHost.start(single);
    const exited = exitSignal(host);
    host.injectFault('GgmlAbort');
    const p = host.generate(PROMPT, { maxTokens: 100, stop: [] }, never(), () => undefined);
    await expect(p).rejects.toMatchObject({ kind: 'engine_unavailable', fault: 'ContextPoisoned' });
    const { fault, detail } = await exited;
    expect(fault).toBe('ContextPoisoned');
    expect(detail).toContain('injected abort'); // the fault event arrived, not just SIGABRT
  });

  it('the host exits when its parent disconnects', async () => {
    const child = fork(HOST_SCRIPT, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const ready = new Promise<HostToParent>((r) => {
      child.on('message', (m: HostToParent) => {
        if (m.t === 'ready') r(m);
      });
    });
    child.send({ t: 'init', config: { ...single, embeddings: false } } satisfies ParentToHost);
    expect((await ready).t).toBe('ready');
    const exited = new Promise<number | null>((r) => {
      child.once('exit', (code) => {
        r(code);
      });
    });
    child.disconnect();
    expect(await exited).toBe(0);
  });

  it('close() does not fire onExit', async () => {
    const host = await EngineHost.start(base);
    let fired = false;
    host.onExit(() => {
      fired = true;
    });
    await host.close();
    expect(fired).toBe(false);
    await expect(host.stats()).rejects.toMatchObject({ kind: 'engine_unavailable' });
  });

  it('a missing model file: engine_unavailable', async () => {
    const err = await EngineHost.start({ ...base, modelPath: '/nonexistent/model.gguf' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InferenceError);
    expect(err).toMatchObject({ kind: 'engine_unavailable' });
    expect((err as InferenceError).message).toContain('model.gguf');
    expect((err as InferenceError).diagnostic).toContain('not found');
  });

  it('a file that is not a GGUF model: engine_unavailable', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'engine-local-'));
    const bad = join(dir, 'bad.gguf');
    writeFileSync(bad, 'this is not a model');
    const err = await EngineHost.start({ ...base, modelPath: bad }).catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'engine_unavailable' });
  });

  it('a missing addon: engine_unavailable', async () => {
    const err = await EngineHost.start({ ...base, env: { INFERENCE_NATIVE_ADDON: '/nonexistent/addon.node' } }).catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ kind: 'engine_unavailable' });
    expect((err as InferenceError).message).toContain('addon');
  });
});
