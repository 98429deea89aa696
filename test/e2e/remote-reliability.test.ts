// Remote reliability end to end, with the openai SDK against the gateway and the
// mock upstream: rate limits under a 429 storm, the circuit breaker under a 5xx
// storm, each of the four timeouts, fallbacks before the first token, and a
// mid-stream disconnect. Assertions count what the mock saw, never wall-clock.

import net from 'node:net';
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { type MockUpstream, startMockUpstream } from '@inference/mock-upstream';
import { type Harness, metricValue, sseData, startHarness } from '../support/harness.js';

const msg = [{ role: 'user' as const, content: 'hello' }];
const open: { close(): Promise<void> }[] = [];

afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

async function harness(opts: Parameters<typeof startHarness>[0]): Promise<Harness> {
  const h = await startHarness(opts);
  open.push(h);
  return h;
}

interface Outcome { status: number; retryAfter: string | null; code: string | undefined; model: string | undefined }

async function chat(h: Harness, extra: Record<string, unknown> = {}): Promise<Outcome> {
  try {
    const r = await h.client.chat.completions.create({ model: 'gpt', messages: msg, max_tokens: 3, ...extra });
    return { status: 200, retryAfter: null, code: undefined, model: r.model };
  } catch (e) {
    if (!(e instanceof OpenAI.APIError)) throw e;
    return { status: e.status ?? 0, retryAfter: e.headers?.get('retry-after') ?? null, code: e.code ?? undefined, model: undefined };
  }
}

