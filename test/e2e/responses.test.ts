// The Responses API (POST/GET/DELETE /v1/responses, input_items) through the gateway with
// the real `openai` SDK (responses.create and responses.stream), on a remote OpenAI
// deployment (mock upstream) and an Anthropic one: input as a string and as items,
// instructions, function tools and a tool loop by previous_response_id and by item
// references, the streamed event sequence, storage, logprobs, errors in the OpenAI shape,
// and what it refuses by name. The same on a SQLite store lives in responses-storage.test.ts.

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { type Harness, startHarness } from '../support/harness.js';
import { ANTHROPIC_DEPLOYMENTS } from '../support/anthropic.js';

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ replicas: 1, extraDeployments: (mockUrl) => ANTHROPIC_DEPLOYMENTS(mockUrl) });
});
afterAll(async () => {
  await h.close();
});
beforeEach(() => {
  h.mock.reset();
});

const weather = {
  type: 'function' as const,
  name: 'get_weather',
  description: 'Current weather in a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false },
  strict: true,
};

async function badParam(p: Promise<unknown>): Promise<string | null | undefined> {
  const e = await p.catch((x: unknown) => x);
  expect(e).toBeInstanceOf(OpenAI.APIError);
  return (e as InstanceType<typeof OpenAI.APIError>).param;
}

describe.each(['gpt', 'claude'])('responses.create on %s', (model) => {
  it('answers a string input, with instructions, usage and output_text', async () => {
    const r = await h.client.responses.create({ model, input: 'Say something', instructions: 'Be brief', max_output_tokens: 4, metadata: { k: 'v' } });
    expect(r.object).toBe('response');
    expect(r.id).toMatch(/^resp_/);
    expect(r.status).toBe('incomplete');
    expect(r.incomplete_details).toEqual({ reason: 'max_output_tokens' });
    expect(r.output_text).toBe('The quick brown fox');
    expect(r.output[0]).toMatchObject({ type: 'message', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: 'The quick brown fox', annotations: [] }] });
    expect(r.usage?.output_tokens).toBe(4);
    expect(r.usage?.total_tokens).toBe((r.usage?.input_tokens ?? 0) + 4);
    expect(r).toMatchObject({ model, instructions: 'Be brief', max_output_tokens: 4, metadata: { k: 'v' }, store: true });
    const body = h.mock.stats().lastBody as { messages?: unknown[]; system?: string };
    if (model === 'gpt') expect(body.messages).toEqual([{ role: 'system', content: 'Be brief' }, { role: 'user', content: 'Say something' }]);
    else expect(body.system).toBe('Be brief');
  });

  it('runs a tool loop: function_call out, function_call_output back by previous_response_id', async () => {
    const first = await h.client.responses.create({ model, input: 'What is the weather in Paris?', tools: [weather], tool_choice: 'required' });
    const call = first.output.find((i) => i.type === 'function_call');
    expect(call).toMatchObject({ type: 'function_call', name: 'get_weather', status: 'completed' });
    if (call?.type !== 'function_call') throw new Error('no call');
    expect(JSON.parse(call.arguments)).toEqual({ city: 'Paris' });
    const second = await h.client.responses.create({
      model, previous_response_id: first.id, input: [{ type: 'function_call_output', call_id: call.call_id, output: '21C and sunny' }], max_output_tokens: 3,
    });
    expect(second.output_text).toBe('The quick brown');
    expect(second.previous_response_id).toBe(first.id);
    // The upstream saw the whole conversation: the question, the call and its result.
    const sent = JSON.stringify(h.mock.stats().lastBody);
    expect(sent).toContain('What is the weather in Paris?');
    expect(sent).toContain(call.call_id);
    expect(sent).toContain('21C and sunny');
  });
});

