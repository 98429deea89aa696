// The chat layer end to end in the engine host: the real addon and stories260K with a
// real tool-calling template (Qwen2.5's; scripts/make-template-model.mjs writes it).
// The tiny model only ever writes stories, so a tool call that parses and matches its
// schema is there because the template's grammar forced it.

import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InferenceError, type TokenLogprob, type ToolCallDelta } from '@inference/core';
import { EngineHost, type ChunkExtras } from './hostClient.js';
import { tryLoadAddon, type NativeChatDelta } from './native.js';
import type { ChatInput, GenerateInput, GenerateParams } from './protocol.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '..', '..', '..');
const MODEL = join(repoRoot, 'models', 'stories260K-qwen-tools.gguf');
const PLAIN = join(repoRoot, 'models', 'stories260K.gguf');

const addon = tryLoadAddon();
if (addon.addon === null) throw new Error(`engine-local tests need the native addon: ${addon.reason}`);
if (!existsSync(join(here, '..', 'dist', 'host.js'))) throw new Error('build @inference/engine-local first (dist/host.js missing)');

const WEATHER = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'Current weather of a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' }, days: { type: 'integer' } },
      required: ['city', 'days'],
      additionalProperties: false,
    },
  },
};
const never = (): AbortSignal => new AbortController().signal;

interface Run {
  text: string;
  reasoning: string;
  deltas: ToolCallDelta[];
  logprobs: TokenLogprob[];
  finish: string;
  completion: number;
}

async function run(host: EngineHost, input: GenerateInput, params: GenerateParams): Promise<Run> {
  const out: Run = { text: '', reasoning: '', deltas: [], logprobs: [], finish: '', completion: 0 };
  const r = await host.generate(input, params, never(), (t: string, _n: number, x?: ChunkExtras) => {
    out.text += t;
    if (x?.reasoning !== undefined) out.reasoning += x.reasoning;
    if (x?.toolCalls !== undefined) out.deltas.push(...x.toolCalls);
    if (x?.logprobs !== undefined) out.logprobs.push(...x.logprobs);
  });
  out.finish = r.finishReason;
  out.completion = r.completionTokens;
  return out;
}

/** Tool calls joined from their streamed deltas, as a client does. */
function joined(deltas: ToolCallDelta[]): { id: string; name: string; arguments: string }[] {
  const calls: { id: string; name: string; arguments: string }[] = [];
  for (const d of deltas) {
    const c = (calls[d.index] ??= { id: '', name: '', arguments: '' });
    if (d.id !== undefined) c.id = d.id;
    if (d.name !== undefined) c.name = d.name;
    c.arguments += d.argumentsDelta;
  }
  return calls;
}

/** The ids of the tokens with these bytes (stories260K's vocabulary has 512 tokens; a byte token may share a piece). */
let idsOf: (bytes: number[]) => number[] = () => [];

const ask = (extra: Partial<ChatInput> = {}): ChatInput => ({ messages: [{ role: 'user', content: 'What is the weather in Paris?' }], ...extra });

