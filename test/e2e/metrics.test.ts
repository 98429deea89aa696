// Metrics through GET /metrics against the mock upstream: inter-token latency,
// cost at the deployment's price, per-replica load sampled at scrape time and
// in-flight requests; and the status JSON agreeing with them.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, metricValue, startHarness } from '../support/harness.js';

const PRICE = { inputPerMTok: 3, outputPerMTok: 15 };

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ replicas: 2, gpt: { price: PRICE, remote: { maxConcurrent: 3 } } });
});
afterAll(async () => {
  await h.close();
});

interface StatusJson {
  deployments: { name: string; inFlight: number; spend: { costUsd: number; tokens: number; scope: string }; replicas: { id: string; load: { outstanding: number; capacity: number } }[] }[];
}

async function status(): Promise<StatusJson> {
  const res = await fetch(`${h.url}/admin/status`);
  expect(res.status).toBe(200);
  return (await res.json()) as StatusJson;
}

describe('metrics', () => {
  it('observes the gaps between streamed chunks in seconds', async () => {
    const name = 'inference_request_inter_token_latency_seconds';
    const before = await metricValue(h.url, `${name}_count`, { deployment: 'gpt' });
    h.mock.setDefault({ chunkDelayMs: 25 });
    try {
      const stream = await h.client.chat.completions.create({ model: 'gpt', messages: [{ role: 'user', content: 'x' }], max_tokens: 6, stream: true });
      let words = '';
      for await (const c of stream) words += c.choices[0]?.delta.content ?? '';
      expect(words.split(' ')).toHaveLength(6);
    } finally {
      h.mock.setDefault({});
    }
    const count = (await metricValue(h.url, `${name}_count`, { deployment: 'gpt' })) - before;
    const sum = await metricValue(h.url, `${name}_sum`, { deployment: 'gpt' });
    expect(count).toBeGreaterThanOrEqual(1);
    expect(count).toBeLessThanOrEqual(5);
    // The gaps add up to the time between the first and the last chunk, which the
    // mock spreads over 5 × 25 ms: seconds, not milliseconds.
    expect(sum).toBeGreaterThan(0.05);
    expect(sum).toBeLessThan(60);
  });

  it('counts cost at the deployment price from the usage the upstream reported', async () => {
    const before = await metricValue(h.url, 'inference_cost_usd_total', { deployment: 'gpt' });
    const r = await h.client.chat.completions.create({ model: 'gpt', messages: [{ role: 'user', content: 'count my tokens please' }], max_tokens: 7 });
    const usage = r.usage;
    expect(usage?.prompt_tokens).toBeGreaterThan(0);
    const want = ((usage?.prompt_tokens ?? 0) * PRICE.inputPerMTok + (usage?.completion_tokens ?? 0) * PRICE.outputPerMTok) / 1e6;
    const after = await metricValue(h.url, 'inference_cost_usd_total', { deployment: 'gpt' });
    expect(after - before).toBeCloseTo(want, 10);
    // The status page shows the same spend (since start: gpt has no budget).
    const gpt = (await status()).deployments.find((d) => d.name === 'gpt');
    expect(gpt?.spend.scope).toBe('start');
    expect(gpt?.spend.costUsd).toBeCloseTo(after, 10);
  });

  it('samples replica load and in-flight requests while a stream runs', async () => {
    expect(await metricValue(h.url, 'inference_replica_capacity_requests', { deployment: 'gpt' })).toBe(6);
    h.mock.setDefault({ chunkDelayMs: 50 });
    try {
      const stream = await h.client.chat.completions.create({ model: 'gpt', messages: [{ role: 'user', content: 'x' }], max_tokens: 200, stream: true });
      const it = stream[Symbol.asyncIterator]();
      expect((await it.next()).done).toBe(false);
      expect(await metricValue(h.url, 'inference_replica_outstanding_requests', { deployment: 'gpt' })).toBe(1);
      expect(await metricValue(h.url, 'inference_replica_queued_requests', { deployment: 'gpt' })).toBe(0);
      expect(await metricValue(h.url, 'inference_gateway_in_flight_requests', { deployment: 'gpt' })).toBe(1);
      const gpt = (await status()).deployments.find((d) => d.name === 'gpt');
      expect(gpt?.inFlight).toBe(1);
      expect(gpt?.replicas.map((r) => r.load.outstanding).sort()).toEqual([0, 1]);
      stream.controller.abort();
    } finally {
      h.mock.setDefault({});
    }
    const deadline = Date.now() + 30_000;
    while ((await metricValue(h.url, 'inference_replica_outstanding_requests', { deployment: 'gpt' })) > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(await metricValue(h.url, 'inference_replica_outstanding_requests', { deployment: 'gpt' })).toBe(0);
    expect(await metricValue(h.url, 'inference_gateway_in_flight_requests', { deployment: 'gpt' })).toBe(0);
    expect(await metricValue(h.url, 'inference_gateway_requests_total', { deployment: 'gpt', outcome: 'cancelled' })).toBe(1);
  });

  it('drops the load series of a removed deployment', async () => {
    const put = await fetch(`${h.url}/admin/deployments/brief`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ runtime: 'openai', endpoint: h.mock.url, replicas: 1 }) });
    expect(put.status).toBe(200);
    const deadline = Date.now() + 30_000;
    while ((await metricValue(h.url, 'inference_replica_capacity_requests', { deployment: 'brief' })) === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(await metricValue(h.url, 'inference_replica_capacity_requests', { deployment: 'brief' })).toBe(64);
    expect((await fetch(`${h.url}/admin/deployments/brief`, { method: 'DELETE' })).status).toBe(200);
    const perReplica = /inference_replica_(state|capacity_requests|queued_requests|outstanding_requests)\{[^}]*deployment="brief"/;
    while (perReplica.test(await (await fetch(`${h.url}/metrics`)).text()) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const text = await (await fetch(`${h.url}/metrics`)).text();
    expect(text).not.toMatch(perReplica);
    expect(text).toMatch(/inference_replica_state\{[^}]*deployment="gpt"/);
  });
});
