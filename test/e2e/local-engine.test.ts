// The openai SDK against a local GGUF deployment on the native engine: real model,
// real engine host processes, continuous batching, and host crashes.

import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { type Server, parseConfig, serve } from '@inference/gateway';
import { metricValue } from '../support/harness.js';

const MODEL = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'models', 'stories260K.gguf');

let server: Server;
let client: OpenAI;

/** This test's engine hosts only (children of this process): other processes on the machine may run hosts too. */
function hostPids(): number[] {
  const out = execFileSync('ps', ['-eo', 'pid=,ppid=,args='], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((l) => l.includes('host.js'))
    .map((l) => l.trim().split(/\s+/).map(Number))
    .filter(([, ppid]) => ppid === process.pid)
    .map(([pid]) => pid ?? -1);
}

async function waitFor(cond: () => Promise<boolean> | boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  server = await serve(parseConfig({
    server: { port: 0 },
    deployments: [{ name: 'stories', runtime: 'llama', model: MODEL, replicas: 1, engine: { contextSize: 4096, maxSequences: 8, threads: 1 } }],
  }));
  await server.runtime.settled();
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});
afterAll(async () => {
  await server.close();
});

describe('local engine through the gateway', () => {
  it('chats with the model, streamed and not', async () => {
    const r = await client.chat.completions.create({ model: 'stories', messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 24, temperature: 0 });
    const text = r.choices[0]?.message.content ?? '';
    expect(text.length).toBeGreaterThan(20);
    expect(r.usage?.completion_tokens).toBe(24);
    expect(r.choices[0]?.finish_reason).toBe('length');
    const stream = await client.chat.completions.create({ model: 'stories', messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 24, temperature: 0, stream: true, stream_options: { include_usage: true } });
    let streamed = '';
    let usage = 0;
    for await (const c of stream) {
      streamed += c.choices[0]?.delta.content ?? '';
      usage = c.usage?.completion_tokens ?? usage;
    }
    expect(streamed).toBe(text);
    expect(usage).toBe(24);
  });

  it('batches 8 concurrent streams into shared decode steps', async () => {
    // Each stream runs its full 400 tokens (</s>, id 2, banned), so the eight overlap
    // even when a loaded machine spreads their arrivals out.
    await Promise.all(Array.from({ length: 8 }, async (_, i) => {
      const s = await client.completions.create({
        model: 'stories', prompt: `Tim had ${i} red`, max_tokens: 400, logit_bias: { '2': -100 }, stream: true,
      });
      for await (const _c of s) { /* drain */ }
    }));
    await waitFor(async () => (await metricValue(server.url, 'inference_engine_step_sequences_max', { deployment: 'stories' })) >= 8, 3000);
    expect(await metricValue(server.url, 'inference_engine_step_sequences_max', { deployment: 'stories' })).toBeGreaterThanOrEqual(8);
  });

  it('closing a stream frees its sequence', async () => {
    const ac = new AbortController();
    const s = await client.completions.create({ model: 'stories', prompt: 'The dog', max_tokens: 400, stream: true }, { signal: ac.signal });
    let n = 0;
    try {
      for await (const _c of s) {
        if (++n === 5) ac.abort();
      }
    } catch {
      /* aborted */
    }
    await waitFor(async () => (await metricValue(server.url, 'inference_engine_active_sequences', { deployment: 'stories' })) === 0, 3000);
  });

  it('kill -9 of the engine host mid-stream: clean error, the host comes back and serves', async () => {
    const [pid] = hostPids();
    expect(pid).toBeGreaterThan(0);
    const res = await fetch(`${server.url}/v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'stories', prompt: 'Lily', max_tokens: 400, stream: true }),
    });
    const reader = res.body!.getReader();
    await reader.read();
    process.kill(pid!, 'SIGKILL');
    let text = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    expect(text).toMatch(/data: \{"error":\{.*"code":"engine_unavailable"/);
    expect(text).not.toContain('[DONE]');
    await waitFor(() => hostPids().some((p) => p !== pid));
    const r = await client.completions.create({ model: 'stories', prompt: 'Lily', max_tokens: 5 });
    expect(r.choices[0]?.text.length).toBeGreaterThan(0);
    expect(await metricValue(server.url, 'inference_replica_restarts_total', { deployment: 'stories' })).toBe(1);
  });
});