describe('chat templates, tool calls and logprobs (stories260K with the Qwen2.5 template)', () => {
  let host: EngineHost;
  beforeAll(async () => {
    execFileSync(process.execPath, [join(repoRoot, 'scripts', 'make-template-model.mjs')], { stdio: 'ignore' });
    // The Qwen system prompt with tools is ~600 tokens of stories260K's small vocabulary.
    host = await EngineHost.start({ modelPath: MODEL, contextSize: 8192, maxSequences: 4, gpuLayers: 0, threads: 1, batchTokens: 256 });
    const a = addon.addon;
    if (a === null) throw new Error('no addon');
    const e = new a.Engine({ modelPath: MODEL, contextSize: 64, maxSequences: 1, gpuLayers: 0, threads: 1, batchTokens: 16, embeddings: false }, () => undefined);
    await e.ready();
    const pieces = Array.from({ length: e.modelInfo().nVocab }, (_, i) => e.detokenize(Int32Array.of(i)));
    e.close();
    idsOf = (bytes) => pieces.flatMap((p, i) => (p === Buffer.from(bytes).toString('utf8') ? [i] : []));
  }, 120_000);
  afterAll(async () => {
    await host.close();
  });

  it("reports the model's own template", () => {
    expect(host.info).toMatchObject({ templateSource: 'model', templateName: 'tokenizer.chat_template', templateTools: true });
  });

  it('forces a schema-valid call with tool_choice required, streamed as deltas that join to it', async () => {
    for (const seed of [1, 2, 3]) {
      const r = await run(host, ask({ tools: [WEATHER], toolChoice: 'required', parallelToolCalls: false }), { stop: [], temperature: 1, seed, maxTokens: 400 });
      expect(r.finish).toBe('tool_calls');
      const calls = joined(r.deltas);
      expect(calls).toHaveLength(1);
      expect(calls[0]?.name).toBe('get_weather');
      expect(calls[0]?.id).toMatch(/^call_[A-Za-z0-9]{24}$/);
      const args = JSON.parse(calls[0]?.arguments ?? '') as Record<string, unknown>;
      expect(Object.keys(args).sort()).toEqual(['city', 'days']);
      expect(typeof args['city']).toBe('string');
      expect(Number.isInteger(args['days'])).toBe(true);
      expect(r.text).toBe(''); // the call is not also sent as text
    }
  });

  it('with tool_choice auto the grammar waits for the tool-call marker: a story stays content', async () => {
    const r = await run(host, ask({ tools: [WEATHER], toolChoice: 'auto' }), { stop: [], temperature: 0, maxTokens: 30 });
    expect(r.deltas).toEqual([]);
    expect(r.text.length).toBeGreaterThan(0);
    expect(r.finish).not.toBe('tool_calls');
  });

  it('renders a tool loop (assistant tool call + tool result) and answers after it', async () => {
    const r = await run(host, {
      messages: [
        { role: 'user', content: 'What is the weather in Paris?' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris","days":1}' } }] },
        { role: 'tool', content: 'Sunny, 21C', tool_call_id: 'call_1' },
      ],
      tools: [WEATHER],
      toolChoice: 'none',
    }, { stop: [], temperature: 0, maxTokens: 20 });
    expect(r.deltas).toEqual([]);
    expect(r.completion).toBeGreaterThan(0);
  });

  it('tools with a response format under auto: the answer is JSON that fits the schema, or a schema-valid call', async () => {
    const schema = JSON.stringify({ type: 'object', properties: { sky: { enum: ['sunny', 'rainy'] } }, required: ['sky'], additionalProperties: false });
    const params = { stop: [], temperature: 0, maxTokens: 400, jsonSchema: schema };
    // Arguments of enums only: the bias below cannot run into a free string.
    const parameters = { type: 'object', properties: { city: { enum: ['Paris', 'Oslo'] } }, required: ['city'] };
    const city = { type: 'function' as const, function: { name: 'pick_city', parameters } };
    const tools = ask({ tools: [city], toolChoice: 'auto', parallelToolCalls: false });
    // Greedy, the tiny model starts the JSON (its `{` outweighs the `<` of the tool-call marker).
    const json = await run(host, tools, params);
    expect(json.finish).toBe('stop');
    expect(json.deltas).toEqual([]);
    const answer = JSON.parse(json.text) as Record<string, unknown>;
    expect(Object.keys(answer)).toEqual(['sky']);
    expect(['sunny', 'rainy']).toContain(answer['sky']);
    // Favoured by a logit bias, the marker's first token is let through by the grammar, and a schema-valid call follows.
    const marker = (await host.tokenize('<')).at(-1) ?? -1;
    const call = await run(host, tools, { ...params, logitBias: [[marker, 30]] });
    expect(call.finish).toBe('tool_calls');
    expect(call.text).toBe('');
    const calls = joined(call.deltas);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.name).toBe('pick_city');
    expect(['Paris', 'Oslo']).toContain((JSON.parse(calls[0]?.arguments ?? '') as Record<string, unknown>)['city']);
    // A forced call wins over the format (the format shapes a later answer).
    const forced = await run(host, ask({ tools: [WEATHER], toolChoice: 'required', parallelToolCalls: false }), params);
    expect(forced.finish).toBe('tool_calls');
  }, 120_000);

  it('reports logprobs: one entry per token, the greedy token first among its alternatives', async () => {
    const r = await run(host, ask(), { stop: [], temperature: 0, maxTokens: 12, logprobs: 5 });
    expect(r.logprobs.length).toBe(r.completion);
    for (const e of r.logprobs) {
      expect(e.logprob).toBeLessThanOrEqual(0);
      expect(e.topLogprobs).toHaveLength(5);
      expect(e.topLogprobs[0]?.token).toBe(e.token);
      expect(e.topLogprobs[0]?.logprob).toBeCloseTo(e.logprob, 6);
      const probs = e.topLogprobs.map((t) => Math.exp(t.logprob));
      for (let i = 1; i < probs.length; i++) expect(probs[i]).toBeLessThanOrEqual(probs[i - 1] ?? 1);
      expect(probs.reduce((a, p) => a + p, 0)).toBeLessThanOrEqual(1 + 1e-5);
      expect(Buffer.from(e.bytes ?? []).toString('utf8').startsWith(e.token)).toBe(true);
    }
    expect(r.logprobs.map((e) => Buffer.from(e.bytes ?? []).toString('utf8')).join('')).toBe(r.text);
  });

  it('logit_bias -100 bans the greedy token; an id outside the vocabulary is refused by name', async () => {
    const first = await run(host, ask(), { stop: [], temperature: 0, maxTokens: 1, logprobs: 2 });
    const greedy = first.logprobs[0];
    expect(greedy).toBeDefined();
    const banned = await run(host, ask(), { stop: [], temperature: 0, maxTokens: 1, logprobs: 2, logitBias: idsOf(greedy?.bytes ?? []).map((id): [number, number] => [id, -Infinity]) });
    expect(banned.logprobs[0]?.token).not.toBe(greedy?.token);
    expect(banned.logprobs[0]?.token).toBe(greedy?.topLogprobs[1]?.token);
    const err = await run(host, ask(), { stop: [], maxTokens: 1, logitBias: [[10_000_000, 1]] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InferenceError);
    expect(err).toMatchObject({ kind: 'invalid_request', param: 'logit_bias' });
  });

  it('without max tokens a sequence fills its context and ends with length; a prompt that alone fills it is refused', async () => {
    const prompt = await host.tokenize('Once upon a time');
    // End of generation banned: only the full context can end it.
    const r = await run(host, { prompt: 'Once upon a time' }, { stop: [], temperature: 0, logitBias: [[host.info.eos, -Infinity]] });
    expect(r.finish).toBe('length');
    expect(r.completion).toBe(host.info.sequenceContext - prompt.length);
    const err = await run(host, { prompt: 'word '.repeat(2100) }, { stop: [] }).catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'context_length_exceeded', param: 'prompt' });
  }, 120_000);
});

