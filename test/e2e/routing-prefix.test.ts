// Prefix-aware routing end to end, on two local replicas of a real GGUF model:
// requests that share a long prompt prefix land on the replica that served it (and
// reuse its cached prompt tokens), where round robin alternates; a burst of one
// prefix is spread by the load slack instead of piling onto the holder.

import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Server, parseConfig, serve } from '@inference/gateway';
import { metricValue } from '../support/harness.js';

const MODEL = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'models', 'stories260K.gguf');
const ENGINE = { contextSize: 2048, maxSequences: 4, threads: 1 };

let server: Server;
let client: OpenAI;

beforeAll(async () => {
  server = await serve(parseConfig({
    server: { port: 0 },
    deployments: [
      { name: 'pfx', runtime: 'llama', model: MODEL, replicas: 2, engine: ENGINE, routing: { policy: 'prefix', prefixLoadSlack: 1 } },
      { name: 'rr', runtime: 'llama', model: MODEL, replicas: 2, engine: ENGINE, routing: { policy: 'round_robin' } },
    ],
  }));
  await server.runtime.settled();
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});
afterAll(async () => {
  await server.close();
});

/** Requests served per replica of a deployment (0 for one without any yet), from inference_replica_requests_total. */
async function perReplica(deployment: string): Promise<Map<string, number>> {
  const out = new Map<string, number>((await server.runtime.get(deployment)).replicas.map((r) => [r.id, 0]));
  const text = await (await fetch(`${server.url}/metrics`)).text();
  for (const line of text.split('\n')) {
    if (!line.startsWith('inference_replica_requests_total{') || !line.includes(`deployment="${deployment}"`)) continue;
    const replica = /replica="([^"]+)"/.exec(line)?.[1];
    if (replica !== undefined) out.set(replica, Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return out;
}

function delta(before: Map<string, number>, after: Map<string, number>): number[] {
  return [...after].map(([id, n]) => n - (before.get(id) ?? 0)).sort((a, b) => b - a);
}

const STORY = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the sun with her big red ball. ';
const system = (tag: string): string => `${tag}. ${STORY.repeat(8)}`;

async function ask(model: string, systemPrompt: string, user: string, maxTokens = 8): Promise<OpenAI.Chat.Completions.ChatCompletion> {
  return client.chat.completions.create({
    model, max_tokens: maxTokens, temperature: 0,
    messages: [{ role: 'system', content: systemPrompt }, { role: 'user', content: user }],
  });
}

describe('prefix-aware routing (local replicas)', () => {
  it('sends requests sharing a prefix to the replica that holds it, which reuses the cached prompt', async () => {
    const reps = await server.runtime.get('pfx');
    expect(reps.spec.routing).toEqual({ policy: 'prefix', prefixLoadSlack: 1, prefixFreeSlot: false });
    expect(reps.replicas.filter((r) => r.state === 'serving')).toHaveLength(2);
    const cachedBefore = await metricValue(server.url, 'inference_tokens_input_cached_total', { deployment: 'pfx' });
    const hitsBefore = await metricValue(server.url, 'inference_routing_prefix_hits_total', { deployment: 'pfx' });
    for (const tag of ['Story one', 'Story two']) {
      const before = await perReplica('pfx');
      const cached: number[] = [];
      for (let i = 0; i < 6; i++) {
        const r = await ask('pfx', system(tag), `Then she saw a bird number ${i}.`);
        cached.push(r.usage?.prompt_tokens_details?.cached_tokens ?? 0);
      }
      // One replica served all six, one served none: idle replicas tie on load, so
      // least-load alone would pick at random.
      expect(delta(before, await perReplica('pfx'))).toEqual([6, 0]);
      // After the first, each request found the shared prompt in its replica's cache.
      expect(cached.slice(1).every((c) => c > 0)).toBe(true);
    }
    expect(await metricValue(server.url, 'inference_routing_prefix_hits_total', { deployment: 'pfx' }) - hitsBefore).toBe(10);
    expect(await metricValue(server.url, 'inference_tokens_input_cached_total', { deployment: 'pfx' })).toBeGreaterThan(cachedBefore);
  });

  it('round robin alternates the same requests over both replicas', async () => {
    const before = await perReplica('rr');
    for (let i = 0; i < 6; i++) await ask('rr', system('Story three'), `Then she saw a cat number ${i}.`);
    expect(delta(before, await perReplica('rr'))).toEqual([3, 3]);
    expect(await metricValue(server.url, 'inference_routing_decisions_total', { deployment: 'rr', policy: 'round_robin', outcome: 'none' })).toBeGreaterThanOrEqual(6);
  });

  it('spreads a burst of one prefix over both replicas once the holder is past the load slack', async () => {
    const spillsBefore = await metricValue(server.url, 'inference_routing_decisions_total', { deployment: 'pfx', outcome: 'spill' });
    const before = await perReplica('pfx');
    // All picks happen as the requests arrive, long before 8 generations of 150
    // tokens are done, so the holder's load grows with each pick.
    const out = await Promise.all(Array.from({ length: 8 }, (_, i) => ask('pfx', system('Story four'), `Then a dog came ${i}.`, 150)));
    expect(out.every((r) => (r.choices[0]?.message.content ?? '').length > 0)).toBe(true);
    const d = delta(before, await perReplica('pfx'));
    expect(d.reduce((a, b) => a + b, 0)).toBe(8);
    // Slack 1: neither replica can take more than its share plus the slack's worth.
    expect(d[1]).toBeGreaterThanOrEqual(3);
    expect(await metricValue(server.url, 'inference_routing_decisions_total', { deployment: 'pfx', outcome: 'spill' })).toBeGreaterThan(spillsBefore);
  });
});
