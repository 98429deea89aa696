// OpenAI endpoints over real HTTP against an ephemeral-port mock: wire shapes, streaming
// layout, usage, n / max_tokens / stop, tool calls, embeddings, models, auth, bad input.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseOpenAiStream, startMockUpstream, type MockUpstream } from './index.js';

let mock: MockUpstream;
beforeAll(async () => {
  mock = await startMockUpstream();
});
afterAll(async () => {
  await mock.close();
});
afterEach(() => {
  mock.reset();
  mock.setApiKey(undefined);
});

function post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${mock.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

const messages = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Say something nice' },
];

interface Chunk {
  id: string;
  object: string;
  model: string;
  created: number;
  choices: { index: number; delta: { role?: string; content?: string | null; tool_calls?: unknown }; finish_reason: string | null }[];
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | null;
}

async function stream(path: string, body: unknown): Promise<{ chunks: Chunk[]; done: boolean; response: Response }> {
  const response = await post(path, body);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const parsed = parseOpenAiStream(await response.text());
  return { chunks: parsed.chunks as Chunk[], done: parsed.done, response };
}

describe('POST /v1/chat/completions', () => {
  it('answers non-streamed with the deterministic sentence and exact usage', async () => {
    const response = await post('/chat/completions', { model: 'gpt-test', messages, max_tokens: 5 });
    expect(response.status).toBe(200);
    expect(response.headers.get('x-request-id')).toMatch(/^req_/);
    const body = JSON.parse(await response.text());
    expect(body.id).toMatch(/^chatcmpl-/);
    expect(body.object).toBe('chat.completion');
    expect(body.model).toBe('gpt-test');
    expect(typeof body.created).toBe('number');
    expect(body.choices).toHaveLength(1);
    expect(body.choices[0].message).toMatchObject({ role: 'assistant', content: 'The quick brown fox jumps' });
    expect(body.choices[0].finish_reason).toBe('length');
    expect(body.usage).toMatchObject({ prompt_tokens: 6, completion_tokens: 5, total_tokens: 11 });
  });

  it('defaults to 16 words ending with finish_reason stop', async () => {
    const body = JSON.parse(await (await post('/chat/completions', { model: 'm', messages })).text());
    expect(body.choices[0].finish_reason).toBe('stop');
    expect(body.choices[0].message.content.split(' ')).toHaveLength(16);
    expect(body.choices[0].message.content).toMatch(/^The quick brown fox jumps over the lazy dog\. The quick/);
  });

  it('honours max_completion_tokens over max_tokens, n, and stop', async () => {
    const body = JSON.parse(await (await post('/chat/completions', { model: 'm', messages, max_tokens: 50, max_completion_tokens: 9, n: 3 })).text());
    expect(body.choices.map((c: { index: number }) => c.index)).toEqual([0, 1, 2]);
    expect(body.choices[2].message.content).toBe('The quick brown fox jumps over the lazy dog.');
    expect(body.usage.completion_tokens).toBe(27);

    const stopped = JSON.parse(await (await post('/chat/completions', { model: 'm', messages, max_tokens: 50, stop: ['fox', 'lazy'] })).text());
    expect(stopped.choices[0].message.content).toBe('The quick brown ');
    expect(stopped.choices[0].finish_reason).toBe('stop');
    expect(stopped.usage.completion_tokens).toBe(4);
  });

  it('streams one chunk per word, role first, one finish_reason, [DONE], no usage unless asked', async () => {
    const { chunks, done } = await stream('/chat/completions', { model: 'gpt-test', messages, stream: true, max_tokens: 4 });
    expect(done).toBe(true);
    expect(chunks.every((c) => c.object === 'chat.completion.chunk' && c.model === 'gpt-test' && c.id === chunks[0]?.id)).toBe(true);
    expect(chunks[0]?.id).toMatch(/^chatcmpl-/);
    expect(chunks[0]?.choices[0]?.delta).toMatchObject({ role: 'assistant' });
    expect(chunks.slice(1).some((c) => 'role' in (c.choices[0]?.delta ?? {}))).toBe(false);
    const content = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    expect(content).toBe('The quick brown fox');
    expect(chunks.filter((c) => typeof c.choices[0]?.delta.content === 'string' && c.choices[0].delta.content !== '')).toHaveLength(4);
    const finishes = chunks.flatMap((c) => c.choices.map((x) => x.finish_reason)).filter((f) => f !== null);
    expect(finishes).toEqual(['length']);
    expect(chunks.some((c) => c.usage !== undefined)).toBe(false);
  });

  it('adds a final usage chunk with empty choices when include_usage is set', async () => {
    const { chunks, done } = await stream('/chat/completions', {
      model: 'm',
      messages,
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 3,
    });
    expect(done).toBe(true);
    const last = chunks[chunks.length - 1];
    expect(last?.choices).toEqual([]);
    expect(last?.usage).toMatchObject({ prompt_tokens: 6, completion_tokens: 3, total_tokens: 9 });
    expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true);
  });

  it('streams n choices with one role delta and one finish_reason each', async () => {
    const { chunks } = await stream('/chat/completions', { model: 'm', messages, stream: true, n: 2, max_tokens: 2 });
    for (const index of [0, 1]) {
      const mine = chunks.flatMap((c) => c.choices.filter((x) => x.index === index));
      expect(mine.filter((x) => x.delta.role === 'assistant')).toHaveLength(1);
      expect(mine.filter((x) => x.finish_reason !== null)).toHaveLength(1);
      expect(mine.map((x) => x.delta.content ?? '').join('')).toBe('The quick');
    }
  });

  const tools = [
    {
      type: 'function',
      function: {
        name: 'get_weather',
        parameters: { type: 'object', properties: { location: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } } },
      },
    },
    { type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: { q: { type: 'string' } } } } },
  ];

  it('answers a weather question with a tool call (non-streamed)', async () => {
    const body = JSON.parse(
      await (await post('/chat/completions', { model: 'm', messages: [{ role: 'user', content: "What's the weather in Paris?" }], tools })).text(),
    );
    const choice = body.choices[0];
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.content).toBeNull();
    expect(choice.message.tool_calls[0]).toMatchObject({ type: 'function', function: { name: 'get_weather' } });
    expect(choice.message.tool_calls[0].id).toMatch(/^call_/);
    expect(JSON.parse(choice.message.tool_calls[0].function.arguments)).toEqual({ location: 'Paris', unit: 'celsius' });
  });

  it('answers in text once the tool result follows the question (a tool loop ends)', async () => {
    const messages = [
      { role: 'user', content: "What's the weather in Paris?" },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: '21C' },
    ];
    const body = JSON.parse(await (await post('/chat/completions', { model: 'm', messages, tools, max_tokens: 2 })).text());
    expect(body.choices[0].finish_reason).toBe('length');
    expect(body.choices[0].message.content).toBe('The quick');
  });

  it('streams forced tool-call arguments in several pieces', async () => {
    const { chunks, done } = await stream('/chat/completions', {
      model: 'm',
      messages: [{ role: 'user', content: 'hello' }],
      tools,
      tool_choice: { type: 'function', function: { name: 'lookup' } },
      stream: true,
    });
    expect(done).toBe(true);
    const first = chunks[0]?.choices[0]?.delta as { role: string; tool_calls: { id: string; function: { name: string } }[] };
    expect(first.role).toBe('assistant');
    expect(first.tool_calls[0]?.function.name).toBe('lookup');
    const pieces = chunks
      .slice(1)
      .map((c) => (c.choices[0]?.delta.tool_calls as { function: { arguments: string } }[] | undefined)?.[0]?.function.arguments)
      .filter((p): p is string => p !== undefined);
    expect(pieces.length).toBeGreaterThan(1);
    expect(JSON.parse(pieces.join(''))).toEqual({ q: 'mock' });
    expect(chunks.flatMap((c) => c.choices.map((x) => x.finish_reason)).filter((f) => f !== null)).toEqual(['tool_calls']);
  });

  it('answers with text when tools are offered but not needed', async () => {
    const body = JSON.parse(await (await post('/chat/completions', { model: 'm', messages, tools, max_tokens: 2 })).text());
    expect(body.choices[0].message.content).toBe('The quick');
    expect(body.choices[0].finish_reason).toBe('length');
  });

  it('rejects bad JSON and missing fields with a 400 in the OpenAI envelope', async () => {
    const bad = await post('/chat/completions', '{"model":');
    expect(bad.status).toBe(400);
    const body = JSON.parse(await bad.text());
    expect(body.error).toMatchObject({ type: 'invalid_request_error', param: null, code: null });
    expect(typeof body.error.message).toBe('string');

    const missing = await post('/chat/completions', { model: 'm' });
    expect(missing.status).toBe(400);
    expect((JSON.parse(await missing.text())).error.param).toBe('messages');
  });

  it('answers unknown paths with 404', async () => {
    const response = await post('/nope', {});
    expect(response.status).toBe(404);
    expect((JSON.parse(await response.text())).error.type).toBe('invalid_request_error');
    expect((await fetch(`${mock.url}/chat/completions`)).status).toBe(404);
  });
});

