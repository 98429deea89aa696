// Metrics of a local GGUF deployment through GET /metrics: batch occupancy is the
// last decode step's sequences over engine.maxSequences, concurrent streams share
// steps, and streamed tokens feed the inter-token latency histogram.

import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Server, parseConfig, serve } from '@inference/gateway';
import { metricValue } from '../support/harness.js';

const MODEL = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'models', 'stories260K.gguf');
const MAX_SEQUENCES = 4;

let server: Server;
let client: OpenAI;

beforeAll(async () => {
  server = await serve(parseConfig({
    server: { port: 0 },
    deployments: [{ name: 'tiny', runtime: 'llama', model: MODEL, replicas: 1, engine: { contextSize: 2048, maxSequences: MAX_SEQUENCES, threads: 1 } }],
  }));
  await server.runtime.settled();
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});
afterAll(async () => {
  await server.close();
});

describe('local engine metrics', () => {
  it('reports batch occupancy as step sequences over maxSequences, and inter-token gaps of streamed tokens', async () => {
    const streams = await Promise.all(Array.from({ length: MAX_SEQUENCES }, (_, i) =>
      client.completions.create({ model: 'tiny', prompt: `Once upon a time ${i}`, max_tokens: 120, stream: true })));
    const texts = await Promise.all(streams.map(async (s) => {
      let t = '';
      for await (const c of s) t += c.choices[0]?.text ?? '';
      return t;
    }));
    expect(texts.every((t) => t.length > 0)).toBe(true);

    // The engine reports its stats every 250 ms; wait until it has reported a step shared by several sequences.
    const labels = { deployment: 'tiny' };
    const deadline = Date.now() + 30_000;
    while ((await metricValue(server.url, 'inference_engine_step_sequences_max', labels)) < 2 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(await metricValue(server.url, 'inference_engine_step_sequences_max', labels)).toBeGreaterThanOrEqual(2);

    // One scrape: occupancy and step sequences come from the same report.
    const text = await (await fetch(`${server.url}/metrics`)).text();
    const value = (name: string): number => {
      const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes('deployment="tiny"'));
      expect(line, name).toBeDefined();
      return Number(line?.slice(line.lastIndexOf(' ') + 1));
    };
    const occupancy = value('inference_engine_batch_occupancy_ratio');
    expect(occupancy).toBeGreaterThanOrEqual(0);
    expect(occupancy).toBeLessThanOrEqual(1);
    expect(occupancy).toBeCloseTo(value('inference_engine_step_sequences') / MAX_SEQUENCES, 12);
    expect(value('inference_replica_capacity_requests')).toBe(MAX_SEQUENCES);

    const gaps = await metricValue(server.url, 'inference_request_inter_token_latency_seconds_count', labels);
    expect(gaps).toBeGreaterThanOrEqual(MAX_SEQUENCES);
    expect(await metricValue(server.url, 'inference_request_ttft_seconds_count', labels)).toBe(MAX_SEQUENCES);
  });
});
