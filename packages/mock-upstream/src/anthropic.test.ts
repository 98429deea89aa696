// Anthropic Messages API over real HTTP: response shape, the exact stream event sequence,
// tool_use streaming, stop reasons, error envelope, x-api-key auth.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseSse, startMockUpstream, type MockUpstream } from './index.js';

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

function post(body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${mock.url}/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

interface StreamEvent {
  type: string;
  index?: number;
  message?: unknown;
  content_block?: { type: string; id?: string; name?: string; text?: string; input?: unknown };
  delta?: { type?: string; text?: string; partial_json?: string; stop_reason?: string; stop_sequence?: string | null };
  usage?: { output_tokens: number };
}

const base = { model: 'claude-test', system: 'Be brief please', messages: [{ role: 'user', content: [{ type: 'text', text: 'Hello there' }] }] };

describe('POST /v1/messages', () => {
  it('answers non-streamed in the Messages shape', async () => {
    const response = await post({ ...base, max_tokens: 4 });
    expect(response.status).toBe(200);
    expect(response.headers.get('request-id')).toMatch(/^req_/);
    const body = JSON.parse(await response.text());
    expect(body).toMatchObject({
      type: 'message',
      role: 'assistant',
      model: 'claude-test',
      content: [{ type: 'text', text: 'The quick brown fox' }],
      stop_reason: 'max_tokens',
      stop_sequence: null,
      usage: { input_tokens: 5, output_tokens: 4 },
    });
    expect(body.id).toMatch(/^msg_/);
  });

  it('reports stop_sequence and end_turn', async () => {
    const stopped = JSON.parse(await (await post({ ...base, max_tokens: 20, stop_sequences: ['lazy'] })).text());
    expect(stopped).toMatchObject({ stop_reason: 'stop_sequence', stop_sequence: 'lazy', content: [{ text: 'The quick brown fox jumps over the ' }] });
    const short = JSON.parse(await (await post({ ...base, max_tokens: 20 }, { 'x-mock-behavior': '{"tokens":2}' })).text());
    expect(short).toMatchObject({ stop_reason: 'end_turn', content: [{ text: 'The quick' }], usage: { output_tokens: 2 } });
  });

  it('streams the real event sequence', async () => {
    const response = await post({ ...base, max_tokens: 3, stream: true });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = parseSse(await response.text());
    expect(events.map((e) => e.event)).toEqual([
      'message_start',
      'content_block_start',
      'ping',
      'content_block_delta',
      'content_block_delta',
      'content_block_delta',
      'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
    const data = events.map((e) => JSON.parse(e.data) as StreamEvent);
    for (const [i, e] of events.entries()) expect(data[i]?.type).toBe(e.event);
    expect(data[0]?.message).toMatchObject({ role: 'assistant', model: 'claude-test', content: [], usage: { input_tokens: 5 } });
    expect(data[1]?.content_block).toEqual({ type: 'text', text: '' });
    expect(data.slice(3, 6).map((d) => d.delta?.type)).toEqual(['text_delta', 'text_delta', 'text_delta']);
    expect(data.slice(3, 6).map((d) => d.delta?.text ?? '').join('')).toBe('The quick brown');
    expect(data[7]).toMatchObject({ delta: { stop_reason: 'max_tokens', stop_sequence: null }, usage: { output_tokens: 3 } });
  });

  it('streams a tool_use block with input_json_delta pieces', async () => {
    const response = await post({
      model: 'claude-test',
      max_tokens: 100,
      stream: true,
      messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
      tools: [{ name: 'get_weather', input_schema: { type: 'object', properties: { location: { type: 'string' } } } }],
    });
    const data = parseSse(await response.text()).map((e) => JSON.parse(e.data) as StreamEvent);
    expect(data[1]?.content_block).toMatchObject({ type: 'tool_use', name: 'get_weather', input: {} });
    expect(data[1]?.content_block?.id).toMatch(/^toolu_/);
    const pieces = data.filter((d) => d.type === 'content_block_delta').map((d) => d.delta ?? {});
    expect(pieces.length).toBeGreaterThan(1);
    expect(pieces.every((p) => p.type === 'input_json_delta')).toBe(true);
    expect(JSON.parse(pieces.map((p) => p.partial_json ?? '').join(''))).toEqual({ location: 'Paris' });
    expect(data.find((d) => d.type === 'message_delta')?.delta?.stop_reason).toBe('tool_use');
  });

  it('answers a forced tool non-streamed with a tool_use content block', async () => {
    const response = await post({
      ...base,
      max_tokens: 10,
      tools: [{ name: 'search', input_schema: { type: 'object', properties: { n: { type: 'integer' } } } }],
      tool_choice: { type: 'any' },
    });
    const body = JSON.parse(await response.text());
    expect(body.stop_reason).toBe('tool_use');
    expect(body.content[0]).toMatchObject({ type: 'tool_use', name: 'search', input: { n: 1 } });
  });

  it('errors in the Anthropic envelope', async () => {
    const missing = await post({ model: 'c', messages: [] });
    expect(missing.status).toBe(400);
    expect(JSON.parse(await missing.text())).toMatchObject({ type: 'error', error: { type: 'invalid_request_error', message: 'max_tokens: Field required' } });

    const bad = await post('not json');
    expect(bad.status).toBe(400);
    expect((JSON.parse(await bad.text())).error.type).toBe('invalid_request_error');

    mock.setScript([{ status: 529 }]);
    const overloaded = await post({ ...base, max_tokens: 1 });
    expect(overloaded.status).toBe(529);
    expect(overloaded.headers.get('request-id')).toMatch(/^req_/);
    expect(JSON.parse(await overloaded.text())).toMatchObject({ type: 'error', error: { type: 'overloaded_error' } });
  });

  it('requires x-api-key when a key is set', async () => {
    mock.setApiKey('ant-key');
    const none = await post({ ...base, max_tokens: 1 });
    expect(none.status).toBe(401);
    expect(JSON.parse(await none.text())).toMatchObject({ type: 'error', error: { type: 'authentication_error' } });
    expect((await post({ ...base, max_tokens: 1 }, { authorization: 'Bearer ant-key' })).status).toBe(401);
    expect((await post({ ...base, max_tokens: 1 }, { 'x-api-key': 'ant-key' })).status).toBe(200);
    expect(mock.stats().lastHeaders['x-api-key']).toBe('ant-key');
  });

  it('lists models in the Anthropic shape for Anthropic clients', async () => {
    const body = JSON.parse(await (await fetch(`${mock.url}/models`, { headers: { 'anthropic-version': '2023-06-01' } })).text());
    expect(body.data[0]).toMatchObject({ type: 'model', id: 'mock-model' });
    expect(body.has_more).toBe(false);
  });
});