describe('ChatTemplates and ChatParser (the addon, in process)', () => {
  it('renders tools, an assistant tool call and a tool result with the model template', async () => {
    const a = addon.addon;
    if (a === null) throw new Error('no addon');
    const e = new a.Engine({ modelPath: MODEL, contextSize: 64, maxSequences: 1, gpuLayers: 0, threads: 1, batchTokens: 16, embeddings: false }, () => undefined);
    await e.ready();
    try {
      const t = e.chatTemplates();
      expect(t.supportsTools()).toBe(true);
      const p = t.apply({
        messages: JSON.stringify([
          { role: 'user', content: 'Weather?' },
          { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo","days":2}' } }] },
          { role: 'tool', tool_call_id: 'c1', content: 'Rain' },
        ]),
        tools: JSON.stringify([WEATHER]),
        toolChoice: 'auto',
      });
      expect(p.prompt).toContain('<tools>');
      expect(p.prompt).toContain('"name": "get_weather"');
      expect(p.prompt).toContain('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo", "days": 2}}\n</tool_call>');
      expect(p.prompt).toContain('<tool_response>\nRain\n</tool_response>');
      expect(p.prompt.endsWith('<|im_start|>assistant\n')).toBe(true);
      expect(p.grammarLazy).toBe(true);
      expect(p.grammarTriggers.length).toBeGreaterThan(0);
      const forced = t.apply({ messages: JSON.stringify([{ role: 'user', content: 'Weather?' }]), tools: JSON.stringify([WEATHER]), toolChoice: 'required', parallelToolCalls: true });
      expect(forced.grammarLazy).toBe(false);
      expect(forced.grammar).not.toBe('');
      // The call comes first: no free text may precede it (llama.cpp's grammar allows some).
      expect(forced.grammar).toMatch(/^root ::= "<\|im_start\|>assistant\\n" space tool-calls$/m);
      expect(forced.grammar).toMatch(/^tool-calls ::= \(tool-call space\)\+$/m);
      const single = t.apply({ messages: JSON.stringify([{ role: 'user', content: 'Weather?' }]), tools: JSON.stringify([WEATHER]), toolChoice: 'required', parallelToolCalls: false });
      expect(single.grammar).toMatch(/^tool-calls ::= tool-call space$/m);
      expect(() => t.apply({ messages: '[{"role":"user"' })).toThrow();

      // The parser: content, then a tool call streamed as deltas (name first, arguments after).
      const parser = new a.ChatParser({ format: p.format, generationPrompt: p.generationPrompt, parser: p.parser, parseToolCalls: true, continuation: false });
      const out: NativeChatDelta[] = [];
      for (const piece of ['Let me check.', '\n<tool_call>\n{"name": "get_', 'weather", "arguments": {"city": "Pa', 'ris", "days": 3}}\n</tool_call>']) {
        out.push(...parser.push(piece, true));
      }
      out.push(...parser.push('', false));
      expect(out.map((d) => d.content ?? '').join('').trim()).toBe('Let me check.');
      const tool = out.filter((d) => d.toolIndex === 0);
      expect(tool[0]?.name).toBe('get_weather');
      expect(tool[0]?.id).toMatch(/^call_/);
      expect(JSON.parse(tool.map((d) => d.arguments ?? '').join(''))).toEqual({ city: 'Paris', days: 3 });
      expect(parser.message().toolCalls).toHaveLength(1);
    } finally {
      e.close();
    }
  });
});

describe('a thinking template given as the source (engine.chatTemplate as a file)', () => {
  it('separates reasoning from the answer, streamed as reasoning deltas', async () => {
    const a = addon.addon;
    if (a === null) throw new Error('no addon');
    const e = new a.Engine({ modelPath: PLAIN, contextSize: 64, maxSequences: 1, gpuLayers: 0, threads: 1, batchTokens: 16, embeddings: false }, () => undefined);
    await e.ready();
    try {
      const t = e.chatTemplates({ source: readFileSync(join(repoRoot, 'native', 'vendor', 'llama.cpp', 'models', 'templates', 'Qwen-QwQ-32B.jinja'), 'utf8') });
      const p = t.apply({ messages: JSON.stringify([{ role: 'user', content: 'Hi' }]) });
      expect(p.prompt.endsWith('<|im_start|>assistant\n<think>\n')).toBe(true);
      const parser = new a.ChatParser({ format: p.format, generationPrompt: p.generationPrompt, parser: p.parser, parseToolCalls: true, continuation: false });
      const deltas = ['Let me', ' think.</think>', '\n\nHello', ' there'].flatMap((piece) => parser.push(piece, true));
      deltas.push(...parser.push('', false));
      expect(deltas.map((d) => d.reasoning ?? '').join('').trim()).toBe('Let me think.');
      expect(deltas.map((d) => d.content ?? '').join('').trim()).toBe('Hello there');
      expect(parser.message()).toMatchObject({ reasoning: expect.stringContaining('Let me think.') as unknown, toolCalls: [] });
    } finally {
      e.close();
    }
  });
});

describe('template inputs: chat_template_kwargs and reasoning_effort (as llama-server passes them)', () => {
  it('reach the Jinja template: enable_thinking false and effort none close the think block, an effort is rendered', async () => {
    const a = addon.addon;
    if (a === null) throw new Error('no addon');
    const options = { modelPath: PLAIN, contextSize: 64, maxSequences: 1, gpuLayers: 0, threads: 1, batchTokens: 16, embeddings: false };
    const e = new a.Engine(options, () => undefined);
    await e.ready();
    try {
      const templates = join(repoRoot, 'native', 'vendor', 'llama.cpp', 'models', 'templates');
      const qwen3 = e.chatTemplates({ source: readFileSync(join(templates, 'Qwen-Qwen3-0.6B.jinja'), 'utf8') });
      const messages = JSON.stringify([{ role: 'user', content: 'Hi' }]);
      expect(qwen3.apply({ messages }).prompt.endsWith('<|im_start|>assistant\n')).toBe(true);
      const off = qwen3.apply({ messages, templateKwargs: JSON.stringify({ enable_thinking: false }) });
      expect(off.prompt.endsWith('<|im_start|>assistant\n<think>\n\n</think>\n\n')).toBe(true);
      expect(off.generationPrompt.endsWith('</think>\n\n')).toBe(true);
      expect(qwen3.apply({ messages, reasoningEffort: 'none' }).prompt).toBe(off.prompt);
      expect(qwen3.apply({ messages, reasoningEffort: 'high' }).prompt.endsWith('<|im_start|>assistant\n')).toBe(true);
      expect(() => qwen3.apply({ messages, templateKwargs: JSON.stringify({ enable_thinking: 'no' }) })).toThrow(/enable_thinking/);
      expect(() => qwen3.apply({ messages, templateKwargs: '[1]' })).toThrow(/chat_template_kwargs/);
      const oss = e.chatTemplates({ source: readFileSync(join(templates, 'openai-gpt-oss-120b.jinja'), 'utf8') });
      expect(oss.apply({ messages }).prompt).toContain('Reasoning: medium');
      expect(oss.apply({ messages, reasoningEffort: 'high' }).prompt).toContain('Reasoning: high');
      expect(oss.apply({ messages, templateKwargs: JSON.stringify({ reasoning_effort: 'low' }) }).prompt).toContain('Reasoning: low');
    } finally {
      e.close();
    }
  });
});

describe('a model without a template', () => {
  let host: EngineHost;
  beforeAll(async () => {
    host = await EngineHost.start({ modelPath: PLAIN, contextSize: 512, maxSequences: 1, gpuLayers: 0, threads: 1, batchTokens: 128 });
  }, 120_000);
  afterAll(async () => {
    await host.close();
  });

  it('uses the fallback template and refuses tools by name', async () => {
    expect(host.info).toMatchObject({ templateSource: 'fallback', templateTools: false });
    const err = await run(host, ask({ tools: [WEATHER] }), { stop: [], maxTokens: 4 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'invalid_request', param: 'tools' });
    const ok = await run(host, ask({ tools: [WEATHER], toolChoice: 'none' }), { stop: [], maxTokens: 4 });
    expect(ok.completion).toBe(4);
    const kwargs = await run(host, ask({ templateKwargs: { enable_thinking: false } }), { stop: [], maxTokens: 4 }).catch((e: unknown) => e);
    expect(kwargs).toMatchObject({ kind: 'invalid_request', param: 'chat_template_kwargs' });
    const effort = await run(host, ask({ reasoningEffort: 'low' }), { stop: [], maxTokens: 4 }).catch((e: unknown) => e);
    expect(effort).toMatchObject({ kind: 'invalid_request', param: 'reasoning_effort' });
  });
});
