// The openai and @anthropic-ai/sdk clients against a local deployment of a model with a
// real tool-calling chat template (stories260K with Qwen2.5's, written by
// scripts/make-template-model.mjs): no token limit, the template in /v1/models, forced
// tool calls valid against their schema (streamed and not), a tool loop, logprobs,
// logit_bias, and the fields a local deployment refuses by name.

import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Server, parseConfig, serve } from '@inference/gateway';
import { anthropicClient } from '../support/anthropic.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const MODEL = join(root, 'models', 'stories260K-qwen-tools.gguf');
const THINKING = join(root, 'native', 'vendor', 'llama.cpp', 'models', 'templates', 'Qwen-QwQ-32B.jinja');
const PLAIN = join(root, 'models', 'stories260K.gguf');
/** Qwen3's template: `enable_thinking: false` closes an empty think block in the prompt. */
const QWEN3 = join(root, 'native', 'vendor', 'llama.cpp', 'models', 'templates', 'Qwen-Qwen3-0.6B.jinja');
const CONTEXT = 4096; // the Qwen system prompt with tools is ~600 tokens of stories260K's small vocabulary
const SEQUENCES = 2;

let server: Server;
let openai: OpenAI;
let anthropic: Anthropic;

beforeAll(async () => {
  execFileSync(process.execPath, [join(root, 'scripts', 'make-template-model.mjs')], { stdio: 'ignore' });
  server = await serve(parseConfig({
    server: { port: 0 },
    deployments: [
      { name: 'qwenish', runtime: 'llama', model: MODEL, replicas: 1, engine: { contextSize: CONTEXT, maxSequences: SEQUENCES, threads: 1 } },
      // The plain model (no template of its own) with a thinking template as engine.chatTemplate.
      { name: 'thinker', runtime: 'llama', model: join(root, 'models', 'stories260K.gguf'), replicas: 1, engine: { contextSize: 1024, maxSequences: 1, threads: 1, chatTemplate: THINKING } },
      { name: 'qwen3', runtime: 'llama', model: PLAIN, replicas: 1, engine: { contextSize: 1024, maxSequences: 1, threads: 1, chatTemplate: QWEN3 } },
    ],
  }));
  await server.runtime.settled();
  openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  anthropic = anthropicClient(server.url);
}, 120_000);
afterAll(async () => {
  await server.close();
});

const WEATHER: OpenAI.Chat.Completions.ChatCompletionTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather of a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
      required: ['city', 'unit'],
      additionalProperties: false,
    },
  },
};
const TIME: OpenAI.Chat.Completions.ChatCompletionTool = {
  type: 'function',
  function: { name: 'get_time', parameters: { type: 'object', properties: { zone: { type: 'string' } }, required: ['zone'] } },
};
const USER = [{ role: 'user' as const, content: 'What is the weather in Paris?' }];

/** The arguments are JSON matching WEATHER's schema. */
function checkWeather(args: string): void {
  const a = JSON.parse(args) as Record<string, unknown>;
  expect(Object.keys(a).sort()).toEqual(['city', 'unit']);
  expect(typeof a['city']).toBe('string');
  expect(['celsius', 'fahrenheit']).toContain(a['unit']);
}

