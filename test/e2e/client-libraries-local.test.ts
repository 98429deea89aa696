// The client libraries of client-libraries.test.ts against a local deployment of a model
// with a real tool-calling chat template (stories260K with Qwen2.5's template, written
// by scripts/make-template-model.mjs): the Vercel AI SDK over the Responses API and chat
// completions, the OpenAI Agents SDK over both, and `openai`'s responses.create and
// responses.stream. The tiny model's words are nonsense, so these check structure: a
// forced first tool call whose arguments satisfy the schema (the engine constrains
// them), the tool result fed back, and a text answer to end the loop.

import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateText, stepCountIs, streamText, tool } from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { Agent, OpenAIProvider, Runner, tool as agentTool } from '@openai/agents';
import OpenAI from 'openai';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Server, parseConfig, serve } from '@inference/gateway';
import { metricValue } from '../support/harness.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const MODEL = join(root, 'models', 'stories260K-qwen-tools.gguf');
/** Room for the forced call's arguments and a short answer; a tiny model fills it fast. */
const LIMIT = 200;

let server: Server;
const calls: string[] = [];

beforeAll(async () => {
  execFileSync(process.execPath, [join(root, 'scripts', 'make-template-model.mjs')], { stdio: 'ignore' });
  server = await serve(parseConfig({
    server: { port: 0 },
    deployments: [{ name: 'qwenish', runtime: 'llama', model: MODEL, replicas: 1, engine: { contextSize: 4096, maxSequences: 2, threads: 1 } }],
  }));
  await server.runtime.settled();
}, 120_000);
afterAll(async () => {
  await server.close();
});

function served(endpoint: string): Promise<number> {
  return metricValue(server.url, 'inference_gateway_requests_total', { deployment: 'qwenish', endpoint, outcome: 'ok' });
}

/** An enum keeps the tiny model's constrained arguments short (a free string may run to the token limit). */
const CITY = z.enum(['Paris', 'London']);

const aiTools = {
  get_weather: tool({
    description: 'Current weather in a city',
    inputSchema: z.object({ city: CITY }),
    execute: ({ city }) => {
      calls.push(city);
      return Promise.resolve({ city, temperature: 21 });
    },
  }),
};
/**
 * The first step must call the tool; after its result, the model answers in text. One call per
 * turn: with parallel calls allowed the grammar admits more, and a tiny model keeps adding them.
 */
const loop = {
  tools: aiTools, stopWhen: stepCountIs(3), maxOutputTokens: LIMIT, temperature: 0,
  prepareStep: ({ stepNumber }: { stepNumber: number }) => ({ toolChoice: stepNumber === 0 ? ('required' as const) : ('none' as const) }),
  providerOptions: { openai: { parallelToolCalls: false }, local: { parallel_tool_calls: false } },
};

describe('Vercel AI SDK on a local deployment', () => {
  const openai = (): ReturnType<typeof createOpenAI> => createOpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused' });
  const compatible = (): ReturnType<typeof createOpenAICompatible> => createOpenAICompatible({ name: 'local', baseURL: `${server.url}/v1`, apiKey: 'unused' });

  it('@ai-sdk/openai (Responses API): generateText and streamText with a tool loop', async () => {
    const before = await served('responses');
    calls.length = 0;
    const r = await generateText({ model: openai()('qwenish'), prompt: 'What is the weather in Paris?', ...loop });
    expect(calls.filter((c) => c === 'Paris' || c === 'London')).toHaveLength(1);
    expect(r.steps.map((s) => s.finishReason)).toEqual(['tool-calls', expect.stringMatching(/^(stop|length)$/)]);
    expect(r.text.length).toBeGreaterThan(0);
    calls.length = 0;
    const s = streamText({ model: openai()('qwenish'), prompt: 'What is the weather in Paris?', ...loop });
    let text = '';
    for await (const t of s.textStream) text += t;
    expect(calls.filter((c) => c === 'Paris' || c === 'London')).toHaveLength(1);
    expect(text.length).toBeGreaterThan(0);
    expect(await served('responses')).toBe(before + 4);
  });

  it('@ai-sdk/openai-compatible (chat completions): generateText with a tool loop', async () => {
    calls.length = 0;
    const r = await generateText({ model: compatible()('qwenish'), prompt: 'What is the weather in Paris?', ...loop });
    expect(calls.filter((c) => c === 'Paris' || c === 'London')).toHaveLength(1);
    expect(r.steps).toHaveLength(2);
    expect(r.text.length).toBeGreaterThan(0);
  });
});

