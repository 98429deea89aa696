import { describe, expect, it } from 'vitest';
import { InferenceError } from '../errors.js';
import { paramOf } from '../../testing/errors.js';
import {
  ChunkWriter, renderChatCompletion, renderTextCompletion, parseChatRequest, parseCompletionRequest, parseEmbeddingRequest, parseJsonBody,
} from './openai.js';
import type { TokenLogprob } from '../types.js';

describe('OpenAI chat request parsing', () => {
  it('parses a full request into the internal type', () => {
    const r = parseChatRequest({
      model: 'm', messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: [{ type: 'text', text: 'hi' }] }],
      max_tokens: 5, temperature: 0.5, stop: 'END', n: 2, stream: true, stream_options: { include_usage: true }, logit_bias: { 1: 2 },
      parallel_tool_calls: false, metadata: { a: 'b' },
    });
    expect(r.messages).toEqual([{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hi' }]);
    expect(r.sampling).toEqual({ maxTokens: 5, temperature: 0.5, stop: ['END'], n: 2, logitBias: { 1: 2 } });
    expect(r.stream).toBe(true);
    expect(r.includeUsage).toBe(true);
    expect(r.parallelToolCalls).toBe(false);
    expect(r.passthrough).toEqual({ metadata: { a: 'b' } });
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
    [{ model: 'm', messages: [{ role: 'user', content: 'x' }], logprobs: 'yes' }, 'logprobs'],
    [{ model: 'm', messages: [{ role: 'user', content: 'x' }], top_logprobs: 3 }, 'top_logprobs'],
    [{ model: 'm', messages: [{ role: 'user', content: 'x' }], logprobs: true, top_logprobs: 21 }, 'top_logprobs'],
    [{ model: 'm', messages: [{ role: 'user', content: 'x' }], logit_bias: [1] }, 'logit_bias'],
    [{ model: 'm', messages: [{ role: 'user', content: 'x' }], logit_bias: { abc: 1 } }, 'logit_bias'],
    [{ model: 'm', messages: [{ role: 'user', content: 'x' }], logit_bias: { '-1': 1 } }, 'logit_bias'],
    [{ model: 'm', messages: [{ role: 'user', content: 'x' }], logit_bias: { 1.5: 1 } }, 'logit_bias'],
    [{ model: 'm', messages: [{ role: 'user', content: 'x' }], logit_bias: { 7: 101 } }, 'logit_bias.7'],
    [{ model: 'm', messages: [{ role: 'user', content: 'x' }], logit_bias: { 7: -100.5 } }, 'logit_bias.7'],
    [{ model: 'm', messages: [{ role: 'user', content: 'x' }], logit_bias: { 7: '5' } }, 'logit_bias.7'],
    [{ model: 'm', messages: [{ role: 'user', content: 'x' }], parallel_tool_calls: 'no' }, 'parallel_tool_calls'],
    [{ model: 'm', messages: [{ role: 'user', content: 'x' }], response_format: 'json' }, 'response_format'],
    [{ model: 'm', messages: [{ role: 'user', content: 'x' }], response_format: { type: 'xml' } }, 'response_format.type'],
    [{ model: 'm', messages: [{ role: 'user', content: 'x' }], response_format: { type: 'json_schema' } }, 'response_format.json_schema'],
    [
      { model: 'm', messages: [{ role: 'user', content: 'x' }], response_format: { type: 'json_schema', json_schema: { schema: {} } } },
      'response_format.json_schema.name',
    ],
    [
      { model: 'm', messages: [{ role: 'user', content: 'x' }], response_format: { type: 'json_schema', json_schema: { name: 'a', schema: [] } } },
      'response_format.json_schema.schema',
    ],
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
    expect(parseCompletionRequest({ model: 'm', prompt: 'x', logprobs: 2 }).sampling).toMatchObject({ logprobs: true, topLogprobs: 2 });
    expect(paramOf(() => parseCompletionRequest({ model: 'm', prompt: 'x', logprobs: 6 }))).toBe('logprobs');
    expect(paramOf(() => parseCompletionRequest({ model: 'm', prompt: 'x', top_logprobs: 2 }))).toBe('top_logprobs');
    expect(parseCompletionRequest({ model: 'm', prompt: 'x', logprobs: 0 }).sampling).toMatchObject({ logprobs: true, topLogprobs: 0 });
    expect(parseCompletionRequest({ model: 'm', prompt: 'x', logprobs: null }).sampling.logprobs).toBeUndefined();
    const off = parseChatRequest({ model: 'm', messages: [{ role: 'user', content: 'x' }], logprobs: false, top_logprobs: 0 });
    expect(off.passthrough).toEqual({});
    expect(off.sampling.logprobs).toBeUndefined();
    expect(parseChatRequest({ model: 'm', messages: [{ role: 'user', content: 'x' }], logprobs: true, top_logprobs: 20 }).sampling)
      .toMatchObject({ logprobs: true, topLogprobs: 20 });
    expect(parseChatRequest({ model: 'm', messages: [{ role: 'user', content: 'x' }], logprobs: true }).sampling).toMatchObject({
      logprobs: true,
      topLogprobs: 0,
    });
    expect(parseEmbeddingRequest({ model: 'e', input: 'a' }).input).toEqual(['a']);
    expect(paramOf(() => parseEmbeddingRequest({ model: 'e', input: [] }))).toBe('input');
  });
});

describe('ChunkWriter', () => {
  it('text() writes exactly the bytes delta() writes for the same text, in every kind, choice and role', () => {
    for (const kind of ['chat', 'completion'] as const) {
      const w = new ChunkWriter(kind, 'id-1', 7, 'm"x');
      for (const index of [0, 2]) {
        for (const role of [false, true]) {
          for (const text of ['', 'he"llo', 'caf\u00e9 \n\u2028']) {
            const viaDelta = kind === 'completion' ? w.delta(index, { text }) : w.delta(index, role ? { role, text } : { text });
            expect(w.text(index, JSON.stringify(text), kind === 'chat' && role)).toBe(viaDelta);
          }
        }
      }
    }
  });

  it('writes valid OpenAI chunk JSON', () => {
    const w = new ChunkWriter('chat', 'chatcmpl-1', 7, 'm"x');
    const first = JSON.parse(w.delta(0, { role: true, text: 'he"llo' }).slice(6));
    expect(first).toEqual({
      id: 'chatcmpl-1',
      object: 'chat.completion.chunk',
      created: 7,
      model: 'm"x',
      choices: [{ index: 0, delta: { role: 'assistant', content: 'he"llo' }, logprobs: null, finish_reason: null }],
    });
    const last = JSON.parse(w.delta(1, { finishReason: 'stop' }).slice(6));
    expect(last.choices[0]).toEqual({ index: 1, delta: {}, logprobs: null, finish_reason: 'stop' });
    const usage = JSON.parse(w.usage({ promptTokens: 2, completionTokens: 3 }).slice(6));
    expect(usage.choices).toEqual([]);
    expect(usage.usage).toEqual({ prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 });
  });
});

const LP: TokenLogprob[] = [
  {
    token: 'He',
    logprob: -0.5,
    bytes: [72, 101],
    topLogprobs: [
      { token: 'He', logprob: -0.5, bytes: [72, 101] },
      { token: 'A', logprob: -1.25, bytes: [65] },
    ],
  },
  {
    token: 'y',
    logprob: -2,
    bytes: [121],
    topLogprobs: [
      { token: 'y', logprob: -2, bytes: [121] },
      { token: 'llo', logprob: -0.1, bytes: [108, 108, 111] },
    ],
  },
];

describe('logprobs and reasoning rendering', () => {
  it('renders chat logprobs.content and reasoning_content in a message', () => {
    const body = renderChatCompletion('c', 1, 'm', [{ index: 0, text: 'Hey', finishReason: 'stop', logprobs: LP, reasoning: 'think' }], {
      promptTokens: 1,
      completionTokens: 2,
    }) as {
      choices: { message: Record<string, unknown>; logprobs: unknown }[];
    };
    expect(body.choices[0]?.message).toEqual({ role: 'assistant', content: 'Hey', reasoning_content: 'think' });
    expect(body.choices[0]?.logprobs).toEqual({
      refusal: null,
      content: [
        {
          token: 'He',
          logprob: -0.5,
          bytes: [72, 101],
          top_logprobs: [
            { token: 'He', logprob: -0.5, bytes: [72, 101] },
            { token: 'A', logprob: -1.25, bytes: [65] },
          ],
        },
        {
          token: 'y',
          logprob: -2,
          bytes: [121],
          top_logprobs: [
            { token: 'y', logprob: -2, bytes: [121] },
            { token: 'llo', logprob: -0.1, bytes: [108, 108, 111] },
          ],
        },
      ],
    });
    const plain = renderChatCompletion('c', 1, 'm', [{ index: 0, text: 'Hey', finishReason: 'stop' }], { promptTokens: 1, completionTokens: 2 }) as {
      choices: { message: unknown; logprobs: unknown }[];
    };
    expect(plain.choices[0]?.logprobs).toBeNull();
    expect(plain.choices[0]?.message).toEqual({ role: 'assistant', content: 'Hey' });
  });

  it('renders legacy completions logprobs with running text offsets', () => {
    const body = renderTextCompletion('c', 1, 'm', [{ index: 0, text: 'Hey', finishReason: 'length', logprobs: LP }], {
      promptTokens: 1,
      completionTokens: 2,
    }) as { choices: { logprobs: unknown }[] };
    expect(body.choices[0]?.logprobs).toEqual({
      tokens: ['He', 'y'], token_logprobs: [-0.5, -2], top_logprobs: [{ He: -0.5, A: -1.25 }, { y: -2, llo: -0.1 }], text_offset: [0, 2],
    });
  });

  it('streams chat logprobs and reasoning deltas, and completions logprobs from an offset', () => {
    const w = new ChunkWriter('chat', 'c', 1, 'm');
    const chunk = JSON.parse(w.delta(0, { text: 'He', logprobs: LP.slice(0, 1) }).slice(6));
    expect(chunk.choices[0].logprobs).toEqual({
      content: [
        {
          token: 'He',
          logprob: -0.5,
          bytes: [72, 101],
          top_logprobs: [
            { token: 'He', logprob: -0.5, bytes: [72, 101] },
            { token: 'A', logprob: -1.25, bytes: [65] },
          ],
        },
      ],
      refusal: null,
    });
    const reasoning = JSON.parse(w.delta(0, { reasoning: 'hmm' }).slice(6));
    expect(reasoning.choices[0]).toEqual({ index: 0, delta: { reasoning_content: 'hmm' }, logprobs: null, finish_reason: null });
    const cw = new ChunkWriter('completion', 'c', 1, 'm');
    const c = JSON.parse(cw.delta(0, { text: 'y', logprobs: LP.slice(1), textOffset: 2 }).slice(6));
    expect(c.choices[0].logprobs).toEqual({ tokens: ['y'], token_logprobs: [-2], top_logprobs: [{ y: -2, llo: -0.1 }], text_offset: [2] });
    expect(JSON.parse(cw.delta(0, { text: 'x' }).slice(6)).choices[0].logprobs).toBeNull();
  });
});
