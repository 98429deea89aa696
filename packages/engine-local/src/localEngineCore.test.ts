import { describe, expect, it } from 'vitest';
import { type ChatRequest, InferenceError } from '@inference/core';
import { ChoiceAccumulator, logitBiasPairs, refusedField, toInput, toParams, toolSelection } from './localEngineCore.js';

const weather = { type: 'function' as const, function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } };
const time = { type: 'function' as const, function: { name: 'get_time' } };

function chat(extra: Partial<ChatRequest> = {}): ChatRequest {
  return {
    kind: 'chat',
    model: 'm',
    sampling: { stop: [], n: 1 },
    stream: false,
    includeUsage: false,
    passthrough: {},
    messages: [{ role: 'user', content: 'hi' }],
    ...extra,
  };
}

function thrown(fn: () => unknown): InferenceError {
  try {
    fn();
  } catch (e) {
    if (e instanceof InferenceError) return e;
    throw e;
  }
  throw new Error('did not throw');
}

describe('toParams', () => {
  it('leaves max tokens out when the client set none (the engine fills the context)', () => {
    expect(toParams(chat())).toEqual({ stop: [] });
    expect(toParams(chat({ sampling: { stop: [], n: 1, maxTokens: 7 } })).maxTokens).toBe(7);
  });

  it('asks for logprobs with the number of alternatives', () => {
    expect(toParams(chat({ sampling: { stop: [], n: 1, logprobs: true } })).logprobs).toBe(0);
    expect(toParams(chat({ sampling: { stop: [], n: 1, logprobs: true, topLogprobs: 3 } })).logprobs).toBe(3);
    expect(toParams(chat({ sampling: { stop: [], n: 1, logprobs: false } })).logprobs).toBeUndefined();
  });

  it('turns logit_bias into pairs, -100 into a ban', () => {
    expect(logitBiasPairs({ '5': -100, '7': 2.5 })).toEqual([[5, -Infinity], [7, 2.5]]);
    expect(toParams(chat({ sampling: { stop: [], n: 1, logitBias: { '3': 1 } } })).logitBias).toEqual([[3, 1]]);
    expect(thrown(() => logitBiasPairs({ x: 1 })).param).toBe('logit_bias');
  });
});

describe('toolSelection and toInput', () => {
  it('passes tools, the choice and parallel_tool_calls in OpenAI spelling', () => {
    const input = toInput(chat({ tools: [weather, time], parallelToolCalls: false }));
    expect(input).toEqual({ messages: [{ role: 'user', content: 'hi' }], tools: [weather, time], toolChoice: 'auto', parallelToolCalls: false });
  });

  it('renders assistant tool calls and tool results', () => {
    const input = toInput(chat({
      messages: [
        { role: 'user', content: 'weather?' },
        { role: 'assistant', content: null, toolCalls: [{ id: 'c1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }] },
        { role: 'tool', content: '12C', toolCallId: 'c1' },
      ],
    }));
    expect('messages' in input ? input.messages : []).toEqual([
      { role: 'user', content: 'weather?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }] },
      { role: 'tool', content: '12C', tool_call_id: 'c1' },
    ]);
  });

  it('a named choice forces that one tool; a name not in tools is refused', () => {
    expect(toolSelection(chat({ tools: [weather, time], toolChoice: { type: 'function', function: { name: 'get_time' } } }))).toEqual({ choice: 'required', tools: [time] });
    expect(thrown(() => toolSelection(chat({ tools: [weather], toolChoice: { type: 'function', function: { name: 'nope' } } }))).param).toBe('tool_choice');
    expect(thrown(() => toolSelection(chat({ toolChoice: 'required' }))).param).toBe('tool_choice');
    expect(thrown(() => toolSelection(chat({ tools: [weather], toolChoice: 'sometimes' }))).param).toBe('tool_choice');
    expect(toolSelection(chat({ tools: [weather], toolChoice: 'none' })).choice).toBe('none');
  });
});

describe('refusedField', () => {
  it('refuses an uninterpreted field by name, accepts the ones without effect on the output', () => {
    expect(refusedField(chat({ passthrough: { metadata: { a: 1 }, store: false } }))).toBeUndefined();
    const e = refusedField(chat({ passthrough: { audio: { voice: 'x' } } }));
    expect(e).toMatchObject({ kind: 'invalid_request', param: 'audio' });
  });

  it('takes reasoning_effort and chat_template_kwargs on chat (template inputs), validated; refuses them on completions', () => {
    const passthrough = { reasoning_effort: 'low', chat_template_kwargs: { enable_thinking: false, x: [1] } };
    expect(refusedField(chat({ passthrough }))).toBeUndefined();
    expect(toInput(chat({ passthrough }))).toMatchObject({ reasoningEffort: 'low', templateKwargs: { enable_thinking: false, x: [1] } });
    const completion = { kind: 'completion' as const, model: 'm', sampling: { stop: [], n: 1 }, stream: false, includeUsage: false, prompt: 'x' };
    expect(refusedField({ ...completion, passthrough: { reasoning_effort: 'low' } })).toMatchObject({ param: 'reasoning_effort' });
    expect(refusedField({ ...completion, passthrough: { chat_template_kwargs: {} } })).toMatchObject({ param: 'chat_template_kwargs' });
    expect(thrown(() => toInput(chat({ passthrough: { reasoning_effort: 'extreme' } }))).param).toBe('reasoning_effort');
    expect(thrown(() => toInput(chat({ passthrough: { reasoning_effort: 3 } }))).param).toBe('reasoning_effort');
    expect(thrown(() => toInput(chat({ passthrough: { chat_template_kwargs: [1] } }))).param).toBe('chat_template_kwargs');
    const thinking = thrown(() => toInput(chat({ passthrough: { chat_template_kwargs: { enable_thinking: 'no' } } })));
    expect(thinking.param).toBe('chat_template_kwargs.enable_thinking');
  });
});

describe('ChoiceAccumulator', () => {
  it('joins text, reasoning, tool-call deltas and logprobs into the choice', () => {
    const acc = new ChoiceAccumulator(1);
    const lp = { token: 'a', logprob: -0.5, bytes: [97], topLogprobs: [] };
    expect(acc.add('Hel', 1, { logprobs: [lp] })).toEqual({ index: 1, text: 'Hel', tokens: 1, logprobs: [lp] });
    acc.add('lo', 1, { reasoning: 'think', toolCalls: [{ index: 0, id: 'call_1', name: 'get_weather', argumentsDelta: '{"ci' }] });
    acc.add('', 1, { toolCalls: [{ index: 0, argumentsDelta: 'ty":"Oslo"}' }] });
    expect(acc.result('tool_calls')).toEqual({
      index: 1,
      text: 'Hello',
      finishReason: 'tool_calls',
      reasoning: 'think',
      logprobs: [lp],
      toolCalls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }],
    });
  });
});
