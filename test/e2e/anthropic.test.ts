// The Anthropic surface end to end with the real SDKs: @anthropic-ai/sdk against
// /v1/messages on an OpenAI-backed deployment (`gpt`) and on Anthropic-backed ones
// (`claude`), and the openai SDK against `claude`, all through the mock upstream.
// Each hop also checks what the mock received, i.e. the translated request body.
// Tool-call round trips and errors live in anthropic-tools / anthropic-errors.

import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type Harness, sseEvents, startHarness } from '../support/harness.js';
import { ANTHROPIC_DEPLOYMENTS, STREAM_EVENTS, anthropicClient } from '../support/anthropic.js';

let h: Harness;
let anthropic: Anthropic;

beforeAll(async () => {
  h = await startHarness({ mock: { apiKey: 'sk-upstream' }, credentials: () => 'sk-upstream', extraDeployments: ANTHROPIC_DEPLOYMENTS });
  anthropic = anthropicClient(h.url);
});
afterAll(async () => {
  await h.close();
});
beforeEach(() => {
  h.mock.reset();
});

// Sampling fields the SDK's types no longer list; the API (and this server) still take them.
const SAMPLING = { temperature: 0.5, top_k: 5 };
const PROMPT = { system: 'You are terse.', messages: [{ role: 'user' as const, content: 'Say something nice' }] };

