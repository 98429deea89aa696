import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ChatRequest, InferenceError, type TokenChunk, parseDeployment } from '@inference/core';
import { type MockUpstream, startMockUpstream } from '@inference/mock-upstream';
import { type RemoteSession, closeSession, openSession } from '../session.js';
import { generate, statusOfErrorType } from './anthropic.js';
import { buildMessagesBody } from './anthropicRequest.js';

function chat(over: Partial<ChatRequest> = {}): ChatRequest {
  return {
    kind: 'chat',
    model: 'claude',
    sampling: { stop: [], n: 1 },
    stream: false,
    includeUsage: false,
    passthrough: {},
    messages: [{ role: 'user', content: 'hi' }],
    ...over,
  };
}

describe('Anthropic request body', () => {
  it('merges system messages, translates tool calls and results, and maps sampling', () => {
    const body = buildMessagesBody(chat({
      sampling: { stop: ['END'], n: 1, temperature: 0.2, topP: 0.8, topK: 5, maxTokens: 30 },
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'developer', content: 'use tools' },
        { role: 'user', content: 'weather in Paris?' },
        { role: 'assistant', content: null, toolCalls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
        { role: 'tool', toolCallId: 'call_1', content: '21C', isError: true },
        { role: 'user', content: 'thanks' },
      ],
      tools: [{ type: 'function', function: { name: 'get_weather', description: 'd', parameters: { type: 'object' } } }],
      toolChoice: 'required',
      parallelToolCalls: false,
      user: 'u1',
    }), 'claude-x');
    expect(body).toEqual({
      model: 'claude-x', max_tokens: 30, system: 'be brief\n\nuse tools', temperature: 0.2, top_p: 0.8, top_k: 5, stop_sequences: ['END'],
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'weather in Paris?' }] },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'call_1', name: 'get_weather', input: { city: 'Paris' } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'call_1', content: '21C', is_error: true }, { type: 'text', text: 'thanks' }] },
      ],
      tools: [{ name: 'get_weather', description: 'd', input_schema: { type: 'object' } }],
      tool_choice: { type: 'any', disable_parallel_tool_use: true },
      metadata: { user_id: 'u1' },
    });
  });

  it('defaults max_tokens, and maps named and none tool choices', () => {
    const tools = [{ type: 'function' as const, function: { name: 'f' } }];
    expect(buildMessagesBody(chat(), 'c').max_tokens).toBe(4096);
    expect(buildMessagesBody(chat({ tools, toolChoice: { type: 'function', function: { name: 'f' } } }), 'c').tool_choice).toEqual({ type: 'tool', name: 'f' });
    expect(buildMessagesBody(chat({ tools, toolChoice: 'none' }), 'c').tool_choice).toEqual({ type: 'none' });
    expect(buildMessagesBody(chat({ tools }), 'c').tools).toEqual([{ name: 'f', input_schema: { type: 'object', properties: {} } }]);
  });

  it.each([
    [chat({ sampling: { stop: [], n: 2 } }), 'n'],
    [chat({ responseFormat: { type: 'json_object' } }), 'response_format'],
    [chat({ sampling: { stop: [], n: 1, logprobs: true, topLogprobs: 2 } }), 'logprobs'],
    [chat({ sampling: { stop: [], n: 1, logitBias: { 5: -100 } } }), 'logit_bias'],
    [chat({ sampling: { stop: [], n: 1, seed: 7 } }), 'seed'],
    [chat({ sampling: { stop: [], n: 1, frequencyPenalty: 0.5 } }), 'frequency_penalty'],
    [chat({ passthrough: { store: true, prediction: { type: 'content', content: 'x' } } }), 'prediction'],
    [
      chat({ messages: [{ role: 'assistant', content: null, toolCalls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '[1]' } }] }] }),
      'messages[0].tool_calls[0].function.arguments',
    ],
  ])('refuses what Anthropic cannot express (%#: %s)', (req, param) => {
    expect(() => buildMessagesBody(req, 'c')).toThrow(expect.objectContaining({ kind: 'invalid_request', param }));
  });

  it('maps error types to Anthropic statuses', () => {
    expect([
      statusOfErrorType('overloaded_error'),
      statusOfErrorType('rate_limit_error'),
      statusOfErrorType('api_error'),
      statusOfErrorType('new_kind'),
      statusOfErrorType(3),
    ]).toEqual([529, 429, 500, 500, 500]);
  });
});

