// OpenAI wire conformance on the local engine (stories260K.gguf through the native
// addon): the same raw SSE invariants as the remote suite, n, stop as a string and
// an array, max_completion_tokens, response_format json_object/json_schema enforced by
// grammar-constrained decoding (a schema that cannot be converted is a 400 naming it),
// and what the engine cannot honour (logprobs) refused with a 400 naming the param
// instead of being silently ignored.

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

describe('local engine: response_format is enforced', () => {
  const person = {
    type: 'object',
    properties: { name: { type: 'string' }, age: { type: 'integer' } },
    required: ['name', 'age'],
  };

  it('json_schema: the reply parses and has the required keys with their types (temperature 1, three seeds)', async () => {
    // maxLength keeps the story model's string inside this deployment's 256-cell sequence context.
    const bounded = { ...person, properties: { ...person.properties, name: { type: 'string', maxLength: 40 } } };
    for (const seed of [1, 2, 3]) {
      const r = await client.chat.completions.create({
        ...BASE, temperature: 1, seed, max_tokens: 200,
        response_format: { type: 'json_schema', json_schema: { name: 'person', schema: bounded, strict: true } },
      });
      expect(r.choices[0]?.finish_reason).toBe('stop');
      const v = JSON.parse(r.choices[0]?.message.content ?? '') as Record<string, unknown>;
      expect(Object.keys(v).sort()).toEqual(['age', 'name']);
      expect(typeof v['name'] === 'string' && v['name'].length <= 40).toBe(true);
      expect(Number.isInteger(v['age'])).toBe(true);
    }
  });

  it('json_object: a JSON object, streamed or not (cut JSON only when max_tokens ends it); text is unconstrained', async () => {
    const isObject = (text: string): boolean => {
      const v: unknown = JSON.parse(text);
      return typeof v === 'object' && v !== null && !Array.isArray(v);
    };
    let finished = 0;
    for (const seed of [4, 5, 6]) {
      const r = await client.chat.completions.create({ ...BASE, temperature: 1, seed, max_tokens: 200, response_format: { type: 'json_object' } });
      const text = r.choices[0]?.message.content ?? '';
      if (r.choices[0]?.finish_reason === 'length') {
        expect(text).toMatch(/^\s*\{/);
        continue;
      }
      expect(isObject(text)).toBe(true);
      finished++;
    }
    expect(finished).toBeGreaterThan(0);
    const s = await rawStream(`${server.url}/v1/chat/completions`, { ...BASE, temperature: 1, seed: 5, max_tokens: 200, stream: true, response_format: { type: 'json_object' } });
    const sum = checkOpenAIStream(s, { kind: 'chat', n: 1, includeUsage: false, model: 'llama' });
    const streamed = sum.text.get(0) ?? '';
    if (sum.finish.get(0) === 'stop') expect(isObject(streamed)).toBe(true);
    else expect(streamed).toMatch(/^\s*\{/);
    const ok = await client.chat.completions.create({ ...BASE, max_tokens: 4, response_format: { type: 'text' } });
    expect(ok.usage?.completion_tokens).toBe(4);
  });

  it('max_tokens still bounds a constrained reply: an unfinished JSON ends with length', async () => {
    const r = await client.chat.completions.create({ ...BASE, max_tokens: 3, response_format: { type: 'json_schema', json_schema: { name: 'person', schema: person } } });
    expect(r.choices[0]?.finish_reason).toBe('length');
    expect(r.choices[0]?.message.content).toMatch(/^\s*\{/);
  });

  it('a schema that cannot be converted: 400 naming response_format.json_schema.schema; streamed, a plain 400', async () => {
    const format = { type: 'json_schema' as const, json_schema: { name: 'bad', schema: { type: 'frobnicate' } } };
    const err = await client.chat.completions.create({ ...BASE, max_tokens: 4, response_format: format }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('response_format.json_schema.schema');
    const s = await rawStream(`${server.url}/v1/chat/completions`, { ...BASE, max_tokens: 4, stream: true, response_format: format });
    expect(s.status).toBe(400);
    expect(expectEnvelope(JSON.parse(s.data[0] ?? '')).error.param).toBe('response_format.json_schema.schema');
  });
});

describe('local engine: what it cannot honour is refused', () => {
  it('prediction (predicted outputs): 400 naming prediction', async () => {
    const err = await client.chat.completions.create({ ...BASE, max_tokens: 4, prediction: { type: 'content', content: 'x' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('prediction');
  });

  it('logprobs are honoured: one entry per generated token', async () => {
    const r = await client.chat.completions.create({ ...BASE, max_tokens: 4, logprobs: true, top_logprobs: 2 });
    expect(r.choices[0]?.logprobs?.content).toHaveLength(r.usage?.completion_tokens ?? -1);
  });
});