describe('rate limiting', () => {
  it('a burst over the configured rpm: the upstream sees at most rpm requests, the rest get 429 with retry-after', async () => {
    const h = await harness({ replicas: 2, mock: { rpm: 10 }, gpt: { remote: { rpm: 10, maxRetries: 2, queueTimeoutMs: 2000 }, onCapacityExhausted: 'queue' } });
    const out = await Promise.all(Array.from({ length: 30 }, () => chat(h)));
    const ok = out.filter((o) => o.status === 200).length;
    const limited = out.filter((o) => o.status === 429);
    const stats = h.mock.stats();
    console.log(`[measured] rpm burst: 30 client requests, upstream saw ${stats.requests} (limit 10), upstream 429s ${stats.rateLimited}, client ok ${ok}, client 429 ${limited.length}`);
    expect(stats.requests).toBeLessThanOrEqual(10);
    expect(stats.rateLimited).toBe(0);
    expect(ok).toBe(10);
    expect(limited).toHaveLength(20);
    for (const o of limited) expect(Number(o.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(await metricValue(h.url, 'inference_remote_limiter_refusals_total', { deployment: 'gpt', reason: 'rpm' })).toBe(20);
  });

  it('an upstream 429 storm: retry-after is honoured, so later requests stop reaching the upstream', async () => {
    const h = await harness({ replicas: 2, mock: { rpm: 5 }, gpt: { remote: { rpm: 1000, maxRetries: 2, queueTimeoutMs: 1000 }, onCapacityExhausted: 'queue' } });
    const first = await Promise.all(Array.from({ length: 5 }, () => chat(h)));
    expect(first.every((o) => o.status === 200)).toBe(true);
    const storm = await Promise.all(Array.from({ length: 15 }, () => chat(h)));
    const afterStorm = h.mock.stats();
    const later = await Promise.all(Array.from({ length: 15 }, () => chat(h)));
    const end = h.mock.stats();
    console.log(`[measured] upstream 429 storm: upstream limit 5/min, 35 client requests; upstream saw ${end.requests} (429s sent ${end.rateLimited}); requests after the storm that reached it: ${end.requests - afterStorm.requests}`);
    for (const o of [...storm, ...later]) {
      expect(o.status).toBe(429);
      expect(Number(o.retryAfter)).toBeGreaterThanOrEqual(1);
    }
    // The upstream's own retry-after (about a minute) pauses the key: no request reaches it afterwards.
    expect(end.requests).toBe(afterStorm.requests);
    expect(end.requests - 5).toBe(end.rateLimited);
    expect(end.rateLimited).toBeLessThanOrEqual(15);
  });
});

describe('circuit breaker', () => {
  it('a 5xx storm opens it, it fast-fails while open, and it recloses when the upstream heals', async () => {
    const h = await harness({ replicas: 1, gpt: { remote: { maxRetries: 0, breaker: { failureThreshold: 3, openMs: 1000 } } } });
    h.mock.setDefault({ status: 500 });
    for (let i = 0; i < 3; i++) expect((await chat(h)).status).toBe(502);
    expect(h.mock.stats().requests).toBe(3);
    const fast = await Promise.all(Array.from({ length: 5 }, () => chat(h)));
    for (const o of fast) {
      expect(o.status).toBe(503);
      expect(o.code).toBe('circuit_open');
      expect(Number(o.retryAfter)).toBeGreaterThanOrEqual(1);
    }
    expect(h.mock.stats().requests).toBe(3);
    expect(await metricValue(h.url, 'inference_remote_breaker_state', { deployment: 'gpt', state: 'open' })).toBe(1);
    h.mock.setDefault({});
    // Once openMs has passed, one probe goes through and closes the circuit.
    let attempts = 0;
    let o = await chat(h);
    while (o.status !== 200 && attempts++ < 200) {
      expect(o.code).toBe('circuit_open');
      await new Promise((r) => setTimeout(r, 100));
      o = await chat(h);
    }
    expect(o.status).toBe(200);
    expect(h.mock.stats().requests).toBe(4);
    expect((await chat(h)).status).toBe(200);
    expect(await metricValue(h.url, 'inference_remote_breaker_state', { deployment: 'gpt', state: 'closed' })).toBe(1);
    console.log(`[measured] breaker: opened after 3 upstream 500s; ${5 + attempts} requests failed fast while open (upstream saw none); reclosed by the first probe after openMs=1000`);
  });
});

describe('timeouts', () => {
  const noRetry = { maxRetries: 0, breaker: { failureThreshold: 1000, openMs: 1000 } };

  it('first byte, idle gap, total and connect each end in upstream_timeout', async () => {
    // A TLS endpoint whose server accepts TCP and never answers the handshake: the connect timeout fires.
    const silent = net.createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const sockets: net.Socket[] = [];
    open.push({ close: () => new Promise<void>((r) => { silent.close(() => { r(); }); for (const s of sockets) s.destroy(); }) });
    silent.on('connection', (s) => sockets.push(s));
    const port = (silent.address() as net.AddressInfo).port;
    const h = await harness({
      replicas: 1,
      gpt: { remote: { ...noRetry, timeouts: { firstByteMs: 300 } } },
      extraDeployments: (mockUrl) => [
        { name: 'idle', runtime: 'openai', endpoint: mockUrl, model: 'gpt-4o-mini', remote: { ...noRetry, timeouts: { idleMs: 300 } } },
        { name: 'total', runtime: 'openai', endpoint: mockUrl, model: 'gpt-4o-mini', remote: { ...noRetry, timeouts: { totalMs: 600 } } },
        { name: 'connect', runtime: 'openai', endpoint: `https://127.0.0.1:${port}/v1`, model: 'gpt-4o-mini', remote: { ...noRetry, timeouts: { connectMs: 300 } } },
      ],
    });
    h.mock.setScript([{ hang: true }]);
    const firstByte = await chat(h);
    expect([firstByte.status, firstByte.code]).toEqual([504, 'upstream_timeout']);

    h.mock.setScript([{ chunkDelayMs: 5000, tokens: 5 }]);
    const idleRes = await fetch(`${h.url}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'idle', messages: msg, stream: true }),
    });
    if (idleRes.status === 200) {
      const data = await sseData(idleRes);
      expect(data).not.toContain('[DONE]');
      expect((JSON.parse(data.at(-1) ?? '{}') as { error?: { code?: string } }).error?.code).toBe('upstream_timeout');
    } else {
      expect(idleRes.status).toBe(504);
      expect(((await idleRes.json()) as { error: { code: string } }).error.code).toBe('upstream_timeout');
    }

    h.mock.setScript([{ latencyMs: 5000 }]);
    const total = await chat(h, { model: 'total' });
    expect([total.status, total.code]).toEqual([504, 'upstream_timeout']);

    const connect = await chat(h, { model: 'connect' });
    expect([connect.status, connect.code]).toEqual([504, 'upstream_timeout']);
    expect(sockets.length).toBeGreaterThanOrEqual(1);
  });
});

describe('fallbacks and mid-stream failures', () => {
  let backup: MockUpstream;

  it('a failing primary falls back before the first token, streamed or not; a request error does not', async () => {
    backup = await startMockUpstream({ port: 0 });
    open.push(backup);
    const h = await harness({
      replicas: 1,
      gpt: { remote: { maxRetries: 1, retryBaseMs: 10 }, fallbacks: ['missing', 'backup'] },
      extraDeployments: [{ name: 'backup', runtime: 'openai', endpoint: backup.url, model: 'gpt-4o-mini' }],
    });
    h.mock.setDefault({ status: 503 });
    const r = await chat(h);
    expect(r).toMatchObject({ status: 200, model: 'backup' });
    expect(h.mock.stats().requests).toBe(2);
    const stream = await h.client.chat.completions.create({ model: 'gpt', messages: msg, max_tokens: 3, stream: true });
    const models = new Set<string>();
    let text = '';
    for await (const c of stream) {
      models.add(c.model);
      text += c.choices[0]?.delta.content ?? '';
    }
    expect([...models]).toEqual(['backup']);
    expect(text).toBe('The quick brown');
    expect(backup.stats().requests).toBe(2);
    expect(await metricValue(h.url, 'inference_request_fallbacks_total', { deployment: 'gpt', to: 'missing' })).toBe(2);

    h.mock.setDefault({ status: 400 });
    const bad = await chat(h);
    expect(bad.status).toBe(400);
    expect(backup.stats().requests).toBe(2);
  });

  it('onCapacityExhausted: fallback goes to the fallback at once when the limiter says wait', async () => {
    backup = await startMockUpstream({ port: 0 });
    open.push(backup);
    const h = await harness({
      replicas: 1,
      gpt: { remote: { rpm: 2 }, fallbacks: ['backup'], onCapacityExhausted: 'fallback' },
      extraDeployments: [{ name: 'backup', runtime: 'openai', endpoint: backup.url, model: 'gpt-4o-mini' }],
    });
    const out = await Promise.all(Array.from({ length: 6 }, () => chat(h)));
    expect(out.every((o) => o.status === 200)).toBe(true);
    expect(out.filter((o) => o.model === 'gpt')).toHaveLength(2);
    expect(out.filter((o) => o.model === 'backup')).toHaveLength(4);
    expect(h.mock.stats().requests).toBe(2);
    expect(backup.stats().requests).toBe(4);
  });

  it('a mid-stream upstream disconnect ends the client stream with a final error event, without a retry', async () => {
    const h = await harness({ replicas: 2, gpt: { remote: { maxRetries: 2 } } });
    h.mock.setScript([{ disconnectAfterChunks: 3, tokens: 20 }]);
    const res = await fetch(`${h.url}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt', messages: msg, stream: true, max_tokens: 20 }),
    });
    expect(res.status).toBe(200);
    const data = await sseData(res);
    expect(data).not.toContain('[DONE]');
    const last = JSON.parse(data.at(-1) ?? '{}') as { error?: { code?: string } };
    expect(last.error?.code).toBe('upstream_error');
    expect(data.length).toBeGreaterThan(1);
    expect(h.mock.stats().requests).toBe(1);

    h.mock.setScript([{ disconnectAfterChunks: 3, tokens: 20 }]);
    const stream = await h.client.chat.completions.create({ model: 'gpt', messages: msg, max_tokens: 20, stream: true });
    let chunks = 0;
    const err = await (async () => {
      for await (const _c of stream) chunks++;
    })().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect(chunks).toBeGreaterThan(0);
    expect(h.mock.stats().requests).toBe(2);
  });
});
