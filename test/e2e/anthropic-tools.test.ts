// Tool calls across the two wire formats, with the real SDKs and the mock upstream:
// an Anthropic client calling tools on an OpenAI-backed deployment (tool_use out of
// OpenAI tool_calls, tool_result back in as a tool message), and an OpenAI client
// calling tools on an Anthropic-backed deployment (tool_calls, streamed argument
// deltas included, out of tool_use; tool messages back in as tool_result blocks).
// The mock plans a call when tool choice is forced; its arguments for the schema
// below are {"location":"Paris"}, streamed in 8-character pieces.

import type Anthropic from '@anthropic-ai/sdk';
import type OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ANTHROPIC_DEPLOYMENTS, anthropicClient } from '../support/anthropic.js';
import { type Harness, sseEvents, startHarness } from '../support/harness.js';

let h: Harness;
let anthropic: Anthropic;

const SCHEMA = { type: 'object' as const, properties: { location: { type: 'string' } }, required: ['location'] };
const ARGS = '{"location":"Paris"}';
const ANTHROPIC_TOOL = { name: 'get_weather', description: 'Current weather for a place', input_schema: SCHEMA };
const OPENAI_TOOL: OpenAI.ChatCompletionTool = { type: 'function', function: { name: 'get_weather', description: 'Current weather for a place', parameters: SCHEMA } };
const ASK = 'Check Paris for me';

beforeAll(async () => {
  h = await startHarness({ extraDeployments: ANTHROPIC_DEPLOYMENTS });
  anthropic = anthropicClient(h.url);
});
afterAll(async () => {
  await h.close();
});
beforeEach(() => {
  h.mock.reset();
});

