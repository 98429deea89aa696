// Deployments applied through the admin API serve at once; removed ones drain.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../support/harness.js';

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ replicas: 1 });
});
afterAll(async () => {
  await h.close();
});

function put(name: string, body: unknown): Promise<Response> {
  return fetch(`${h.url}/admin/deployments/${name}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

describe('admin API', () => {
  it('applies a deployment that serves at once', async () => {
    const res = await put('fresh', { runtime: 'openai', endpoint: h.mock.url, replicas: 2 });
    expect(res.status).toBe(200);
    const status = (await res.json()) as { spec: { name: string }; replicas: unknown[] };
    expect(status.spec.name).toBe('fresh');
    expect(status.replicas).toHaveLength(2);
    const r = await h.client.chat.completions.create({ model: 'fresh', messages: [{ role: 'user', content: 'x' }], max_tokens: 2 });
    expect(r.choices[0]?.message.content).toBe('The quick');
    const list = (await (await fetch(`${h.url}/admin/deployments`)).json()) as { deployments: { spec: { name: string } }[] };
    expect(list.deployments.map((d) => d.spec.name).sort()).toEqual(['fresh', 'gpt']);
  });

  it('any rpm serves: the limiter holds what it admitted, never a slot per allowed request', async () => {
    // Once a 3.5 GB window for rpm 438200438 and a RangeError for larger ones: a PUT that hung or failed.
    for (const rpm of [438_200_438, 2 ** 40, Number.MAX_SAFE_INTEGER]) {
      const res = await put('vast-rpm', { runtime: 'openai', endpoint: h.mock.url, replicas: 1, remote: { rpm } });
      expect(res.status, await res.clone().text()).toBe(200);
      const r = await h.client.chat.completions.create({ model: 'vast-rpm', messages: [{ role: 'user', content: 'x' }], max_tokens: 2 });
      expect(r.choices[0]?.message.content).toBe('The quick');
    }
    expect((await fetch(`${h.url}/admin/deployments/vast-rpm`, { method: 'DELETE' })).status).toBe(200);
  });

  it('rejects bad deployments with the key named', async () => {
    const res = await put('bad', { runtime: 'openai', endpoint: h.mock.url, replicaz: 2 });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { param: string } }).error.param).toBe('replicaz');
    const notJson = await fetch(`${h.url}/admin/deployments/bad`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{' });
    expect(notJson.status).toBe(400);
    const mismatch = await put('a', { name: 'b', runtime: 'openai', endpoint: h.mock.url });
    expect(mismatch.status).toBe(400);
    expect((await fetch(`${h.url}/admin/deployments/ghost`, { method: 'DELETE' })).status).toBe(404);
  });

  it('removing a deployment lets in-flight streams finish and 404s new requests', async () => {
    await put('doomed', { runtime: 'openai', endpoint: h.mock.url, replicas: 1 });
    h.mock.setDefault({ chunkDelayMs: 40 });
    const stream = await h.client.chat.completions.create({ model: 'doomed', messages: [{ role: 'user', content: 'x' }], max_tokens: 8, stream: true });
    const it = stream[Symbol.asyncIterator]();
    const first = await it.next();
    expect(first.done).toBe(false);
    const del = await fetch(`${h.url}/admin/deployments/doomed`, { method: 'DELETE' });
    expect(del.status).toBe(200);
    await expect(h.client.chat.completions.create({ model: 'doomed', messages: [{ role: 'user', content: 'x' }] })).rejects.toMatchObject({ status: 404 });
    let text = first.value?.choices[0]?.delta.content ?? '';
    let finish: string | null | undefined = null;
    for (;;) {
      const n = await it.next();
      if (n.done === true) break;
      text += n.value.choices[0]?.delta.content ?? '';
      finish = n.value.choices[0]?.finish_reason ?? finish;
    }
    h.mock.setDefault({});
    expect(text.split(' ')).toHaveLength(8);
    expect(finish).toBe('length');
    expect((await fetch(`${h.url}/admin/deployments/doomed`)).status).toBe(404);
  });

  it('a client that disconnects mid-stream aborts the upstream request', async () => {
    h.mock.setDefault({ chunkDelayMs: 50 });
    const ac = new AbortController();
    const res = await fetch(`${h.url}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, signal: ac.signal,
      body: JSON.stringify({ model: 'gpt', messages: [{ role: 'user', content: 'x' }], max_tokens: 200, stream: true }),
    });
    const reader = res.body!.getReader();
    await reader.read();
    expect(h.mock.stats().inFlight).toBe(1);
    ac.abort();
    const deadline = Date.now() + 2000;
    while (h.mock.stats().inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    h.mock.setDefault({});
    expect(h.mock.stats().inFlight).toBe(0);
  });

  it('serves health, readiness and Prometheus metrics', async () => {
    expect((await fetch(`${h.url}/health`)).status).toBe(200);
    expect((await fetch(`${h.url}/ready`)).status).toBe(200);
    const m = await (await fetch(`${h.url}/metrics`)).text();
    expect(m).toMatch(/inference_gateway_requests_total\{deployment="fresh",endpoint="chat",outcome="ok"\} \d+/);
    expect(m).toMatch(/inference_request_ttft_seconds_bucket/);
    expect(m).toMatch(/inference_tokens_output_total\{deployment="fresh"\} \d+/);
  });
});

describe('remote session supervision', () => {
  it('an upstream 401 rebuilds the session with re-read credentials and retries once', async () => {
    let key = 'old-key';
    const h2 = await startHarness({ replicas: 1, mock: { apiKey: 'new-key' }, credentials: () => key });
    try {
      await expect(h2.client.chat.completions.create({ model: 'gpt', messages: [{ role: 'user', content: 'x' }], max_tokens: 1 })).rejects.toMatchObject({ status: 401 });
      key = 'new-key';
      const r = await h2.client.chat.completions.create({ model: 'gpt', messages: [{ role: 'user', content: 'x' }], max_tokens: 1 });
      expect(r.choices[0]?.message.content).toBe('The');
      expect(h2.mock.stats().lastHeaders.authorization).toBe('Bearer new-key');
      const m = await (await fetch(`${h2.url}/metrics`)).text();
      expect(m).toMatch(/inference_replica_restarts_total\{deployment="gpt",replica="gpt#1"\} [2-9]/);
    } finally {
      await h2.close();
    }
  });
});
