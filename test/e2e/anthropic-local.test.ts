// @anthropic-ai/sdk against a local GGUF deployment (the native engine, a real tiny
// model): /v1/messages serves local models too, streamed and not, with Anthropic's
// event sequence and usage; tools are refused on this model, which has no chat template
// (anthropic-local-tools.test.ts has them on a model with one).

import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Server, parseConfig, serve } from '@inference/gateway';
import { anthropicClient } from '../support/anthropic.js';
import { sseEvents } from '../support/harness.js';

const MODEL = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'models', 'stories260K.gguf');

let server: Server;
let anthropic: Anthropic;

beforeAll(async () => {
  server = await serve(parseConfig({
    server: { port: 0 },
    deployments: [{ name: 'stories', runtime: 'llama', model: MODEL, replicas: 1, engine: { contextSize: 2048, maxSequences: 4, threads: 1 } }],
  }));
  await server.runtime.settled();
  anthropic = anthropicClient(server.url);
});
afterAll(async () => {
  await server.close();
});

/** Prompt tokens in all: Anthropic counts those served from the (prefix) cache apart from input_tokens. */
function promptTokens(u: { input_tokens: number; cache_read_input_tokens?: number | null; cache_creation_input_tokens?: number | null }): number {
  return u.input_tokens + (u.cache_read_input_tokens ?? 0) + (u.cache_creation_input_tokens ?? 0);
}

const ASK = { model: 'stories', max_tokens: 24, temperature: 0, messages: [{ role: 'user' as const, content: 'Once upon a time' }] };

describe('Anthropic client -> local deployment', () => {
  it('answers streamed and not with the same text, event order and usage', async () => {
    const { data: msg, response } = await anthropic.messages.create(ASK).withResponse();
    const text = msg.content[0]?.type === 'text' ? msg.content[0].text : '';
    expect(text.length).toBeGreaterThan(20);
    expect(msg.content).toHaveLength(1);
    expect(msg.stop_reason).toBe('max_tokens');
    expect(msg.model).toBe('stories');
    expect(msg.usage.output_tokens).toBe(24);
    expect(promptTokens(msg.usage)).toBeGreaterThan(0);
    expect(response.headers.get('request-id')).toMatch(/^req_/);

    const res = await fetch(`${server.url}/v1/messages`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...ASK, stream: true }),
    });
    const events = await sseEvents(res);
    const names = events.map((e) => e.event);
    const deltas = names.filter((n) => n === 'content_block_delta').length;
    expect(deltas).toBeGreaterThan(0);
    expect(names).toEqual(['message_start', 'content_block_start', 'ping', ...Array.from({ length: deltas }, () => 'content_block_delta'), 'content_block_stop', 'message_delta', 'message_stop']);
    expect(events.filter((e) => e.event === 'content_block_delta').map((e) => (e.data.delta as { text: string }).text).join('')).toBe(text);
    const delta = events.find((e) => e.event === 'message_delta')?.data;
    expect(delta).toMatchObject({ delta: { stop_reason: 'max_tokens', stop_sequence: null }, usage: { output_tokens: 24 } });
    expect(promptTokens(delta?.usage as Anthropic.Usage)).toBe(promptTokens(msg.usage));

    const final = await anthropic.messages.stream(ASK).finalMessage();
    expect(final.content).toMatchObject([{ type: 'text', text }]);
    expect(final.usage.output_tokens).toBe(24);
    expect(promptTokens(final.usage)).toBe(promptTokens(msg.usage));
  });

  it('puts the system prompt into the model input', async () => {
    const plain = await anthropic.messages.create({ ...ASK, max_tokens: 2 });
    const withSystem = await anthropic.messages.create({ ...ASK, max_tokens: 2, system: [{ type: 'text', text: 'Tell a short story about a cat.' }] });
    expect(promptTokens(withSystem.usage)).toBeGreaterThan(promptTokens(plain.usage) + 5);
  });

  it('stops at a stop sequence taken from the model output', async () => {
    const full = await anthropic.messages.create(ASK);
    const text = full.content[0]?.type === 'text' ? full.content[0].text : '';
    const words = text.split(' ').filter((w) => w.length >= 3);
    const stop = words[Math.min(3, words.length - 1)] ?? '';
    expect(stop.length).toBeGreaterThanOrEqual(3);
    const cut = await anthropic.messages.create({ ...ASK, stop_sequences: [stop] });
    const cutText = cut.content[0]?.type === 'text' ? cut.content[0].text : '';
    expect(text.startsWith(cutText)).toBe(true);
    expect(cutText.includes(stop)).toBe(false);
    expect(cut.stop_reason).not.toBe('max_tokens');
    expect(cut.usage.output_tokens).toBeLessThan(24);
  });

  it('refuses tools on a model without a chat template, with invalid_request_error', async () => {
    const e = await anthropic.messages.create({ ...ASK, tools: [{ name: 'f', input_schema: { type: 'object' } }] }).then(() => undefined, (err: unknown) => err);
    expect(e).toBeInstanceOf(Anthropic.BadRequestError);
    const err = e as InstanceType<typeof Anthropic.BadRequestError>;
    expect(err.type).toBe('invalid_request_error');
    expect(err.message).toMatch(/tools need a chat template: this model has none/);
  });
});