describe('Anthropic client, tools on an OpenAI-backed deployment', () => {
  it('gets tool_use from OpenAI tool_calls, and sends the tool_result back as a tool message', async () => {
    const first = await anthropic.messages.create({
      model: 'gpt', max_tokens: 64, tools: [ANTHROPIC_TOOL], tool_choice: { type: 'any' }, messages: [{ role: 'user', content: ASK }],
    });
    expect(h.mock.stats().lastBody).toMatchObject({
      tools: [{ type: 'function', function: { name: 'get_weather', description: 'Current weather for a place', parameters: SCHEMA } }],
      tool_choice: 'required',
    });
    expect(first.stop_reason).toBe('tool_use');
    expect(first.content).toHaveLength(1);
    const use = first.content[0];
    if (use?.type !== 'tool_use') throw new Error(`expected tool_use, got ${JSON.stringify(use)}`);
    expect(use).toMatchObject({ name: 'get_weather', input: { location: 'Paris' } });
    expect(use.id).toMatch(/^call_/);
    expect(first.usage.output_tokens).toBe(3);

    const second = await anthropic.messages.create({
      model: 'gpt', max_tokens: 4, tools: [ANTHROPIC_TOOL],
      messages: [
        { role: 'user', content: ASK },
        { role: 'assistant', content: first.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '21C and sunny' }] },
      ],
    });
    expect(h.mock.stats().lastBody).toMatchObject({
      messages: [
        { role: 'user', content: ASK },
        { role: 'assistant', content: null, tool_calls: [{ id: use.id, type: 'function', function: { name: 'get_weather', arguments: ARGS } }] },
        { role: 'tool', tool_call_id: use.id, content: '21C and sunny' },
      ],
    });
    expect(second.stop_reason).toBe('max_tokens');
    expect(second.content).toEqual([{ type: 'text', text: 'The quick brown fox' }]);
  });

  it('streams the call as a tool_use block with input_json_delta events', async () => {
    const res = await fetch(`${h.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt', max_tokens: 64, stream: true, tools: [ANTHROPIC_TOOL], tool_choice: { type: 'tool', name: 'get_weather' }, messages: [{ role: 'user', content: ASK }] }),
    });
    const events = await sseEvents(res);
    expect(h.mock.stats().lastBody).toMatchObject({ tool_choice: { type: 'function', function: { name: 'get_weather' } } });
    expect(events.map((e) => e.event)).toEqual([
      'message_start', 'content_block_start', 'ping', 'content_block_delta', 'content_block_delta', 'content_block_delta',
      'content_block_stop', 'message_delta', 'message_stop',
    ]);
    expect(events[1]?.data.content_block).toMatchObject({ type: 'tool_use', name: 'get_weather', input: {} });
    const deltas = events.filter((e) => e.event === 'content_block_delta').map((e) => e.data.delta as { type: string; partial_json: string });
    expect(deltas.every((d) => d.type === 'input_json_delta')).toBe(true);
    expect(deltas.map((d) => d.partial_json).join('')).toBe(ARGS);
    expect(events[7]?.data).toMatchObject({ delta: { stop_reason: 'tool_use' }, usage: { output_tokens: 3 } });

    const final = await anthropic.messages.stream({ model: 'gpt', max_tokens: 64, tools: [ANTHROPIC_TOOL], tool_choice: { type: 'any' }, messages: [{ role: 'user', content: ASK }] }).finalMessage();
    expect(final.stop_reason).toBe('tool_use');
    expect(final.content).toMatchObject([{ type: 'tool_use', name: 'get_weather', input: { location: 'Paris' } }]);
  });
});

describe('OpenAI client, tools on an Anthropic-backed deployment', () => {
  it('gets tool_calls from tool_use, and sends the tool message back as a tool_result block', async () => {
    const first = await h.client.chat.completions.create({
      model: 'claude', max_tokens: 64, tools: [OPENAI_TOOL], tool_choice: 'required', messages: [{ role: 'user', content: ASK }],
    });
    expect(h.mock.stats().lastBody).toMatchObject({
      tools: [{ name: 'get_weather', description: 'Current weather for a place', input_schema: SCHEMA }],
      tool_choice: { type: 'any' },
    });
    const choice = first.choices[0];
    expect(choice?.finish_reason).toBe('tool_calls');
    const call = choice?.message.tool_calls?.[0];
    if (call?.type !== 'function') throw new Error(`expected a function call, got ${JSON.stringify(call)}`);
    expect(call.function).toEqual({ name: 'get_weather', arguments: ARGS });
    expect(call.id).toMatch(/^toolu_/);

    const second = await h.client.chat.completions.create({
      model: 'claude', max_tokens: 4, tools: [OPENAI_TOOL],
      messages: [
        { role: 'user', content: ASK },
        { role: 'assistant', content: null, tool_calls: [call] },
        { role: 'tool', tool_call_id: call.id, content: '21C and sunny' },
      ],
    });
    expect(h.mock.stats().lastBody).toMatchObject({
      messages: [
        { role: 'user', content: [{ type: 'text', text: ASK }] },
        { role: 'assistant', content: [{ type: 'tool_use', id: call.id, name: 'get_weather', input: { location: 'Paris' } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: '21C and sunny' }] },
      ],
    });
    expect(second.choices[0]?.message.content).toBe('The quick brown fox');
    expect(second.choices[0]?.finish_reason).toBe('length');
  });

  it('streams tool_calls deltas with the argument JSON in pieces', async () => {
    const stream = await h.client.chat.completions.create({
      model: 'claude', max_tokens: 64, stream: true, stream_options: { include_usage: true }, tools: [OPENAI_TOOL],
      tool_choice: { type: 'function', function: { name: 'get_weather' } }, messages: [{ role: 'user', content: ASK }],
    });
    const deltas: OpenAI.ChatCompletionChunk.Choice.Delta.ToolCall[] = [];
    let finish: string | null | undefined;
    let completion = 0;
    for await (const c of stream) {
      deltas.push(...(c.choices[0]?.delta.tool_calls ?? []));
      finish = c.choices[0]?.finish_reason ?? finish;
      completion = c.usage?.completion_tokens ?? completion;
    }
    expect(h.mock.stats().lastBody).toMatchObject({ tool_choice: { type: 'tool', name: 'get_weather' }, stream: true });
    expect(deltas[0]).toMatchObject({ index: 0, type: 'function', function: { name: 'get_weather' } });
    expect(deltas[0]?.id).toMatch(/^toolu_/);
    expect(deltas.length).toBeGreaterThanOrEqual(4);
    expect(deltas.every((d) => d.index === 0)).toBe(true);
    expect(deltas.map((d) => d.function?.arguments ?? '').join('')).toBe(ARGS);
    expect(finish).toBe('tool_calls');
    expect(completion).toBe(3);
  });
});
