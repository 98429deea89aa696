import { describe, expect, it } from 'vitest';
import { ANTHROPIC_ENDPOINT, parseDeployment } from '../deployment.js';
import { InferenceError } from '../errors.js';
import { paramOf } from '../../testing/errors.js';
import { parseMessagesRequest } from './anthropic.js';
import { AnthropicEventWriter, anthropicErrorEvent, anthropicStatus, anthropicUsage, renderAnthropicMessage } from './anthropicRender.js';

const base = { model: 'm', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] };

describe('Anthropic messages request parsing', () => {
  it('parses system blocks, sampling, stop sequences and metadata', () => {
    const r = parseMessagesRequest({
      ...base, system: [{ type: 'text', text: 'be ' }, { type: 'text', text: 'brief' }], stop_sequences: ['END'],
      temperature: 0.3, top_p: 0.9, top_k: 40, stream: true, metadata: { user_id: 'u-1' },
    });
    expect(r.messages).toEqual([{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hi' }]);
    expect(r.sampling).toEqual({ maxTokens: 16, stop: ['END'], n: 1, temperature: 0.3, topP: 0.9, topK: 40 });
    expect(r.stream).toBe(true);
    expect(r.user).toBe('u-1');
    expect(r.passthrough).toEqual({});
  });

  it('turns tool_use and tool_result blocks into tool calls and tool messages', () => {
    const r = parseMessagesRequest({
      ...base,
      messages: [
        { role: 'user', content: 'weather?' },
        {
          role: 'assistant',
          content: [
            { type: 'text', text: 'Looking.' },
            { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } },
          ],
        },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 'toolu_1', content: [{ type: 'text', text: '21C' }], is_error: false },
            { type: 'text', text: 'and tomorrow?' },
          ],
        },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_2', name: 'get_weather', input: {} }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_2', content: 'down', is_error: true }] },
      ],
      tools: [{ name: 'get_weather', description: 'w', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }],
      tool_choice: { type: 'tool', name: 'get_weather', disable_parallel_tool_use: true },
    });
    expect(r.messages).toEqual([
      { role: 'user', content: 'weather?' },
      {
        role: 'assistant',
        content: 'Looking.',
        toolCalls: [{ id: 'toolu_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }],
      },
      { role: 'tool', toolCallId: 'toolu_1', content: '21C' },
      { role: 'user', content: 'and tomorrow?' },
      { role: 'assistant', content: null, toolCalls: [{ id: 'toolu_2', type: 'function', function: { name: 'get_weather', arguments: '{}' } }] },
      { role: 'tool', toolCallId: 'toolu_2', content: 'down', isError: true },
    ]);
    expect(r.tools).toEqual([
      { type: 'function', function: { name: 'get_weather', description: 'w', parameters: { type: 'object', properties: { city: { type: 'string' } } } } },
    ]);
    expect(r.toolChoice).toEqual({ type: 'function', function: { name: 'get_weather' } });
    expect(r.parallelToolCalls).toBe(false);
  });

  it.each([
    [{ type: 'auto' }, 'auto'],
    [{ type: 'any' }, 'required'],
    [{ type: 'none' }, 'none'],
  ])('maps tool_choice %j to %j', (tc, want) => {
    expect(parseMessagesRequest({ ...base, tool_choice: tc }).toolChoice).toBe(want);
  });

  it.each([
    [{ model: 'm', messages: base.messages }, 'max_tokens'],
    [{ ...base, max_tokens: 0 }, 'max_tokens'],
    [{ ...base, model: '' }, 'model'],
    [{ ...base, messages: [] }, 'messages'],
    [{ ...base, messages: [{ role: 'system', content: 'x' }] }, 'messages[0].role'],
    [{ ...base, messages: [{ role: 'user' }] }, 'messages[0].content'],
    [{ ...base, messages: [{ role: 'user', content: [{ type: 'image', source: {} }] }] }, 'messages[0].content[0].type'],
    [{ ...base, messages: [{ role: 'user', content: [{ type: 'tool_result', content: 'x' }] }] }, 'messages[0].content[0].tool_use_id'],
    [{ ...base, messages: [{ role: 'assistant', content: [{ type: 'tool_use', id: 't', name: 'f', input: 'x' }] }] }, 'messages[0].content[0].input'],
    [{ ...base, system: [{ type: 'image' }] }, 'system[0].type'],
    [{ ...base, temperature: 1.5 }, 'temperature'],
    [{ ...base, stop_sequences: ['a', ''] }, 'stop_sequences[1]'],
    [{ ...base, tools: [{ name: 'f' }] }, 'tools[0].input_schema'],
    [{ ...base, tools: [{ type: 'bash_20250124', name: 'bash' }] }, 'tools[0].type'],
    [{ ...base, tool_choice: { type: 'sometimes' } }, 'tool_choice.type'],
    [{ ...base, tool_choice: { type: 'tool' } }, 'tool_choice.name'],
    [{ ...base, thinking: { type: 'enabled' } }, 'thinking'],
    [{ ...base, stream: 'yes' }, 'stream'],
  ])('rejects %j naming param %s', (body, param) => {
    expect(paramOf(() => parseMessagesRequest(body))).toBe(param);
  });
});