describe('POST /v1/completions', () => {
  it('answers non-streamed', async () => {
    const body = JSON.parse(await (await post('/completions', { model: 'davinci', prompt: 'Once upon a time', max_tokens: 3 })).text());
    expect(body.id).toMatch(/^cmpl-/);
    expect(body.object).toBe('text_completion');
    expect(body.choices[0]).toMatchObject({ text: 'The quick brown', index: 0, finish_reason: 'length' });
    expect(body.usage).toMatchObject({ prompt_tokens: 4, completion_tokens: 3 });
  });

  it('streams one text chunk per word then a finish chunk and [DONE]', async () => {
    const { chunks, done } = await stream('/completions', { model: 'davinci', prompt: 'x', max_tokens: 3, stream: true });
    expect(done).toBe(true);
    const choices = chunks.flatMap((c) => c.choices) as unknown as { text: string; finish_reason: string | null }[];
    expect(choices.map((c) => c.text)).toEqual(['The', ' quick', ' brown', '']);
    expect(choices.map((c) => c.finish_reason)).toEqual([null, null, null, 'length']);
  });
});

describe('POST /v1/embeddings', () => {
  it('returns deterministic 8-float unit vectors per input, with usage', async () => {
    const body = JSON.parse(await (await post('/embeddings', { model: 'emb', input: ['hello world', 'other text here', 'hello world'] })).text());
    expect(body.object).toBe('list');
    expect(body.model).toBe('emb');
    expect(body.data).toHaveLength(3);
    const [a, b, c] = body.data.map((d: { embedding: number[] }) => d.embedding) as number[][];
    expect(a).toHaveLength(8);
    expect(a).toEqual(c);
    expect(a).not.toEqual(b);
    expect(Math.hypot(...(a ?? []))).toBeCloseTo(1, 5);
    expect(body.usage).toEqual({ prompt_tokens: 7, total_tokens: 7 });
  });

  it('encodes base64 as little-endian float32 of the same vector', async () => {
    const floats = JSON.parse(await (await post('/embeddings', { model: 'e', input: 'abc' })).text());
    const encoded = JSON.parse(await (await post('/embeddings', { model: 'e', input: 'abc', encoding_format: 'base64' })).text());
    const bytes = Buffer.from(encoded.data[0].embedding as string, 'base64');
    const decoded = Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4));
    expect(decoded).toEqual(floats.data[0].embedding);
  });
});

