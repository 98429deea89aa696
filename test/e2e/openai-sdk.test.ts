// The official openai SDK against the gateway, backed by the mock upstream with
// a deployment of 2 replicas.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, metricValue, sseData, startHarness } from '../support/harness.js';

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ replicas: 2 });
});
afterAll(async () => {
  await h.close();
});

describe('openai SDK through the gateway', () => {
  it('gets a non-streamed chat completion', async () => {
    const r = await h.client.chat.completions.create({ model: 'gpt', messages: [{ role: 'user', content: 'hello there' }], max_tokens: 4 });
    expect(r.object).toBe('chat.completion');
    expect(r.model).toBe('gpt');
    expect(r.choices).toHaveLength(1);
    expect(r.choices[0]?.message.role).toBe('assistant');
    expect(r.choices[0]?.message.content).toBe('The quick brown fox');
    expect(r.choices[0]?.finish_reason).toBe('length');
    expect(r.usage?.completion_tokens).toBe(4);
    expect(r.usage?.total_tokens).toBe((r.usage?.prompt_tokens ?? 0) + 4);
    // The upstream saw its own model name, and was asked for nothing we did not send.
    expect((h.mock.stats().lastBody as { model: string }).model).toBe('gpt-4o-mini');
  });

  it('streams with the role in the first delta, one finish_reason and usage when asked', async () => {
    const stream = await h.client.chat.completions.create({
      model: 'gpt', messages: [{ role: 'user', content: 'hi' }], max_tokens: 5, stream: true, stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    const withChoices = chunks.filter((c) => c.choices.length > 0);
    expect(withChoices[0]?.choices[0]?.delta.role).toBe('assistant');
    expect(withChoices.slice(1).every((c) => c.choices[0]?.delta.role === undefined)).toBe(true);
    expect(withChoices.filter((c) => c.choices[0]?.finish_reason !== null).map((c) => c.choices[0]?.finish_reason)).toEqual(['length']);
    expect(withChoices.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe('The quick brown fox jumps');
    const usage = chunks.filter((c) => c.choices.length === 0);
    expect(usage).toHaveLength(1);
    expect(usage[0]?.usage?.completion_tokens).toBe(5);
    expect(chunks.at(-1)).toBe(usage[0]);
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
  });

  it('sends no usage chunk unless asked, and ends with [DONE]', async () => {
    const res = await fetch(`${h.url}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt', messages: [{ role: 'user', content: 'hi' }], max_tokens: 3, stream: true }),
    });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(res.headers.get('x-request-id')).toMatch(/^req_/);
    const data = await sseData(res);
    expect(data.at(-1)).toBe('[DONE]');
    const parsed = data.slice(0, -1).map((d) => JSON.parse(d) as { choices: unknown[]; usage?: unknown });
    expect(parsed.every((c) => c.choices.length === 1 && c.usage === undefined)).toBe(true);
  });

  it('streams n choices, each with its own role and finish_reason', async () => {
    const stream = await h.client.chat.completions.create({ model: 'gpt', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2, n: 2, stream: true });
    const roles = new Map<number, number>();
    const finishes = new Map<number, number>();
    for await (const c of stream) {
      for (const ch of c.choices) {
        if (ch.delta.role !== undefined) roles.set(ch.index, (roles.get(ch.index) ?? 0) + 1);
        if (ch.finish_reason !== null) finishes.set(ch.index, (finishes.get(ch.index) ?? 0) + 1);
      }
    }
    expect([...roles.entries()].sort()).toEqual([[0, 1], [1, 1]]);
    expect([...finishes.entries()].sort()).toEqual([[0, 1], [1, 1]]);
  });

  it('gets completions, streamed and not', async () => {
    const r = await h.client.completions.create({ model: 'gpt', prompt: 'Once upon a time', max_tokens: 3 });
    expect(r.object).toBe('text_completion');
    expect(r.choices[0]?.text).toBe('The quick brown');
    const s = await h.client.completions.create({ model: 'gpt', prompt: 'Once', max_tokens: 2, stream: true });
    let text = '';
    for await (const c of s) text += c.choices[0]?.text ?? '';
    expect(text).toBe('The quick');
  });

  it('gets embeddings and the model list', async () => {
    const e = await h.client.embeddings.create({ model: 'gpt', input: ['a', 'b'] });
    expect(e.data).toHaveLength(2);
    expect(e.data[0]?.embedding.length).toBeGreaterThan(0);
    expect(e.data[0]?.embedding).not.toEqual(e.data[1]?.embedding);
    const models = await h.client.models.list();
    expect(models.data.map((m) => m.id)).toContain('gpt');
  });

  it('spreads concurrent requests across the replicas by load', async () => {
    const replicaCount = async (): Promise<number[]> => {
      const list = (await (await fetch(`${h.url}/admin/deployments/gpt`)).json()) as { replicas: { id: string }[] };
      return Promise.all(list.replicas.map((r) => metricValue(h.url, 'inference_replica_requests_total', { deployment: 'gpt', replica: r.id })));
    };
    const before = await replicaCount();
    h.mock.setDefault({ latencyMs: 150 });
    try {
      await Promise.all(Array.from({ length: 10 }, () => h.client.chat.completions.create({ model: 'gpt', messages: [{ role: 'user', content: 'x' }], max_tokens: 1 })));
    } finally {
      h.mock.setDefault({});
    }
    await new Promise((r) => setTimeout(r, 20));
    const after = await replicaCount();
    const served = after.map((a, i) => a - (before[i] ?? 0));
    expect(served).toEqual([5, 5]);
  });
});
