// OpenAI wire conformance against a mock-backed remote deployment: the raw SSE
// bytes (framing, chunk fields, role and finish_reason per choice, usage only when
// asked, [DONE] last, nothing after an error event), n, stop, max_tokens vs
// max_completion_tokens, tool-call deltas, response_format passed upstream,
// logprobs passed through, and what the real `openai` SDK sees of errors, retry-after and
// x-request-id. The local engine's side lives in conformance-local.test.ts.

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { type Harness, startHarness } from '../support/harness.js';
import { ANTHROPIC_DEPLOYMENTS } from '../support/anthropic.js';
import { checkOpenAIStream, expectEnvelope, rawStream } from '../support/sse.js';

let h: Harness;

beforeAll(async () => {
  // No retries and a breaker that never opens: each injected fault reaches the client as it is.
  h = await startHarness({
    replicas: 1,
    gpt: { remote: { maxRetries: 0, breaker: { failureThreshold: 1000 } }, onCapacityExhausted: 'reject' },
    // A deployment (and upstream model) per fault that carries retry-after: the gateway then holds
    // that (provider, key, model) off, so each gets its own and the others keep serving.
    extraDeployments: (mockUrl) => [
      ...ANTHROPIC_DEPLOYMENTS(mockUrl),
      ...['gpt-429', 'gpt-503', 'gpt-429-stream'].map((name) => ({ name, runtime: 'openai', endpoint: mockUrl, model: name, replicas: 1, remote: { maxRetries: 0, breaker: { failureThreshold: 1000 } }, onCapacityExhausted: 'reject' })),
    ],
  });
});
afterAll(async () => {
  await h.close();
});
beforeEach(() => {
  h.mock.reset();
});

const MSG = [{ role: 'user' as const, content: 'Say something' }];
const chatUrl = (): string => `${h.url}/v1/chat/completions`;

describe('SSE framing and chunk fields', () => {
  it('a chat stream without include_usage: role first, one finish_reason, no usage chunk, [DONE] last', async () => {
    const s = await rawStream(chatUrl(), { model: 'gpt', messages: MSG, max_tokens: 5, stream: true }, { 'x-request-id': 'conf-1' });
    expect(s.requestId).toBe('conf-1');
    const sum = checkOpenAIStream(s, { kind: 'chat', n: 1, includeUsage: false, model: 'gpt' });
    expect(sum.text.get(0)).toBe('The quick brown fox jumps');
    expect(sum.finish.get(0)).toBe('length');
    expect(sum.usage).toBeUndefined();
  });

  it('include_usage adds one final chunk with empty choices and the counts', async () => {
    const s = await rawStream(chatUrl(), { model: 'gpt', messages: MSG, max_tokens: 4, stream: true, stream_options: { include_usage: true } });
    const sum = checkOpenAIStream(s, { kind: 'chat', n: 1, includeUsage: true, model: 'gpt' });
    expect(sum.usage?.completion_tokens).toBe(4);
    expect(sum.chunks.at(-1)?.choices).toEqual([]);
  });

  it('n choices each get their own role, text and finish_reason', async () => {
    const s = await rawStream(chatUrl(), { model: 'gpt', messages: MSG, max_tokens: 3, n: 3, stream: true, stream_options: { include_usage: true } });
    const sum = checkOpenAIStream(s, { kind: 'chat', n: 3, includeUsage: true, model: 'gpt' });
    expect([...sum.text.values()]).toEqual(['The quick brown', 'The quick brown', 'The quick brown']);
    expect(sum.usage?.completion_tokens).toBe(9);
    const nonStream = await h.client.chat.completions.create({ model: 'gpt', messages: MSG, max_tokens: 2, n: 2 });
    expect(nonStream.choices.map((c) => c.index)).toEqual([0, 1]);
    expect(h.mock.stats().lastBody).toMatchObject({ n: 2 });
  });

  it('a text completion stream uses object text_completion and cmpl- ids', async () => {
    const s = await rawStream(`${h.url}/v1/completions`, { model: 'gpt', prompt: 'Once', max_tokens: 3, stream: true, stream_options: { include_usage: true } });
    const sum = checkOpenAIStream(s, { kind: 'completion', n: 1, includeUsage: true, model: 'gpt' });
    expect(sum.text.get(0)).toBe('The quick brown');
  });

  it('non-streamed answers carry id, object, integer created, model, index and usage', async () => {
    const { data, response, request_id: requestId } = await h.client.chat.completions.create({ model: 'gpt', messages: MSG, max_tokens: 2 }).withResponse();
    expect(data.id).toMatch(/^chatcmpl-/);
    expect(data.object).toBe('chat.completion');
    expect(Number.isInteger(data.created)).toBe(true);
    expect(data.model).toBe('gpt');
    expect(data.choices[0]).toMatchObject({ index: 0, message: { role: 'assistant', content: 'The quick' }, logprobs: null, finish_reason: 'length' });
    expect(data.usage?.total_tokens).toBe((data.usage?.prompt_tokens ?? 0) + 2);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(requestId).toBe(response.headers.get('x-request-id'));
    expect(requestId).toMatch(/^req_/);
  });

  it('an error after the first byte is the final event: no [DONE], nothing after it', async () => {
    h.mock.setScript([{ disconnectAfterChunks: 3 }]);
    const s = await rawStream(chatUrl(), { model: 'gpt', messages: MSG, max_tokens: 8, stream: true });
    expect(s.status).toBe(200);
    const last = JSON.parse(s.data.at(-1) ?? '') as unknown;
    expectEnvelope(last);
    expect(s.data).not.toContain('[DONE]');
    // Everything before the error is an ordinary chunk.
    for (const d of s.data.slice(0, -1)) expect((JSON.parse(d) as { object: string }).object).toBe('chat.completion.chunk');
    expect(s.data.filter((d) => d.includes('"error"'))).toHaveLength(1);
  });
});