describe('OpenAI Agents SDK on a local deployment', () => {
  const weather = agentTool({
    name: 'get_weather',
    description: 'Current weather in a city',
    parameters: z.object({ city: CITY }),
    execute: ({ city }) => {
      calls.push(city);
      return Promise.resolve(`21C in ${city}`);
    },
  });

  const runner = (useResponses: boolean): Runner =>
    new Runner({ modelProvider: new OpenAIProvider({ baseURL: `${server.url}/v1`, apiKey: 'unused', useResponses }), tracingDisabled: true });

  it.each([true, false])('runs an agent loop to a structured final answer: tool call, tool result, answer (useResponses: %s)', async (useResponses) => {
    // The forced choice resets to auto after the tool ran (the SDK's default). The agent's output type is
    // sent as a JSON schema (Responses `text.format`, chat `response_format`) beside the tools, so the
    // model may call again or answer JSON that fits the schema; the grammar ends that answer, and the
    // reply is `completed` without any token limit (docs/responses.md, "Agents").
    const agent = new Agent({
      name: 'forecaster', instructions: 'Answer with the weather.', model: 'qwenish', tools: [weather],
      outputType: z.object({ city: CITY, sky: z.enum(['sunny', 'rainy']) }),
      modelSettings: { toolChoice: 'required', parallelToolCalls: false, temperature: 0 },
    });
    calls.length = 0;
    const before = await served(useResponses ? 'responses' : 'chat');
    const r = await runner(useResponses).run(agent, 'What is the weather in Paris?');
    expect(calls.filter((c) => c === 'Paris' || c === 'London')).toHaveLength(1);
    expect(r.finalOutput).toEqual({ city: expect.stringMatching(/^(Paris|London)$/) as unknown, sky: expect.stringMatching(/^(sunny|rainy)$/) as unknown });
    expect(r.newItems.map((i) => i.type)).toEqual(['tool_call_item', 'tool_call_output_item', 'message_output_item']);
    expect(await served(useResponses ? 'responses' : 'chat')).toBe(before + 2);
  });

  it('a text answer cut by max_output_tokens is `incomplete`, as OpenAI reports it, and the SDK stops the run with that state', async () => {
    const agent = new Agent({
      name: 'forecaster', instructions: 'Answer with the weather.', model: 'qwenish', tools: [weather],
      modelSettings: { toolChoice: 'required', parallelToolCalls: false, maxTokens: LIMIT, temperature: 0 },
    });
    calls.length = 0;
    const err = await runner(true).run(agent, 'What is the weather in Paris?').catch((e: unknown) => e);
    expect(calls).toHaveLength(1);
    expect(String(err)).toMatch(/unsuccessful terminal state "response\.incomplete"/);
  });
});

describe('openai responses.create and responses.stream on a local deployment', () => {
  const client = (): OpenAI => new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  const WEATHER = { type: 'function' as const, name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string', enum: ['Paris', 'London'] } }, required: ['city'], additionalProperties: false }, strict: true };

  it('answers text with logprobs, and a forced call whose arguments fit the schema, streamed and not', async () => {
    const r = await client().responses.create({ model: 'qwenish', input: 'Once upon a time', max_output_tokens: 8, top_logprobs: 2 });
    expect(r.status).toBe('incomplete');
    expect(r.usage?.output_tokens).toBe(8);
    const part = r.output[0]?.type === 'message' ? r.output[0].content[0] : undefined;
    expect(part?.type === 'output_text' ? part.logprobs?.length : 0).toBe(8);
    const call = await client().responses.create({ model: 'qwenish', input: 'Weather in Paris?', tools: [WEATHER], tool_choice: 'required', parallel_tool_calls: false, max_output_tokens: LIMIT, temperature: 0 });
    const fc = call.output.find((i) => i.type === 'function_call');
    if (fc?.type !== 'function_call') throw new Error('expected a function call');
    expect(['Paris', 'London']).toContain((JSON.parse(fc.arguments) as { city: unknown }).city);
    const stream = client().responses.stream({ model: 'qwenish', input: 'Weather in Paris?', tools: [WEATHER], tool_choice: 'required', parallel_tool_calls: false, max_output_tokens: LIMIT, temperature: 0 });
    let args = '';
    for await (const ev of stream) if (ev.type === 'response.function_call_arguments.delta') args += ev.delta;
    const final = await stream.finalResponse();
    expect(final.status).toBe('completed');
    expect(args).toBe(fc.arguments);
  });
});