describe('responses.stream', () => {
  it('streams the event sequence with sequence numbers, text deltas and a completed response', async () => {
    const stream = h.client.responses.stream({ model: 'gpt', input: [{ role: 'user', content: [{ type: 'input_text', text: 'hi' }] }], max_output_tokens: 3 });
    const types: string[] = [];
    const seq: number[] = [];
    let text = '';
    for await (const ev of stream) {
      types.push(ev.type);
      seq.push(ev.sequence_number);
      if (ev.type === 'response.output_text.delta') text += ev.delta;
    }
    const final = await stream.finalResponse();
    expect(text).toBe('The quick brown');
    expect(final.output_text).toBe('The quick brown');
    expect(seq).toEqual(seq.map((_, i) => i));
    expect(types[0]).toBe('response.created');
    expect(types[1]).toBe('response.in_progress');
    expect(types.slice(2, 4)).toEqual(['response.output_item.added', 'response.content_part.added']);
    expect(types.slice(-4)).toEqual(['response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.incomplete']);
  });

  it('streams function_call_arguments deltas for a tool call and ends completed', async () => {
    const stream = h.client.responses.stream({ model: 'gpt', input: 'weather?', tools: [weather], tool_choice: { type: 'function', name: 'get_weather' } });
    let args = '';
    const types: string[] = [];
    for await (const ev of stream) {
      types.push(ev.type);
      if (ev.type === 'response.function_call_arguments.delta') args += ev.delta;
    }
    expect(JSON.parse(args)).toEqual({ city: 'Paris' });
    expect(types).toContain('response.function_call_arguments.done');
    expect(types.at(-1)).toBe('response.completed');
    const final = await stream.finalResponse();
    expect(final.output.map((i) => i.type)).toEqual(['function_call']);
    expect(h.mock.stats().lastBody).toMatchObject({ tool_choice: { type: 'function', function: { name: 'get_weather' } } });
  });
});