describe('local deployment with a real chat template', () => {
  it("says in /v1/models that it uses the model's own template, which renders tools", async () => {
    const res = await fetch(`${server.url}/v1/models`);
    const body = (await res.json()) as { data: { id: string; meta: Record<string, unknown> }[] };
    expect(body.data.find((m) => m.id === 'qwenish')?.meta).toMatchObject({ template_source: 'model', template: 'tokenizer.chat_template', template_tools: true });
  });

  it('engine.chatTemplate overrides the template: /v1/models says so, and a thinking template yields reasoning_content', async () => {
    const res = await fetch(`${server.url}/v1/models`);
    const body = (await res.json()) as { data: { id: string; meta: Record<string, unknown> }[] };
    expect(body.data.find((m) => m.id === 'thinker')?.meta).toMatchObject({ template_source: 'override', template: 'Qwen-QwQ-32B.jinja', template_tools: true });
    // The prompt ends inside <think>: a story model never closes it, so all it writes is reasoning.
    const r = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'thinker', messages: USER, max_tokens: 12, temperature: 0 }),
    });
    const msg = ((await r.json()) as { choices: { message: { content: string | null; reasoning_content?: string } }[] }).choices[0]?.message;
    expect(msg?.reasoning_content?.length).toBeGreaterThan(0);
    expect(msg?.content ?? '').toBe('');
  });

  it('generates until end of generation or the full context when no max_tokens is set', async () => {
    const r = await openai.chat.completions.create({ model: 'qwenish', messages: USER, temperature: 0 });
    expect(['stop', 'length']).toContain(r.choices[0]?.finish_reason);
    expect(r.usage?.completion_tokens).toBeGreaterThan(0);
    // A ban on end of generation leaves only the full context to end it.
    const eos = 2; // stories260K's </s>
    const full = await openai.completions.create({ model: 'qwenish', prompt: 'Once upon a time', temperature: 0, logit_bias: { [String(eos)]: -100 } });
    expect(full.choices[0]?.finish_reason).toBe('length');
    expect((full.usage?.prompt_tokens ?? 0) + (full.usage?.completion_tokens ?? 0)).toBe(CONTEXT / SEQUENCES);
    const tooLong = await openai.completions.create({ model: 'qwenish', prompt: 'word '.repeat(CONTEXT) }).catch((e: unknown) => e);
    expect(tooLong).toBeInstanceOf(OpenAI.BadRequestError);
    expect((tooLong as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('context_length_exceeded');
  });

  it('tool_choice required gives a schema-valid call, streamed and not', async () => {
    for (const seed of [11, 12]) {
      const r = await openai.chat.completions.create({ model: 'qwenish', messages: USER, tools: [WEATHER], tool_choice: 'required', parallel_tool_calls: false, seed, max_tokens: 200 });
      const choice = r.choices[0];
      expect(choice?.finish_reason).toBe('tool_calls');
      expect(choice?.message.content).toBeNull();
      const calls = choice?.message.tool_calls ?? [];
      expect(calls).toHaveLength(1);
      const call = calls[0];
      if (call?.type !== 'function') throw new Error('expected a function call');
      expect(call.function.name).toBe('get_weather');
      expect(call.id).toMatch(/^call_/);
      checkWeather(call.function.arguments);
    }
    const stream = openai.chat.completions.stream({ model: 'qwenish', messages: USER, tools: [WEATHER, TIME], tool_choice: 'required', parallel_tool_calls: false, seed: 5, max_tokens: 200 });
    let deltas = 0;
    for await (const c of stream) if (c.choices[0]?.delta.tool_calls !== undefined) deltas++;
    const final = await stream.finalChatCompletion();
    expect(deltas).toBeGreaterThan(1); // name first, then argument fragments
    expect(final.choices[0]?.finish_reason).toBe('tool_calls');
    const call = final.choices[0]?.message.tool_calls?.[0];
    if (call?.type !== 'function') throw new Error('expected a function call');
    expect(['get_weather', 'get_time']).toContain(call.function.name);
    const args = JSON.parse(call.function.arguments) as Record<string, unknown>;
    if (call.function.name === 'get_weather') checkWeather(call.function.arguments);
    else expect(typeof args['zone']).toBe('string');
  });

  it('a named tool_choice forces that function', async () => {
    const r = await openai.chat.completions.create({ model: 'qwenish', messages: USER, tools: [WEATHER, TIME], tool_choice: { type: 'function', function: { name: 'get_time' } }, max_tokens: 100, seed: 3 });
    const call = r.choices[0]?.message.tool_calls?.[0];
    if (call?.type !== 'function') throw new Error('expected a function call');
    expect(call.function.name).toBe('get_time');
    expect(typeof (JSON.parse(call.function.arguments) as Record<string, unknown>)['zone']).toBe('string');
    const bad = await openai.chat.completions.create({ model: 'qwenish', messages: USER, tools: [WEATHER], tool_choice: { type: 'function', function: { name: 'nope' } } }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(OpenAI.BadRequestError);
    expect((bad as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('tool_choice');
  });

  it('runs a tool loop: the call, the tool result, then an answer', async () => {
    const first = await openai.chat.completions.create({ model: 'qwenish', messages: USER, tools: [WEATHER], tool_choice: 'required', max_tokens: 200, seed: 7 });
    const call = first.choices[0]?.message.tool_calls?.[0];
    if (call?.type !== 'function') throw new Error('expected a function call');
    const second = await openai.chat.completions.create({
      model: 'qwenish',
      messages: [...USER, { role: 'assistant', content: null, tool_calls: [call] }, { role: 'tool', tool_call_id: call.id, content: 'Sunny, 21 degrees' }],
      tools: [WEATHER],
      tool_choice: 'none',
      max_tokens: 16,
      temperature: 0,
    });
    expect(second.choices[0]?.message.tool_calls ?? []).toEqual([]);
    expect(second.usage?.prompt_tokens).toBeGreaterThan(first.usage?.prompt_tokens ?? 0);
    expect(second.usage?.completion_tokens).toBeGreaterThan(0);
  });

  it('reports logprobs and top_logprobs on chat (streamed and not) and completions', async () => {
    const r = await openai.chat.completions.create({ model: 'qwenish', messages: USER, max_tokens: 8, temperature: 0, logprobs: true, top_logprobs: 3 });
    const content = r.choices[0]?.logprobs?.content ?? [];
    expect(content).toHaveLength(r.usage?.completion_tokens ?? -1);
    for (const e of content) {
      expect(e.logprob).toBeLessThanOrEqual(0);
      expect(e.top_logprobs).toHaveLength(3);
      expect(e.top_logprobs[0]?.token).toBe(e.token); // greedy: the most likely token
      expect(e.top_logprobs[0]?.logprob).toBeCloseTo(e.logprob, 5);
      expect(Array.isArray(e.bytes)).toBe(true);
    }
    expect(content.map((e) => Buffer.from(e.bytes ?? []).toString('utf8')).join('')).toBe(r.choices[0]?.message.content);
    const stream = await openai.chat.completions.create({ model: 'qwenish', messages: USER, max_tokens: 8, temperature: 0, logprobs: true, top_logprobs: 3, stream: true });
    const streamed: OpenAI.Chat.Completions.ChatCompletionTokenLogprob[] = [];
    for await (const c of stream) streamed.push(...(c.choices[0]?.logprobs?.content ?? []));
    expect(streamed.map((e) => e.token)).toEqual(content.map((e) => e.token));
    streamed.forEach((e, i) => { expect(e.logprob).toBeCloseTo(content[i]?.logprob ?? 0, 4); });
    const comp = await openai.completions.create({ model: 'qwenish', prompt: 'Once upon a time', max_tokens: 6, temperature: 0, logprobs: 2 });
    const lp = comp.choices[0]?.logprobs;
    expect(lp?.tokens).toHaveLength(6);
    expect(lp?.token_logprobs).toHaveLength(6);
    expect(lp?.top_logprobs?.every((t) => Object.keys(t).length <= 2)).toBe(true);
  });

  it('logit_bias -100 bans the greedy token', async () => {
    const base = await openai.completions.create({ model: 'qwenish', prompt: 'Once upon a time', max_tokens: 1, temperature: 0, logprobs: 2 });
    const greedy = base.choices[0]?.logprobs?.tokens?.[0];
    // Ban stories260K's 512 token ids a block at a time: the block holding the greedy token changes the output.
    let banned: string | undefined;
    for (let id = 0; id < 512 && banned === undefined; id += 64) {
      const bias: Record<string, number> = {};
      for (let j = id; j < id + 64; j++) bias[String(j)] = -100;
      const r = await openai.completions.create({ model: 'qwenish', prompt: 'Once upon a time', max_tokens: 1, temperature: 0, logit_bias: bias });
      if (r.choices[0]?.text !== greedy) banned = r.choices[0]?.text;
    }
    expect(banned).toBeDefined();
    expect(banned).not.toBe(greedy);
    const bad = await openai.completions.create({ model: 'qwenish', prompt: 'x', max_tokens: 1, logit_bias: { '999999': 5 } }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(OpenAI.BadRequestError);
    expect((bad as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('logit_bias');
  });

  it('chat_template_kwargs and reasoning_effort reach the template (as llama-server passes them), refused by name where they cannot', async () => {
    type Body = OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming & { chat_template_kwargs?: Record<string, unknown> };
    const prompt = async (extra: Partial<Body>, model = 'qwen3'): Promise<number> =>
      (await openai.chat.completions.create({ model, messages: USER, max_tokens: 1, ...extra } as Body)).usage?.prompt_tokens ?? -1;
    const thinking = await prompt({});
    const off = await prompt({ chat_template_kwargs: { enable_thinking: false } });
    // The closed think block (`<think>\n\n</think>\n\n`) is in the prompt only when thinking is off.
    expect(off).toBeGreaterThan(thinking);
    expect(await prompt({ reasoning_effort: 'none' })).toBe(off);
    expect(await prompt({ reasoning_effort: 'high' })).toBe(thinking);
    const param = async (p: Promise<unknown>): Promise<unknown> => ((await p.catch((e: unknown) => e)) as InstanceType<typeof OpenAI.BadRequestError>).param;
    expect(await param(prompt({ reasoning_effort: 'extreme' as 'high' }))).toBe('reasoning_effort');
    expect(await param(prompt({ chat_template_kwargs: { enable_thinking: 'no' } }))).toBe('chat_template_kwargs.enable_thinking');
    // Completions have no template (a model without a template refuses them too: engine-local's chatTools.test.ts).
    const body = { model: 'qwen3', prompt: 'x', max_tokens: 1, reasoning_effort: 'low' };
    const completion = openai.completions.create(body as OpenAI.Completions.CompletionCreateParamsNonStreaming);
    expect(await param(completion)).toBe('reasoning_effort');
  });

  it('refuses a field it cannot honour by name', async () => {
    const e = await openai.chat.completions.create({ model: 'qwenish', messages: USER, max_tokens: 2, audio: { voice: 'alloy', format: 'mp3' }, modalities: ['text', 'audio'] }).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(OpenAI.BadRequestError);
    expect(['audio', 'modalities']).toContain((e as InstanceType<typeof OpenAI.BadRequestError>).param);
  });

  // The gateway honours `temperature` on /v1/messages; this SDK's request types do not list it, so it is spread in.
  const GREEDY = { temperature: 0 };

  it('Anthropic tool_use through /v1/messages: forced (one call), streamed and not, then a tool_result turn', async () => {
    const tool = { name: 'get_weather', description: 'Current weather', input_schema: { type: 'object' as const, properties: { city: { type: 'string' } }, required: ['city'] } };
    // Greedy: sampled, the tiny model may write a free-string argument past the token limit.
    const msg = await anthropic.messages.create({
      model: 'qwenish', max_tokens: 200, ...GREEDY, tools: [tool], tool_choice: { type: 'any', disable_parallel_tool_use: true }, messages: [{ role: 'user', content: 'Weather in Oslo?' }],
    });
    expect(msg.stop_reason).toBe('tool_use');
    const use = msg.content.find((b) => b.type === 'tool_use');
    if (use?.type !== 'tool_use') throw new Error('expected tool_use');
    expect(use.name).toBe('get_weather');
    expect(typeof (use.input as Record<string, unknown>)['city']).toBe('string');

    const stream = anthropic.messages.stream({
      model: 'qwenish', max_tokens: 200, ...GREEDY, tools: [tool], tool_choice: { type: 'tool', name: 'get_weather', disable_parallel_tool_use: true },
      messages: [{ role: 'user', content: 'Weather in Rome?' }],
    });
    const final = await stream.finalMessage();
    expect(final.stop_reason).toBe('tool_use');
    const streamedUse = final.content.find((b) => b.type === 'tool_use');
    if (streamedUse?.type !== 'tool_use') throw new Error('expected tool_use');
    expect(typeof (streamedUse.input as Record<string, unknown>)['city']).toBe('string');

    const after = await anthropic.messages.create({
      model: 'qwenish',
      max_tokens: 12,
      tools: [tool],
      messages: [
        { role: 'user', content: 'Weather in Oslo?' },
        { role: 'assistant', content: [use] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'Rainy, 9C' }] },
      ],
      tool_choice: { type: 'none' },
    });
    expect(after.usage.output_tokens).toBeGreaterThan(0);
    expect(after.content.every((b) => b.type === 'text')).toBe(true);
  });
});