describe('Anthropic rendering', () => {
  it('renders a message with text, tool_use, stop reason and usage', () => {
    const m = renderAnthropicMessage('msg_1', 'm', {
      index: 0, text: 'ok', finishReason: 'tool_calls',
      toolCalls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{"a":1}' } }],
    }, { promptTokens: 10, completionTokens: 3, cachedTokens: 4 });
    expect(m).toEqual({
      id: 'msg_1', type: 'message', role: 'assistant', model: 'm',
      content: [{ type: 'text', text: 'ok' }, { type: 'tool_use', id: 'call_1', name: 'f', input: { a: 1 } }],
      stop_reason: 'tool_use', stop_sequence: null,
      usage: { input_tokens: 6, output_tokens: 3, cache_creation_input_tokens: null, cache_read_input_tokens: 4 },
    });
    const s = renderAnthropicMessage(
      'msg_2',
      'm',
      { index: 0, text: 'x', finishReason: 'stop', stopSequence: 'END' },
      { promptTokens: 1, completionTokens: 1 },
    ) as Record<string, unknown>;
    expect([s.stop_reason, s.stop_sequence]).toEqual(['stop_sequence', 'END']);
    const len = renderAnthropicMessage('msg_3', 'm', { index: 0, text: '', finishReason: 'length' }, { promptTokens: 1, completionTokens: 0 }) as Record<
      string,
      unknown
    >;
    expect([len.stop_reason, len.content]).toEqual(['max_tokens', [{ type: 'text', text: '' }]]);
  });

  it('rejects tool arguments that are not a JSON object', () => {
    expect(() =>
      renderAnthropicMessage(
        'msg_1',
        'm',
        { index: 0, text: '', finishReason: 'tool_calls', toolCalls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{"a":' } }] },
        { promptTokens: 1, completionTokens: 1 },
      ),
    ).toThrow(expect.objectContaining({ kind: 'upstream_error' }));
  });

  it('splits cache tokens out of input_tokens', () => {
    expect(anthropicUsage({ promptTokens: 100, completionTokens: 5, cachedTokens: 60, cacheWriteTokens: 30 })).toEqual({
      input_tokens: 10,
      output_tokens: 5,
      cache_creation_input_tokens: 30,
      cache_read_input_tokens: 60,
    });
  });

  it('renders errors in Anthropic shape, overloads as 529', () => {
    const over = new InferenceError('overloaded', 'busy');
    expect(anthropicStatus(over)).toBe(529);
    expect(anthropicStatus(new InferenceError('rate_limited', 'slow down'))).toBe(429);
    expect(anthropicStatus(new InferenceError('invalid_request', 'bad'))).toBe(400);
    expect(anthropicErrorEvent(over)).toBe('event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"busy"}}\n\n');
  });
});

function events(text: string): { event: string; data: Record<string, unknown> }[] {
  return text.split('\n\n').filter((b) => b !== '').map((b) => {
    const [ev, data] = b.split('\n');
    expect(ev?.startsWith('event: ')).toBe(true);
    const parsed = JSON.parse((data ?? '').slice(6)) as Record<string, unknown>;
    expect(parsed.type).toBe(ev?.slice(7));
    return { event: ev?.slice(7) ?? '', data: parsed };
  });
}

describe('AnthropicEventWriter', () => {
  it('streams text then a tool call as sequential blocks with usage at the end', () => {
    const w = new AnthropicEventWriter('msg_1', 'm');
    let out = w.start();
    out += w.push({ index: 0, text: 'Hel', tokens: 1 });
    out += w.push({ index: 0, text: 'lo', tokens: 1 });
    out += w.push({ index: 0, text: '', tokens: 0, toolCalls: [{ index: 0, id: 'call_1', name: 'f', argumentsDelta: '' }] });
    out += w.push({ index: 0, text: '', tokens: 0, toolCalls: [{ index: 0, argumentsDelta: '{"a":' }] });
    out += w.push({ index: 0, text: '', tokens: 0, toolCalls: [{ index: 0, argumentsDelta: '1}' }], finishReason: 'tool_calls' });
    out += w.finish({ index: 0, text: 'Hello', finishReason: 'tool_calls' }, { promptTokens: 7, completionTokens: 4 });
    const evs = events(out);
    expect(evs.map((e) => e.event)).toEqual([
      'message_start', 'content_block_start', 'ping', 'content_block_delta', 'content_block_delta', 'content_block_stop',
      'content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop',
    ]);
    expect(evs[6]?.data).toEqual({ type: 'content_block_start', index: 1, content_block: { type: 'tool_use', id: 'call_1', name: 'f', input: {} } });
    expect(evs[8]?.data).toEqual({ type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '1}' } });
    expect(evs[10]?.data).toEqual({
      type: 'message_delta', delta: { stop_reason: 'tool_use', stop_sequence: null },
      usage: { input_tokens: 7, output_tokens: 4, cache_creation_input_tokens: null, cache_read_input_tokens: null },
    });
  });

  it('emits an empty text block when nothing was generated', () => {
    const w = new AnthropicEventWriter('msg_1', 'm');
    const evs = events(w.start() + w.finish({ index: 0, text: '', finishReason: 'length' }, { promptTokens: 1, completionTokens: 0 }));
    expect(evs.map((e) => e.event)).toEqual(['message_start', 'content_block_start', 'ping', 'content_block_stop', 'message_delta', 'message_stop']);
    expect((evs[4]?.data.delta as Record<string, unknown>).stop_reason).toBe('max_tokens');
  });
});

describe('anthropic deployments', () => {
  it('default to the Anthropic API endpoint; openai ones still need an endpoint', () => {
    expect(parseDeployment({ name: 'claude', runtime: 'anthropic', apiKeyEnv: 'ANTHROPIC_API_KEY' }).endpoint).toBe(ANTHROPIC_ENDPOINT);
    expect(parseDeployment({ name: 'claude', runtime: 'anthropic', endpoint: 'http://127.0.0.1:9/v1/' }).endpoint).toBe('http://127.0.0.1:9/v1');
    expect(paramOf(() => parseDeployment({ name: 'gpt', runtime: 'openai' }))).toBe('endpoint');
  });
});
