// OpenAI wire conformance on the local engine (stories260K.gguf through the native
// addon): the same raw SSE invariants as the remote suite, n, stop as a string and
// an array, max_completion_tokens, and the parameters the engine cannot honour
// (response_format json_object/json_schema: no constrained decoding; logprobs)
// refused with a 400 naming the param instead of being silently ignored.

import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { type Server, parseConfig, serve } from '@inference/gateway';
import { checkOpenAIStream, expectEnvelope, rawStream } from '../support/sse.js';

const MODEL = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'models', 'stories260K.gguf');

let server: Server;
let client: OpenAI;

beforeAll(async () => {
  server = await serve(parseConfig({
    server: { port: 0 },
    deployments: [{ name: 'llama', runtime: 'llama', model: MODEL, replicas: 1, engine: { contextSize: 1024, maxSequences: 4, threads: 1 } }],
  }));
  await server.runtime.settled();
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});
afterAll(async () => {
  await server.close();
});

const MSG = [{ role: 'user' as const, content: 'Once upon a time' }];
const BASE = { model: 'llama', messages: MSG, temperature: 0 };

describe('local engine: stream framing', () => {
  it('chat with n=2 and include_usage keeps every invariant', async () => {
    const s = await rawStream(`${server.url}/v1/chat/completions`, { ...BASE, max_tokens: 12, n: 2, seed: 3, stream: true, stream_options: { include_usage: true } });
    const sum = checkOpenAIStream(s, { kind: 'chat', n: 2, includeUsage: true, model: 'llama' });
    expect(sum.usage?.completion_tokens).toBe(24);
    for (const i of [0, 1]) {
      expect(sum.finish.get(i)).toBe('length');
      expect((sum.text.get(i) ?? '').length).toBeGreaterThan(0);
    }
  });

  it('a text completion stream without include_usage has no usage chunk', async () => {
    const s = await rawStream(`${server.url}/v1/completions`, { model: 'llama', prompt: 'Once upon a time', max_tokens: 8, temperature: 0, stream: true });
    const sum = checkOpenAIStream(s, { kind: 'completion', n: 1, includeUsage: false, model: 'llama' });
    expect(sum.usage).toBeUndefined();
    expect(sum.finish.get(0)).toBe('length');
  });
});

describe('local engine: sampling parameters', () => {
  it('max_completion_tokens is honoured (and wins over max_tokens)', async () => {
    const r = await client.chat.completions.create({ ...BASE, max_completion_tokens: 7, max_tokens: 20 });
    expect(r.usage?.completion_tokens).toBe(7);
    expect(r.choices[0]?.finish_reason).toBe('length');
  });

  it('stop as a string and as an array ends the text before the stop sequence', async () => {
    const free = await client.chat.completions.create({ ...BASE, max_tokens: 40 });
    const text = free.choices[0]?.message.content ?? '';
    // A word from the middle of the greedy answer: stopping on it must cut the same answer there.
    const words = text.split(/\s+/).filter((w) => /^[a-z]{3,}$/.test(w));
    const word = words[Math.floor(words.length / 2)];
    expect(word).toBeDefined();
    const cut = text.slice(0, text.indexOf(word ?? ''));
    const asString = await client.chat.completions.create({ ...BASE, max_tokens: 40, stop: word ?? '' });
    expect(asString.choices[0]?.finish_reason).toBe('stop');
    expect(asString.choices[0]?.message.content).toBe(cut);
    const asArray = await client.chat.completions.create({ ...BASE, max_tokens: 40, stop: ['zzzq', word ?? ''] });
    expect(asArray.choices[0]?.finish_reason).toBe('stop');
    expect(asArray.choices[0]?.message.content).toBe(cut);
  });
});

describe('local engine: what it cannot honour is refused', () => {
  it('response_format json_schema and json_object: 400 naming response_format; text is fine', async () => {
    for (const format of [
      { type: 'json_schema' as const, json_schema: { name: 'a', schema: { type: 'object' } } },
      { type: 'json_object' as const },
    ]) {
      const err = await client.chat.completions.create({ ...BASE, max_tokens: 4, response_format: format }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.BadRequestError);
      expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('response_format');
    }
    const ok = await client.chat.completions.create({ ...BASE, max_tokens: 4, response_format: { type: 'text' } });
    expect(ok.usage?.completion_tokens).toBe(4);
  });

  it('a refused stream is a plain 400, not an SSE stream', async () => {
    const s = await rawStream(`${server.url}/v1/chat/completions`, { ...BASE, stream: true, response_format: { type: 'json_object' } });
    expect(s.status).toBe(400);
    expect(expectEnvelope(JSON.parse(s.data[0] ?? '')).error.param).toBe('response_format');
  });

  it('logprobs: 400 naming logprobs', async () => {
    const err = await client.chat.completions.create({ ...BASE, max_tokens: 4, logprobs: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('logprobs');
  });
});