describe('GET /v1/models', () => {
  it('lists models in the OpenAI shape', async () => {
    const body = JSON.parse(await (await fetch(`${mock.url}/models`)).text());
    expect(body.object).toBe('list');
    expect(body.data[0]).toMatchObject({ id: 'mock-model', object: 'model', owned_by: 'mock-upstream' });
    const one = await fetch(`${mock.url}/models/gpt-4o-mini`);
    expect((JSON.parse(await one.text())).id).toBe('gpt-4o-mini');
    expect((await fetch(`${mock.url}/models/unknown`)).status).toBe(404);
  });
});

describe('auth', () => {
  it('requires the bearer key when one is set, and accepts a rotated key at once', async () => {
    mock.setApiKey('sk-one');
    const none = await post('/chat/completions', { model: 'm', messages });
    expect(none.status).toBe(401);
    expect((JSON.parse(await none.text())).error.type).toBe('invalid_request_error');

    const wrong = await post('/chat/completions', { model: 'm', messages }, { authorization: 'Bearer sk-two' });
    expect(wrong.status).toBe(401);
    const wrongBody = JSON.parse(await wrong.text());
    expect(wrongBody.error.code).toBe('invalid_api_key');
    expect(JSON.stringify(wrongBody)).not.toContain('sk-two');

    expect((await post('/chat/completions', { model: 'm', messages }, { authorization: 'Bearer sk-one' })).status).toBe(200);
    expect(mock.stats().lastHeaders.authorization).toBe('Bearer sk-one');

    mock.setApiKey('sk-two');
    expect((await post('/chat/completions', { model: 'm', messages }, { authorization: 'Bearer sk-one' })).status).toBe(401);
    expect((await post('/chat/completions', { model: 'm', messages }, { authorization: 'Bearer sk-two' })).status).toBe(200);
  });

  it('does not consume the script on a rejected request', async () => {
    mock.setApiKey('k');
    mock.setScript([{ status: 500 }]);
    expect((await post('/chat/completions', { model: 'm', messages })).status).toBe(401);
    expect(mock.scriptRemaining()).toBe(1);
    expect((await post('/chat/completions', { model: 'm', messages }, { authorization: 'Bearer k' })).status).toBe(500);
    expect(mock.scriptRemaining()).toBe(0);
  });
});
