import { describe, expect, it } from 'vitest';
import { InferenceError } from '../errors.js';
import { ChunkWriter, parseChatRequest, parseCompletionRequest, parseEmbeddingRequest, parseJsonBody } from './openai.js';

function paramOf(f: () => unknown): string | null | undefined {
  try {
    f();
  } catch (e) {
    if (e instanceof InferenceError) return e.param;
    throw e;
  }
  return undefined;
}

describe('OpenAI chat request parsing', () => {
  it('parses a full request into the internal type', () => {
    const r = parseChatRequest({
      model: 'm', messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: [{ type: 'text', text: 'hi' }] }],
      max_tokens: 5, temperature: 0.5, stop: 'END', n: 2, stream: true, stream_options: { include_usage: true }, logit_bias: { 1: 2 },
    });
    expect(r.messages).toEqual([{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hi' }]);
    expect(r.sampling).toEqual({ maxTokens: 5, temperature: 0.5, stop: ['END'], n: 2 });
    expect(r.stream).toBe(true);
    expect(r.includeUsage).toBe(true);
    expect(r.passthrough).toEqual({ logit_bias: { 1: 2 } });
  });

  it('prefers max_completion_tokens over max_tokens', () => {
    expect(parseChatRequest({ model: 'm', messages: [{ role: 'user', content: 'x' }], max_tokens: 3, max_completion_tokens: 9 }).sampling.maxTokens).toBe(9);
  });

  it.each([
    [{ messages: [{ role: 'user', content: 'x' }] }, 'model'],
    [{ model: 'm' }, 'messages'],
    [{ model: 'm', messages: [] }, 'messages'],
    [{ model: 'm', messages: 'hi' }, 'messages'],
    [{ model: 'm', messages: [{ role: 'wizard', content: 'x' }] }, 'messages[0].role'],
    [{ model: 'm', messages: [{ role: 'user' }] }, 'messages[0].content'],
    [{ model: 'm', messages: [{ role: 'user', content: 'x' }], max_tokens: 0 }, 'max_tokens'],
    [{ model: 'm', messages: [{ role: 'user', content: 'x' }], max_tokens: 1.5 }, 'max_tokens'],
    [{ model: 'm', messages: [{ role: 'user', content: 'x' }], temperature: 'hot' }, 'temperature'],
    [{ model: 'm', messages: [{ role: 'user', content: 'x' }], stream: 'yes' }, 'stream'],
    [{ model: 'm', messages: [{ role: 'user', content: 'x' }], stop: [1] }, 'stop[0]'],
    [{ model: 5, messages: [{ role: 'user', content: 'x' }] }, 'model'],
    [{ model: 'm', messages: [{ role: 'user', content: 'x' }], stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop'],
    [{ model: 'm', messages: [{ role: 'user', content: 'x' }], logprobs: true }, 'logprobs'],
    [{ model: 'm', messages: [{ role: 'user', content: 'x' }], logprobs: 'yes' }, 'logprobs'],
    [{ model: 'm', messages: [{ role: 'user', content: 'x' }], top_logprobs: 3 }, 'top_logprobs'],
    [{ model: 'm', messages: [{ role: 'user', content: 'x' }], response_format: 'json' }, 'response_format'],
    [{ model: 'm', messages: [{ role: 'user', content: 'x' }], response_format: { type: 'xml' } }, 'response_format.type'],
    [{ model: 'm', messages: [{ role: 'user', content: 'x' }], response_format: { type: 'json_schema' } }, 'response_format.json_schema'],
    [{ model: 'm', messages: [{ role: 'user', content: 'x' }], response_format: { type: 'json_schema', json_schema: { schema: {} } } }, 'response_format.json_schema.name'],
    [{ model: 'm', messages: [{ role: 'user', content: 'x' }], response_format: { type: 'json_schema', json_schema: { name: 'a', schema: [] } } }, 'response_format.json_schema.schema'],
  ])('rejects %j naming param %s', (body, param) => {
    expect(paramOf(() => parseChatRequest(body))).toBe(param);
  });

  it('rejects non-object bodies', () => {
    expect(() => parseChatRequest([1, 2])).toThrow(InferenceError);
    expect(() => parseJsonBody('{"model":')).toThrow(/not valid JSON/);
  });
});

describe('completions and embeddings', () => {
  it('parses prompt and input forms', () => {
    expect(parseCompletionRequest({ model: 'm', prompt: ['once'] }).prompt).toBe('once');
    expect(paramOf(() => parseCompletionRequest({ model: 'm' }))).toBe('prompt');
    expect(paramOf(() => parseCompletionRequest({ model: 'm', prompt: 'x', logprobs: 2 }))).toBe('logprobs');
    expect(parseCompletionRequest({ model: 'm', prompt: 'x', logprobs: 0 }).passthrough).toEqual({});
    expect(parseChatRequest({ model: 'm', messages: [{ role: 'user', content: 'x' }], logprobs: false, top_logprobs: 0 }).passthrough).toEqual({});
    expect(parseEmbeddingRequest({ model: 'e', input: 'a' }).input).toEqual(['a']);
    expect(paramOf(() => parseEmbeddingRequest({ model: 'e', input: [] }))).toBe('input');
  });
});

describe('ChunkWriter', () => {
  it('writes valid OpenAI chunk JSON', () => {
    const w = new ChunkWriter('chat', 'chatcmpl-1', 7, 'm"x');
    const first = JSON.parse(w.delta(0, { role: true, text: 'he"llo' }).slice(6));
    expect(first).toEqual({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 7, model: 'm"x', choices: [{ index: 0, delta: { role: 'assistant', content: 'he"llo' }, logprobs: null, finish_reason: null }] });
    const last = JSON.parse(w.delta(1, { finishReason: 'stop' }).slice(6));
    expect(last.choices[0]).toEqual({ index: 1, delta: {}, logprobs: null, finish_reason: 'stop' });
    const usage = JSON.parse(w.usage({ promptTokens: 2, completionTokens: 3 }).slice(6));
    expect(usage.choices).toEqual([]);
    expect(usage.usage).toEqual({ prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 });
  });
});