describe('storage', () => {
  it('GET returns the stored response, input_items lists the input, DELETE removes it', async () => {
    const r = await h.client.responses.create({ model: 'gpt', input: [{ role: 'user', content: 'one' }, { role: 'user', content: 'two' }], max_output_tokens: 2 });
    const got = await h.client.responses.retrieve(r.id);
    expect(got.id).toBe(r.id);
    expect(got.output_text).toBe('The quick');
    const items = await h.client.responses.inputItems.list(r.id, { order: 'asc' });
    expect(items.data.map((i) => (i.type === 'message' ? i.content : undefined))).toEqual([[{ type: 'input_text', text: 'one' }], [{ type: 'input_text', text: 'two' }]]);
    const desc = await h.client.responses.inputItems.list(r.id);
    expect(desc.data.map((i) => i.id)).toEqual(items.data.map((i) => i.id).reverse());
    await h.client.responses.delete(r.id);
    const gone = await h.client.responses.retrieve(r.id).catch((e: unknown) => e);
    expect(gone).toBeInstanceOf(OpenAI.NotFoundError);
  });

  it('store: false keeps nothing; an unknown previous_response_id is a 404 naming it', async () => {
    const r = await h.client.responses.create({ model: 'gpt', input: 'x', max_output_tokens: 1, store: false });
    expect(await h.client.responses.retrieve(r.id).catch((e: unknown) => e)).toBeInstanceOf(OpenAI.NotFoundError);
    const e = await h.client.responses.create({ model: 'gpt', input: 'x', previous_response_id: r.id }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(OpenAI.NotFoundError);
    expect((e as InstanceType<typeof OpenAI.NotFoundError>).param).toBe('previous_response_id');
  });

  it('an item_reference resolves to a stored output item', async () => {
    const first = await h.client.responses.create({ model: 'gpt', input: 'first', max_output_tokens: 2 });
    const msgId = first.output[0]?.id ?? '';
    await h.client.responses.create({ model: 'gpt', input: [{ role: 'user', content: 'first' }, { type: 'item_reference', id: msgId }, { role: 'user', content: 'again' }], max_output_tokens: 1 });
    expect((h.mock.stats().lastBody as { messages: unknown[] }).messages).toEqual([
      { role: 'user', content: 'first' }, { role: 'assistant', content: 'The quick' }, { role: 'user', content: 'again' },
    ]);
    expect(await badParam(h.client.responses.create({ model: 'gpt', input: [{ type: 'item_reference', id: 'msg_nope' }] }))).toBe('input[0].id');
  });
});

describe('logprobs, formats and refusals', () => {
  it('top_logprobs returns logprobs on output_text, streamed and not', async () => {
    const r = await h.client.responses.create({ model: 'gpt', input: 'x', max_output_tokens: 2, top_logprobs: 2, include: ['message.output_text.logprobs'] });
    const part = r.output[0]?.type === 'message' ? r.output[0].content[0] : undefined;
    expect(part?.type === 'output_text' ? part.logprobs?.map((l) => [l.token, l.logprob, l.top_logprobs.length]) : undefined).toEqual([['The', -1 / 16, 2], [' quick', -2 / 16, 2]]);
    const stream = h.client.responses.stream({ model: 'gpt', input: 'x', max_output_tokens: 2, include: ['message.output_text.logprobs'] });
    const tokens: string[] = [];
    for await (const ev of stream) if (ev.type === 'response.output_text.delta') tokens.push(...ev.logprobs.map((l) => l.token));
    expect(tokens).toEqual(['The', ' quick']);
    expect(await badParam(h.client.responses.create({ model: 'claude', input: 'x', top_logprobs: 2 }))).toBe('logprobs');
  });

  it('text.format json_schema goes upstream as response_format', async () => {
    const schema = { type: 'object', properties: { a: { type: 'integer' } }, required: ['a'], additionalProperties: false };
    await h.client.responses.create({ model: 'gpt', input: 'x', max_output_tokens: 2, text: { format: { type: 'json_schema', name: 'answer', schema, strict: true } } });
    expect(h.mock.stats().lastBody).toMatchObject({ response_format: { type: 'json_schema', json_schema: { name: 'answer', schema, strict: true } } });
  });

  it('reasoning.effort goes upstream as reasoning_effort and is echoed; a runtime without it refuses it by name', async () => {
    const r = await h.client.responses.create({ model: 'gpt', input: 'x', max_output_tokens: 2, reasoning: { effort: 'low' } });
    expect(h.mock.stats().lastBody).toMatchObject({ reasoning_effort: 'low' });
    expect(r.reasoning).toEqual({ effort: 'low', summary: null });
    expect(await badParam(h.client.responses.create({ model: 'claude', input: 'x', reasoning: { effort: 'low' } }))).toBe('reasoning_effort');
    expect(await badParam(h.client.responses.create({ model: 'gpt', input: 'x', reasoning: { summary: 'auto' } }))).toBe('reasoning.summary');
  });

  it('refuses what it cannot do by name, in the OpenAI error shape', async () => {
    expect(await badParam(h.client.responses.create({ model: 'gpt', input: 'x', tools: [{ type: 'web_search' }] }))).toBe('tools[0].type');
    expect(await badParam(h.client.responses.create({ model: 'gpt', input: 'x', background: true }))).toBe('background');
    expect(await badParam(h.client.responses.create({ model: 'gpt', input: 'x', truncation: 'auto' }))).toBe('truncation');
    expect(await badParam(h.client.responses.create({ model: 'gpt', input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'http://x', detail: 'auto' }] }] }))).toBe('input[0].content[0].type');
    expect(await badParam(h.client.responses.create({ model: 'gpt', input: 'x', include: ['file_search_call.results'] }))).toBe('include[0]');
    expect(await badParam(h.client.responses.create({ model: 'gpt', input: 'x', max_output_tokens: 0 }))).toBe('max_output_tokens');
    const raw = await fetch(`${h.url}/v1/responses`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'gpt', input: 'x', conversation: 'c1' }) });
    expect(raw.status).toBe(400);
    expect(await raw.json()).toMatchObject({ error: { type: 'invalid_request_error', param: 'conversation' } });
    expect(h.mock.stats().requests).toBe(0);
    const nf = await h.client.responses.create({ model: 'nope', input: 'x' }).catch((e: unknown) => e);
    expect(nf).toBeInstanceOf(OpenAI.NotFoundError);
  });
});
