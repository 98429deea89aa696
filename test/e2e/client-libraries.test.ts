// Ordinary calls of the client libraries people build on, against a remote OpenAI
// deployment (the mock upstream): the Vercel AI SDK (@ai-sdk/openai, which calls the
// Responses API, and @ai-sdk/openai-compatible on chat completions) with generateText
// and streamText and a tool loop, and the OpenAI Agents SDK over the Responses API and
// over chat completions with a tool loop. No token limit is set anywhere.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateText, stepCountIs, streamText, tool } from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { Agent, OpenAIProvider, Runner, tool as agentTool } from '@openai/agents';
import { z } from 'zod';
import { DEFAULT_COMPLETION_WORDS, SENTENCE_WORDS } from '@inference/mock-upstream';
import { type Harness, metricValue, startHarness } from '../support/harness.js';

let h: Harness;
const calls: string[] = [];

beforeAll(async () => {
  h = await startHarness({ replicas: 1 });
});
afterAll(async () => {
  await h.close();
});

/** Requests the gateway served on one endpoint (the libraries pick the API; this shows which they called). */
function served(endpoint: string): Promise<number> {
  return metricValue(h.url, 'inference_gateway_requests_total', { deployment: 'gpt', endpoint, outcome: 'ok' });
}

/** The mock answers every question with its sentence, and asks for get_weather when the question is about weather. */
const SENTENCE = Array.from({ length: DEFAULT_COMPLETION_WORDS }, (_, i) => SENTENCE_WORDS[i % SENTENCE_WORDS.length]).join(' ');

const aiTools = {
  get_weather: tool({
    description: 'Current weather in a city',
    inputSchema: z.object({ city: z.string() }),
    execute: ({ city }) => {
      calls.push(city);
      return Promise.resolve({ city, temperature: 21 });
    },
  }),
};

describe('Vercel AI SDK', () => {
  const openai = (): ReturnType<typeof createOpenAI> => createOpenAI({ baseURL: `${h.url}/v1`, apiKey: 'unused' });
  const compatible = (): ReturnType<typeof createOpenAICompatible> => createOpenAICompatible({ name: 'gateway', baseURL: `${h.url}/v1`, apiKey: 'unused' });

  it('@ai-sdk/openai (Responses API): generateText, then a tool loop to a text answer', async () => {
    const before = await served('responses');
    const plain = await generateText({ model: openai()('gpt'), prompt: 'Say something' });
    expect(plain.text).toBe(SENTENCE);
    expect(await served('responses')).toBe(before + 1);
    calls.length = 0;
    const r = await generateText({ model: openai()('gpt'), prompt: 'What is the weather in Paris?', tools: aiTools, stopWhen: stepCountIs(4) });
    expect(calls).toEqual(['Paris']);
    expect(r.steps.length).toBe(2);
    expect(r.steps[0]?.toolCalls.map((c) => c.toolName)).toEqual(['get_weather']);
    expect(r.text).toBe(SENTENCE);
  });

  it('@ai-sdk/openai (Responses API): streamText with a tool loop', async () => {
    calls.length = 0;
    const s = streamText({ model: openai()('gpt'), prompt: 'Weather in Paris?', tools: aiTools, stopWhen: stepCountIs(4) });
    let text = '';
    for await (const t of s.textStream) text += t;
    expect(calls).toEqual(['Paris']);
    expect(text).toBe(SENTENCE);
    expect((await s.steps).length).toBe(2);
  });

  it('@ai-sdk/openai-compatible (chat completions): generateText and streamText with a tool loop', async () => {
    calls.length = 0;
    const before = await served('chat');
    const r = await generateText({ model: compatible()('gpt'), prompt: 'What is the weather in Paris?', tools: aiTools, stopWhen: stepCountIs(4) });
    expect(calls).toEqual(['Paris']);
    expect(r.text).toBe(SENTENCE);
    expect(await served('chat')).toBe(before + 2);
    calls.length = 0;
    const s = streamText({ model: compatible()('gpt'), prompt: 'Weather in Paris?', tools: aiTools, stopWhen: stepCountIs(4) });
    let text = '';
    for await (const t of s.textStream) text += t;
    expect(calls).toEqual(['Paris']);
    expect(text).toBe(SENTENCE);
  });
});

describe('OpenAI Agents SDK', () => {
  const weather = agentTool({
    name: 'get_weather',
    description: 'Current weather in a city',
    parameters: z.object({ city: z.string() }),
    execute: ({ city }) => {
      calls.push(city);
      return Promise.resolve(`21C in ${city}`);
    },
  });

  it.each([true, false])('runs an agent with a tool loop (useResponses: %s), plain and streamed', async (useResponses) => {
    const runner = new Runner({ modelProvider: new OpenAIProvider({ baseURL: `${h.url}/v1`, apiKey: 'unused', useResponses }), tracingDisabled: true });
    const agent = new Agent({ name: 'forecaster', instructions: 'Answer with the weather.', model: 'gpt', tools: [weather] });
    calls.length = 0;
    const endpoint = useResponses ? 'responses' : 'chat';
    const before = await served(endpoint);
    const r = await runner.run(agent, 'What is the weather in Paris?');
    expect(calls).toEqual(['Paris']);
    expect(await served(endpoint)).toBe(before + 2);
    expect(r.finalOutput).toBe(SENTENCE);
    calls.length = 0;
    const s = await runner.run(agent, 'What is the weather in Paris?', { stream: true });
    let text = '';
    for await (const chunk of s.toTextStream()) text += chunk;
    await s.completed;
    expect(calls).toEqual(['Paris']);
    expect(text).toBe(SENTENCE);
    expect(s.finalOutput).toBe(SENTENCE);
  });
});