describe('sampling parameters reach the engine', () => {
  it('max_completion_tokens is honoured, and wins over max_tokens', async () => {
    const a = await h.client.chat.completions.create({ model: 'gpt', messages: MSG, max_completion_tokens: 3 });
    expect(a.choices[0]?.message.content).toBe('The quick brown');
    expect(a.usage?.completion_tokens).toBe(3);
    expect(a.choices[0]?.finish_reason).toBe('length');
    const b = await h.client.chat.completions.create({ model: 'gpt', messages: MSG, max_completion_tokens: 2, max_tokens: 6 });
    expect(b.usage?.completion_tokens).toBe(2);
    const c = await h.client.completions.create({ model: 'gpt', prompt: 'x', max_tokens: 4 });
    expect(c.usage?.completion_tokens).toBe(4);
  });

  it('stop as a string and as an array', async () => {
    const a = await h.client.chat.completions.create({ model: 'gpt', messages: MSG, max_tokens: 8, stop: 'fox' });
    expect(a.choices[0]?.finish_reason).toBe('stop');
    expect(a.choices[0]?.message.content).not.toContain('fox');
    expect('The quick brown fox'.startsWith(a.choices[0]?.message.content ?? 'x')).toBe(true);
    expect(h.mock.stats().lastBody).toMatchObject({ stop: ['fox'] });
    const b = await h.client.chat.completions.create({ model: 'gpt', messages: MSG, max_tokens: 8, stop: ['lazy', 'brown'] });
    expect(b.choices[0]?.finish_reason).toBe('stop');
    expect(b.choices[0]?.message.content).not.toContain('brown');
    expect(h.mock.stats().lastBody).toMatchObject({ stop: ['lazy', 'brown'] });
  });

  it('more than four stop sequences is a 400 naming stop', async () => {
    const err = await h.client.chat.completions.create({ model: 'gpt', messages: MSG, stop: ['a', 'b', 'c', 'd', 'e'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('stop');
  });
});

describe('tool calls', () => {
  const tools = [{ type: 'function' as const, function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];

  it('streams tool-call deltas: id, type and name once, then arguments pieces, finish tool_calls', async () => {
    const s = await rawStream(chatUrl(), { model: 'gpt', messages: [{ role: 'user', content: 'weather?' }], tools, tool_choice: 'required', stream: true });
    const sum = checkOpenAIStream(s, { kind: 'chat', n: 1, includeUsage: false, model: 'gpt' });
    expect(sum.finish.get(0)).toBe('tool_calls');
    const deltas = sum.chunks.flatMap((c) => c.choices.flatMap((ch) => ch.delta?.tool_calls ?? []));
    expect(deltas.length).toBeGreaterThan(1);
    const [head, ...rest] = deltas;
    expect(head).toMatchObject({ index: 0, type: 'function', function: { name: 'get_weather' } });
    expect(head?.id).toMatch(/./);
    for (const d of rest) {
      expect(d.index).toBe(0);
      expect(d.id).toBeUndefined();
      expect(d.function.name).toBeUndefined();
    }
    expect(JSON.parse(deltas.map((d) => d.function.arguments).join(''))).toEqual({ city: 'Paris' });
  });

  it('the SDK assembles the same call from the stream and from a plain answer', async () => {
    const stream = h.client.chat.completions.stream({ model: 'gpt', messages: [{ role: 'user', content: 'weather?' }], tools, tool_choice: 'required' });
    const final = await stream.finalChatCompletion();
    const call = final.choices[0]?.message.tool_calls?.[0];
    expect(call?.type === 'function' ? JSON.parse(call.function.arguments) : undefined).toEqual({ city: 'Paris' });
    const plain = await h.client.chat.completions.create({ model: 'gpt', messages: [{ role: 'user', content: 'weather?' }], tools, tool_choice: 'required' });
    expect(plain.choices[0]?.finish_reason).toBe('tool_calls');
    expect(plain.choices[0]?.message.content).toBeNull();
  });
});

describe('response_format and logprobs', () => {
  const format = { type: 'json_schema' as const, json_schema: { name: 'answer', strict: true, schema: { type: 'object', properties: { a: { type: 'integer' } }, required: ['a'] } } };

  it('json_schema and json_object are passed to a remote OpenAI deployment verbatim', async () => {
    await h.client.chat.completions.create({ model: 'gpt', messages: MSG, max_tokens: 2, response_format: format });
    expect(h.mock.stats().lastBody).toMatchObject({ response_format: format });
    await h.client.chat.completions.create({ model: 'gpt', messages: MSG, max_tokens: 2, response_format: { type: 'json_object' } });
    expect(h.mock.stats().lastBody).toMatchObject({ response_format: { type: 'json_object' } });
  });

  it('a malformed response_format is a 400 naming the field; Anthropic deployments refuse it', async () => {
    const bad = async (body: Record<string, unknown>): Promise<string | null> => {
      const res = await fetch(chatUrl(), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'gpt', messages: MSG, ...body }) });
      expect(res.status).toBe(400);
      return expectEnvelope(await res.json()).error.param;
    };
    expect(await bad({ response_format: { type: 'yaml' } })).toBe('response_format.type');
    expect(await bad({ response_format: { type: 'json_schema' } })).toBe('response_format.json_schema');
    expect(await bad({ response_format: { type: 'json_schema', json_schema: { schema: {} } } })).toBe('response_format.json_schema.name');
    expect(await bad({ model: 'claude', response_format: format })).toBe('response_format');
    expect(h.mock.stats().requests).toBe(0);
  });

  it('logprobs, top_logprobs, logit_bias and parallel_tool_calls pass through, and the upstream logprobs come back', async () => {
    const r = await h.client.chat.completions.create({ model: 'gpt', messages: MSG, max_tokens: 2, logprobs: true, top_logprobs: 2, logit_bias: { 50256: -100 }, parallel_tool_calls: false });
    expect(h.mock.stats().lastBody).toMatchObject({ logprobs: true, top_logprobs: 2, logit_bias: { 50256: -100 }, parallel_tool_calls: false });
    expect(r.choices[0]?.logprobs?.content?.map((e) => [e.token, e.logprob, e.bytes, e.top_logprobs.length])).toEqual([
      ['The', -1 / 16, [84, 104, 101], 2], [' quick', -2 / 16, [32, 113, 117, 105, 99, 107], 2],
    ]);
    expect(r.choices[0]?.logprobs?.content?.[1]?.top_logprobs[1]).toEqual({ token: ' brown', logprob: -2 / 16 - 1, bytes: [32, 98, 114, 111, 119, 110] });
    const stream = await h.client.chat.completions.create({ model: 'gpt', messages: MSG, max_tokens: 3, logprobs: true, top_logprobs: 1, stream: true });
    const tokens: string[] = [];
    for await (const c of stream) for (const e of c.choices[0]?.logprobs?.content ?? []) tokens.push(`${e.token}:${e.top_logprobs.length}`);
    expect(tokens).toEqual(['The:1', ' quick:1', ' brown:1']);
    const legacy = await h.client.completions.create({ model: 'gpt', prompt: 'x', max_tokens: 2, logprobs: 1 });
    expect(h.mock.stats().lastBody).toMatchObject({ logprobs: 1 });
    expect(legacy.choices[0]?.logprobs).toEqual({ tokens: ['The', ' quick'], token_logprobs: [-1 / 16, -2 / 16], top_logprobs: [{ The: -1 / 16 }, { ' quick': -2 / 16 }], text_offset: [0, 3] });
    const legacyStream = await h.client.completions.create({ model: 'gpt', prompt: 'x', max_tokens: 2, logprobs: 0, stream: true });
    const offsets: number[] = [];
    for await (const c of legacyStream) offsets.push(...(c.choices[0]?.logprobs?.text_offset ?? []));
    expect(offsets).toEqual([0, 3]);
    const off = await h.client.chat.completions.create({ model: 'gpt', messages: MSG, max_tokens: 1, logprobs: false });
    expect(off.choices[0]?.logprobs).toBeNull();
  });

  it('logprobs and logit_bias: malformed ones are a 400 naming them; Anthropic deployments refuse them by name', async () => {
    const param = async (p: Promise<unknown>): Promise<string | null | undefined> => {
      const e = await p.catch((x: unknown) => x);
      expect(e).toBeInstanceOf(OpenAI.BadRequestError);
      return (e as InstanceType<typeof OpenAI.BadRequestError>).param;
    };
    expect(await param(h.client.chat.completions.create({ model: 'gpt', messages: MSG, top_logprobs: 2 }))).toBe('top_logprobs');
    expect(await param(h.client.chat.completions.create({ model: 'gpt', messages: MSG, logit_bias: { 5: 101 } }))).toBe('logit_bias.5');
    expect(await param(h.client.chat.completions.create({ model: 'claude', messages: MSG, logprobs: true }))).toBe('logprobs');
    expect(await param(h.client.chat.completions.create({ model: 'claude', messages: MSG, logit_bias: { 5: 1 } }))).toBe('logit_bias');
    expect(await param(h.client.chat.completions.create({ model: 'claude', messages: MSG, seed: 3 }))).toBe('seed');
    expect(h.mock.stats().requests).toBe(0);
  });
});

describe('errors as the SDK sees them', () => {
  it('statuses map to the SDK error classes with type, code, param and request id', async () => {
    const nf = await h.client.chat.completions.create({ model: 'nope', messages: MSG }).catch((e: unknown) => e);
    expect(nf).toBeInstanceOf(OpenAI.NotFoundError);
    const e = nf as InstanceType<typeof OpenAI.NotFoundError>;
    expect(e.code).toBe('model_not_found');
    expect(e.type).toBe('invalid_request_error');
    expect(e.param).toBe('model');
    expect(e.requestID).toMatch(/^req_/);
    const bad = await h.client.chat.completions.create({ model: 'gpt', messages: MSG, temperature: 9 }).catch((x: unknown) => x);
    expect(bad).toBeInstanceOf(OpenAI.BadRequestError);
    expect((bad as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('temperature');
  });

  it('an upstream 429 is a 429 with retry-after; 500 a 502; 503 a 502 upstream_error with retry-after', async () => {
    h.mock.setScript([{ status: 429, retryAfterSeconds: 7 }]);
    const rl = await h.client.chat.completions.create({ model: 'gpt-429', messages: MSG }).catch((e: unknown) => e);
    expect(rl).toBeInstanceOf(OpenAI.RateLimitError);
    const r = rl as InstanceType<typeof OpenAI.RateLimitError>;
    expect(r.headers.get('retry-after')).toBe('7');
    expect(r.code).toBe('rate_limit_exceeded');
    expect(r.headers.get('x-request-id')).toBe(r.requestID);
    h.mock.setScript([{ status: 500 }]);
    const up = await h.client.chat.completions.create({ model: 'gpt', messages: MSG }).catch((e: unknown) => e);
    expect((up as InstanceType<typeof OpenAI.APIError>).status).toBe(502);
    expect((up as InstanceType<typeof OpenAI.APIError>).code).toBe('upstream_error');
    h.mock.setScript([{ status: 503, retryAfterSeconds: 2 }]);
    const ov = await h.client.chat.completions.create({ model: 'gpt-503', messages: MSG }).catch((e: unknown) => e);
    expect((ov as InstanceType<typeof OpenAI.APIError>).status).toBe(502);
    expect((ov as InstanceType<typeof OpenAI.APIError>).code).toBe('upstream_error');
    expect((ov as InstanceType<typeof OpenAI.APIError>).headers?.get('retry-after')).toBe('2');
  });

  it("an upstream 400 keeps the field it blames as param: OpenAI's error.param, the field path heading Anthropic's message", async () => {
    h.mock.setScript([{ errorParam: 'temperature', errorMessage: 'temperature is out of range for this model' }]);
    const o = await h.client.chat.completions.create({ model: 'gpt', messages: MSG }).catch((e: unknown) => e);
    expect(o).toBeInstanceOf(OpenAI.BadRequestError);
    expect(o).toMatchObject({ status: 400, param: 'temperature', type: 'invalid_request_error', message: '400 temperature is out of range for this model' });
    h.mock.setScript([{ errorMessage: 'messages.0.content: Field required' }]);
    const a = await h.client.chat.completions.create({ model: 'claude-strict', messages: MSG }).catch((e: unknown) => e);
    expect(a).toBeInstanceOf(OpenAI.BadRequestError);
    expect(a).toMatchObject({ status: 400, param: 'messages.0.content' });
    // Before the first byte of a stream it is a plain HTTP error, param included.
    h.mock.setScript([{ errorParam: 'top_p', errorMessage: 'top_p is not supported with this model' }]);
    const s = await rawStream(chatUrl(), { model: 'gpt', messages: MSG, stream: true });
    expect(s.status).toBe(400);
    expect(expectEnvelope(JSON.parse(s.data[0] ?? '')).error).toMatchObject({ type: 'invalid_request_error', param: 'top_p' });
  });

  it('a failure before the first byte of a stream is a plain HTTP error, not an SSE event', async () => {
    h.mock.setScript([{ status: 429, retryAfterSeconds: 1 }]);
    const s = await rawStream(chatUrl(), { model: 'gpt-429-stream', messages: MSG, stream: true });
    expect(s.status).toBe(429);
    expect(s.contentType).toMatch(/^application\/json/);
    expect(expectEnvelope(JSON.parse(s.data[0] ?? '')).error.type).toBe('rate_limit_error');
  });

  it('every response carries x-request-id, echoed when the client sends a sane one', async () => {
    const { response } = await h.client.chat.completions.create({ model: 'gpt', messages: MSG, max_tokens: 1 }, { headers: { 'x-request-id': 'trace-77' } }).withResponse();
    expect(response.headers.get('x-request-id')).toBe('trace-77');
    const models = await fetch(`${h.url}/v1/models`);
    expect(models.headers.get('x-request-id')).toMatch(/^req_/);
  });
});
