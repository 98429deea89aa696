// Anthropic wire conformance of /v1/messages at the byte level: every event is
// `event: <name>\ndata: <json with the same type>\n\n`, the sequence is
// message_start .. message_stop with nothing after, an error after the first byte
// is the last event, headers carry request-id (equal to x-request-id), and the
// @anthropic-ai/sdk sees ids, stop reasons, tool-use deltas and typed errors.
// Event orders and translations in depth live in anthropic*.test.ts.

import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../support/harness.js';
import { ANTHROPIC_DEPLOYMENTS, anthropicClient } from '../support/anthropic.js';

let h: Harness;
let anthropic: Anthropic;

beforeAll(async () => {
  h = await startHarness({ replicas: 1, gpt: { remote: { maxRetries: 0, breaker: { failureThreshold: 1000 } } }, extraDeployments: ANTHROPIC_DEPLOYMENTS });
  anthropic = anthropicClient(h.url);
});
afterAll(async () => {
  await h.close();
});
beforeEach(() => {
  h.mock.reset();
});

interface RawEvent { event: string; data: Record<string, unknown> }

async function rawMessages(body: unknown): Promise<{ res: Response; events: RawEvent[] }> {
  const res = await fetch(`${h.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await res.text();
  expect(res.status).toBe(200);
  expect(text.endsWith('\n\n')).toBe(true);
  const events = text.slice(0, -2).split('\n\n').map((block) => {
    const lines = block.split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^event: [a-z_]+$/);
    expect(lines[1]?.startsWith('data: ')).toBe(true);
    const e = { event: (lines[0] ?? '').slice(7), data: JSON.parse((lines[1] ?? '').slice(6)) as Record<string, unknown> };
    expect(e.data.type).toBe(e.event);
    return e;
  });
  return { res, events };
}

const PROMPT = { max_tokens: 4, messages: [{ role: 'user', content: 'Say something' }] };

describe('Anthropic SSE framing', () => {
  for (const model of ['claude', 'gpt']) {
    it(`a text stream from '${model}': framing, headers, start fields, indices, one message_stop last`, async () => {
      const { res, events } = await rawMessages({ model, ...PROMPT, stream: true });
      expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
      expect(res.headers.get('request-id')).toMatch(/^req_/);
      expect(res.headers.get('request-id')).toBe(res.headers.get('x-request-id'));
      const names = events.map((e) => e.event);
      expect(names[0]).toBe('message_start');
      expect(names.at(-1)).toBe('message_stop');
      expect(names.filter((n) => n === 'message_stop')).toHaveLength(1);
      expect(names.filter((n) => n === 'message_delta')).toHaveLength(1);
      const start = events[0]?.data.message as Record<string, unknown>;
      expect(start).toMatchObject({ type: 'message', role: 'assistant', model, content: [], stop_reason: null });
      expect(start.id).toMatch(/^msg_/);
      const deltas = events.filter((e) => e.event === 'content_block_delta');
      expect(deltas.map((d) => d.data.index)).toEqual(deltas.map(() => 0));
      expect(deltas.map((d) => (d.data.delta as { text: string }).text).join('')).toBe('The quick brown fox');
      const md = events.find((e) => e.event === 'message_delta')?.data;
      expect(md).toMatchObject({ delta: { stop_reason: 'max_tokens', stop_sequence: null }, usage: { output_tokens: 4 } });
    });
  }

  it('an error after the first byte is the last event: event: error, no message_stop', async () => {
    // Past message_start, content_block_start and ping: the cut comes after text went out.
    h.mock.setScript([{ disconnectAfterChunks: 5 }]);
    const { events } = await rawMessages({ model: 'claude-strict', ...PROMPT, max_tokens: 10, stream: true });
    expect(events.at(-1)?.event).toBe('error');
    expect(events.at(-1)?.data).toMatchObject({ type: 'error', error: { type: expect.any(String) as unknown, message: expect.any(String) as unknown } });
    expect(events.map((e) => e.event)).not.toContain('message_stop');
    expect(events.filter((e) => e.event === 'error')).toHaveLength(1);
  });
});

describe('the Anthropic SDK', () => {
  it('streams a tool_use block as input_json_delta pieces that parse to the input', async () => {
    const stream = anthropic.messages.stream({
      model: 'claude', max_tokens: 64, messages: [{ role: 'user', content: 'weather in Paris?' }],
      tools: [{ name: 'get_weather', input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }],
      tool_choice: { type: 'any' },
    });
    let pieces = '';
    stream.on('inputJson', (delta) => { pieces += delta; });
    const final = await stream.finalMessage();
    expect(final.stop_reason).toBe('tool_use');
    const block = final.content.find((b) => b.type === 'tool_use');
    expect(block).toMatchObject({ type: 'tool_use', name: 'get_weather', input: { city: 'Paris' } });
    expect(JSON.parse(pieces)).toEqual({ city: 'Paris' });
  });

  it('errors: typed classes, Anthropic error shape, request-id on the error', async () => {
    const nf = await anthropic.messages.create({ model: 'nope', ...PROMPT, messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e);
    expect(nf).toBeInstanceOf(Anthropic.NotFoundError);
    const e = nf as InstanceType<typeof Anthropic.NotFoundError>;
    expect(e.requestID).toMatch(/^req_/);
    expect(e.error).toMatchObject({ type: 'error', error: { type: 'not_found_error' } });
    const bad = await fetch(`${h.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': 'anth-9' }, body: JSON.stringify({ model: 'claude', messages: [] }) });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('request-id')).toBe('anth-9');
    expect(await bad.json()).toMatchObject({ type: 'error', error: { type: 'invalid_request_error' }, request_id: 'anth-9' });
  });

  it('an upstream 429 is a RateLimitError with retry-after', async () => {
    h.mock.setScript([{ status: 429, retryAfterSeconds: 4 }]);
    const rl = await anthropic.messages.create({ model: 'claude-strict', ...PROMPT, messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e);
    expect(rl).toBeInstanceOf(Anthropic.RateLimitError);
    expect((rl as InstanceType<typeof Anthropic.RateLimitError>).headers?.get('retry-after')).toBe('4');
  });
});