describe('Anthropic client -> OpenAI-backed deployment', () => {
  it('answers a message with content, stop reason, usage and request-id', async () => {
    const { data: msg, response } = await anthropic.messages.create({
      model: 'gpt', max_tokens: 5, stop_sequences: ['dog'], ...PROMPT, ...SAMPLING,
    }, { headers: { 'x-request-id': 'trace-a-1' } }).withResponse();
    expect(msg).toMatchObject({
      type: 'message', role: 'assistant', model: 'gpt',
      content: [{ type: 'text', text: 'The quick brown fox jumps' }],
      stop_reason: 'max_tokens', stop_sequence: null,
      usage: { input_tokens: 6, output_tokens: 5 },
    });
    expect(msg.id).toMatch(/^msg_/);
    expect(response.headers.get('request-id')).toBe('trace-a-1');
    expect(response.headers.get('x-request-id')).toBe('trace-a-1');
    expect(h.mock.stats().lastBody).toMatchObject({
      model: 'gpt-4o-mini', max_completion_tokens: 5, temperature: 0.5, stop: ['dog'],
      messages: [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: 'Say something nice' }],
    });
  });

  it('streams Anthropic events in order with usage in message_delta', async () => {
    const res = await fetch(`${h.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model: 'gpt', max_tokens: 5, stream: true, ...PROMPT }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(res.headers.get('request-id')).toMatch(/^req_/);
    const events = await sseEvents(res);
    expect(events.map((e) => e.event)).toEqual(STREAM_EVENTS(5));
    for (const e of events) expect(e.data.type).toBe(e.event);
    expect(events.filter((e) => e.event === 'content_block_delta').map((e) => (e.data.delta as { text: string }).text).join('')).toBe('The quick brown fox jumps');
    const delta = events.find((e) => e.event === 'message_delta')?.data;
    expect(delta).toMatchObject({ delta: { stop_reason: 'max_tokens', stop_sequence: null }, usage: { input_tokens: 6, output_tokens: 5 } });
    expect(h.mock.stats().lastBody).toMatchObject({ stream: true, stream_options: { include_usage: true } });
  });

  it('streams through the SDK helpers to the same message', async () => {
    const stream = anthropic.messages.stream({ model: 'gpt', max_tokens: 7, ...PROMPT });
    const seen: string[] = [];
    stream.on('streamEvent', (e) => seen.push(e.type));
    const final = await stream.finalMessage();
    expect(final.content).toMatchObject([{ type: 'text', text: 'The quick brown fox jumps over the' }]);
    expect(final.content).toHaveLength(1);
    expect(final.stop_reason).toBe('max_tokens');
    expect(final.usage).toMatchObject({ input_tokens: 6, output_tokens: 7 });
    expect(seen[0]).toBe('message_start');
    expect(seen.at(-1)).toBe('message_stop');
    expect(seen.filter((t) => t === 'content_block_delta')).toHaveLength(7);
  });

  it('ends a natural stop as end_turn', async () => {
    h.mock.setDefault({ tokens: 3 });
    const msg = await anthropic.messages.create({ model: 'gpt', max_tokens: 50, ...PROMPT });
    expect(msg.stop_reason).toBe('end_turn');
    expect(msg.content).toEqual([{ type: 'text', text: 'The quick brown' }]);
    expect(msg.usage.output_tokens).toBe(3);
  });
});

describe('Anthropic client -> Anthropic-backed deployment', () => {
  it('passes system, stop sequences and sampling through and reports stop_sequence', async () => {
    const msg = await anthropic.messages.create({ model: 'claude', max_tokens: 9, stop_sequences: ['fox'], metadata: { user_id: 'u-7' }, ...PROMPT, ...SAMPLING });
    expect(msg).toMatchObject({ content: [{ type: 'text', text: 'The quick brown ' }], stop_reason: 'stop_sequence', stop_sequence: 'fox', usage: { input_tokens: 6, output_tokens: 4 } });
    const seen = h.mock.stats();
    expect(seen.lastHeaders['x-api-key']).toBe('sk-upstream');
    expect(seen.lastHeaders['anthropic-version']).toBe('2023-06-01');
    expect(seen.lastBody).toEqual({
      model: 'claude-3-5-haiku-latest', max_tokens: 9, system: 'You are terse.', stop_sequences: ['fox'], temperature: 0.5, top_k: 5,
      metadata: { user_id: 'u-7' }, messages: [{ role: 'user', content: [{ type: 'text', text: 'Say something nice' }] }],
    });
  });

  it('streams with the stop sequence in message_delta', async () => {
    const final = await anthropic.messages.stream({ model: 'claude', max_tokens: 9, stop_sequences: ['fox'], ...PROMPT }).finalMessage();
    expect(final.content).toMatchObject([{ type: 'text', text: 'The quick brown ' }]);
    expect(final.stop_reason).toBe('stop_sequence');
    expect(final.stop_sequence).toBe('fox');
    expect(final.usage).toMatchObject({ input_tokens: 6, output_tokens: 4 });
  });
});

describe('OpenAI client -> Anthropic-backed deployment', () => {
  it('chats with usage and finish reasons translated', async () => {
    const r = await h.client.chat.completions.create({
      model: 'claude', max_tokens: 4, messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello there' }],
    });
    expect(r.choices[0]?.message.content).toBe('The quick brown fox');
    expect(r.choices[0]?.finish_reason).toBe('length');
    expect(r.usage).toMatchObject({ prompt_tokens: 4, completion_tokens: 4, total_tokens: 8 });
    expect(h.mock.stats().lastBody).toEqual({
      model: 'claude-3-5-haiku-latest', max_tokens: 4, system: 'Be brief.', messages: [{ role: 'user', content: [{ type: 'text', text: 'Hello there' }] }],
    });
  });

  it('streams with include_usage and a stop sequence', async () => {
    const stream = await h.client.chat.completions.create({
      model: 'claude', max_tokens: 9, stop: ['fox'], stream: true, stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'Hello there' }],
    });
    let text = '';
    let finish: string | null | undefined;
    let usage: { prompt_tokens: number; completion_tokens: number } | undefined;
    for await (const c of stream) {
      text += c.choices[0]?.delta.content ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
      if (c.usage) usage = c.usage;
    }
    expect(text).toBe('The quick brown ');
    expect(finish).toBe('stop');
    expect(usage).toMatchObject({ prompt_tokens: 2, completion_tokens: 4 });
    expect(h.mock.stats().lastBody).toMatchObject({ stream: true, stop_sequences: ['fox'] });
  });
});