describe('Anthropic provider against the mock', () => {
  let mock: MockUpstream;
  let session: RemoteSession;
  const spec = parseDeployment({
    name: 'claude',
    runtime: 'anthropic',
    endpoint: 'http://127.0.0.1:1/v1',
    model: 'claude-3-5-haiku-latest',
    remote: { timeouts: { totalMs: 20_000 } },
  });

  beforeAll(async () => {
    mock = await startMockUpstream({ apiKey: 'sk-ant' });
    session = openSession({ ...spec, endpoint: mock.url }, () => ({ apiKey: 'sk-ant' }), 0);
  });
  afterAll(async () => {
    await closeSession(session);
    await mock.close();
  });

  const run = async (req: ChatRequest): Promise<{ chunks: TokenChunk[]; tokens: Awaited<ReturnType<typeof generate>> }> => {
    const chunks: TokenChunk[] = [];
    const tokens = await generate({ spec, session, ctx: { requestId: 'r1', signal: new AbortController().signal } }, req, (c) => chunks.push(c));
    return { chunks, tokens };
  };

  it('reads a whole and a streamed text answer with usage and stop reasons', async () => {
    const whole = await run(chat({ sampling: { stop: [], n: 1, maxTokens: 5 } }));
    expect(mock.stats().lastHeaders['x-api-key']).toBe('sk-ant');
    expect(mock.stats().lastHeaders['anthropic-version']).toBe('2023-06-01');
    expect(whole.tokens.choices[0]?.finishReason).toBe('length');
    expect(whole.tokens.usage).toEqual({ promptTokens: 1, completionTokens: 5, cachedTokens: 0, cacheWriteTokens: 0 });
    const streamed = await run(chat({ stream: true, sampling: { stop: [], n: 1, maxTokens: 5 } }));
    expect(streamed.tokens.choices[0]?.text).toBe(whole.tokens.choices[0]?.text);
    expect(streamed.chunks.filter((c) => c.text !== '').length).toBe(5);
    expect(streamed.chunks.at(-1)?.finishReason).toBe('length');
    expect(streamed.tokens.usage.completionTokens).toBe(5);
    expect(streamed.tokens.usage.promptTokens).toBe(1);
  });

  it('reads streamed tool_use as tool-call deltas', async () => {
    const req = chat({
      stream: true,
      messages: [{ role: 'user', content: 'weather in Paris?' }],
      tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { location: { type: 'string' } } } } }],
    });
    const { chunks, tokens } = await run(req);
    expect(mock.stats().lastBody).toMatchObject({ tools: [{ name: 'get_weather', input_schema: { type: 'object' } }], stream: true });
    const deltas = chunks.flatMap((c) => c.toolCalls ?? []);
    expect(deltas[0]).toMatchObject({ index: 0, name: 'get_weather' });
    expect(deltas.length).toBeGreaterThan(2);
    expect(deltas.map((d) => d.argumentsDelta).join('')).toBe('{"location":"Paris"}');
    expect(tokens.choices[0]?.finishReason).toBe('tool_calls');
    expect(tokens.choices[0]?.toolCalls?.[0]?.function).toEqual({ name: 'get_weather', arguments: '{"location":"Paris"}' });
  });

  it('classifies a 529 as overloaded and a cut stream as upstream_error', async () => {
    mock.setScript([{ status: 529 }, { disconnectAfterChunks: 3 }]);
    await expect(run(chat())).rejects.toMatchObject({ kind: 'overloaded' });
    const cut = await run(chat({ stream: true })).catch((e: unknown) => e);
    expect(cut).toBeInstanceOf(InferenceError);
    expect((cut as InferenceError).kind).toBe('upstream_error');
  });
});
