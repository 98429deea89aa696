// Fault injection over real HTTP: injected errors and retry hints, hang, latency, pacing,
// mid-stream disconnects, the script's FIFO order, header overrides, the rpm limiter,
// stats, and the /_mock control endpoints.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseSse, startMockUpstream, type Behavior, type MockUpstream } from './index.js';

let mock: MockUpstream;
beforeAll(async () => {
  mock = await startMockUpstream();
});
afterAll(async () => {
  await mock.close();
});
afterEach(() => {
  mock.reset();
});

const chatBody = { model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 3 };

function chat(extra: Record<string, unknown> = {}, init: RequestInit = {}): Promise<Response> {
  return fetch(`${mock.url}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...chatBody, ...extra }),
    ...init,
  });
}

async function until(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Reads a streamed body to its end or its failure; returns the text received and the error. */
async function readAll(response: Response): Promise<{ text: string; error: unknown }> {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { text, error: undefined };
      text += decoder.decode(value, { stream: true });
    }
  } catch (error) {
    return { text, error };
  }
}

describe('injected errors', () => {
  it('429 carries retry-after and retry-after-ms in the OpenAI envelope', async () => {
    mock.setScript([{ status: 429, retryAfterSeconds: 7, retryAfterMs: 6500 }]);
    const response = await chat();
    expect(response.status).toBe(429);
    expect(response.headers.get('retry-after')).toBe('7');
    expect(response.headers.get('retry-after-ms')).toBe('6500');
    expect(JSON.parse(await response.text())).toMatchObject({ error: { type: 'requests', code: 'rate_limit_exceeded' } });
  });

  it('500 and 503 are server_error; errorType sets the code with a 400', async () => {
    mock.setScript([{ status: 500 }, { status: 503 }, { errorType: 'context_length_exceeded' }]);
    const a = await chat();
    expect(a.status).toBe(500);
    expect((JSON.parse(await a.text())).error.type).toBe('server_error');
    const b = await chat();
    expect(b.status).toBe(503);
    expect((JSON.parse(await b.text())).error.type).toBe('server_error');
    const c = await chat();
    expect(c.status).toBe(400);
    expect((JSON.parse(await c.text())).error).toMatchObject({ type: 'invalid_request_error', code: 'context_length_exceeded' });
    expect((await chat()).status).toBe(200);
  });

  it('errorMessage and errorParam set the injected error\'s message and param', async () => {
    mock.setScript([{ errorParam: 'temperature', errorMessage: 'temperature must be at most 2.' }]);
    const a = await chat();
    expect(a.status).toBe(400);
    expect(JSON.parse(await a.text()).error).toMatchObject({ type: 'invalid_request_error', param: 'temperature', message: 'temperature must be at most 2.' });
  });

  it('an error replaces a stream before any byte of it', async () => {
    mock.setScript([{ status: 500 }]);
    const response = await chat({ stream: true });
    expect(response.status).toBe(500);
    expect(response.headers.get('content-type')).toBe('application/json');
  });
});

describe('timing faults', () => {
  it('latencyMs delays the headers', async () => {
    mock.setScript([{ latencyMs: 150 }]);
    const started = performance.now();
    const response = await chat();
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    expect(response.status).toBe(200);
  });

  it('chunkDelayMs paces SSE events', async () => {
    mock.setScript([{ chunkDelayMs: 40 }]);
    const started = performance.now();
    const response = await chat({ stream: true });
    const { text, error } = await readAll(response);
    // role + 3 words + finish + [DONE] = 6 events, 5 gaps.
    expect(error).toBeUndefined();
    expect(parseSse(text)).toHaveLength(6);
    expect(performance.now() - started).toBeGreaterThanOrEqual(190);
  });

  it('burstChunks sends that many events at once, then paces the rest', async () => {
    // A ten-minute pause: only the burst can arrive while the test runs.
    mock.setScript([{ chunkDelayMs: 600_000, burstChunks: 2 }]);
    const controller = new AbortController();
    const response = await chat({ stream: true }, { signal: controller.signal });
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    while (text.split('\n\n').length - 1 < 2) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    const events = parseSse(text);
    expect(events).toHaveLength(2);
    expect(text).not.toContain('[DONE]');
    controller.abort();
    await until(() => mock.stats().inFlight === 0);
  });

  it('hang never answers; the client aborts and the request leaves flight', async () => {
    mock.setScript([{ hang: true }]);
    const controller = new AbortController();
    const pending = chat({}, { signal: controller.signal });
    await until(() => mock.stats().inFlight === 1);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(mock.stats().inFlight).toBe(1);
    controller.abort();
    await expect(pending).rejects.toThrow(/abort/i);
    await until(() => mock.stats().inFlight === 0);
    expect((await chat()).status).toBe(200);
  });
});

describe('disconnects', () => {
  it('disconnectAfterChunks cuts a stream after exactly N events', async () => {
    mock.setScript([{ disconnectAfterChunks: 3 }]);
    const response = await chat({ stream: true, max_tokens: 10 });
    expect(response.status).toBe(200);
    const { text, error } = await readAll(response);
    expect(error).toBeDefined();
    const events = parseSse(text);
    expect(events).toHaveLength(3);
    expect(text).not.toContain('[DONE]');
    await until(() => mock.stats().inFlight === 0);
    expect((await chat()).status).toBe(200);
  });

  it('disconnectAfterChunks 0 sends headers and no event; paced cuts work too', async () => {
    mock.setScript([{ disconnectAfterChunks: 0 }, { disconnectAfterChunks: 2, chunkDelayMs: 20 }]);
    const first = await readAll(await chat({ stream: true }));
    expect(first.error).toBeDefined();
    expect(first.text).toBe('');
    const second = await readAll(await chat({ stream: true }));
    expect(second.error).toBeDefined();
    expect(parseSse(second.text)).toHaveLength(2);
  });

  it('a non-streamed answer is cut half-way', async () => {
    mock.setScript([{ disconnectAfterChunks: 1 }]);
    const response = await chat();
    await expect(response.json()).rejects.toThrow();
  });
});

describe('script and overrides', () => {
  it('consumes the script FIFO, one behavior per request, then the default', async () => {
    mock.setScript([{ status: 500 }, { status: 429 }, { tokens: 1 }]);
    mock.setDefault({ status: 503 });
    expect(mock.scriptRemaining()).toBe(3);
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await chat({ max_tokens: undefined })).status);
    expect(statuses).toEqual([500, 429, 200, 503, 503]);
    expect(mock.scriptRemaining()).toBe(0);
  });

  it('tokens shortens the answer below max_tokens with finish_reason stop', async () => {
    mock.setScript([{ tokens: 2 }]);
    const body = JSON.parse(await (await chat({ max_tokens: 10 })).text());
    expect(body.choices[0]).toMatchObject({ message: { content: 'The quick' }, finish_reason: 'stop' });
  });

  it('x-mock-behavior overrides without consuming the script; a bad one is a 400', async () => {
    mock.setScript([{ status: 500 }]);
    const overridden = await chat({}, { headers: { 'content-type': 'application/json', 'x-mock-behavior': JSON.stringify({ status: 429 }) } });
    expect(overridden.status).toBe(429);
    expect(mock.scriptRemaining()).toBe(1);
    const bad = await chat({}, { headers: { 'content-type': 'application/json', 'x-mock-behavior': '{"stauts":500}' } });
    expect(bad.status).toBe(400);
    expect((JSON.parse(await bad.text())).error.message).toContain("unknown key 'stauts'");
    expect((await chat()).status).toBe(500);
  });

  it('rejects invalid behaviors given in-process', () => {
    expect(() => {
      mock.setScript([{ status: 418 } as unknown as Behavior]);
    }).toThrow(/status/);
  });
});

describe('stats', () => {
  it('counts requests per path and version, concurrency, arrivals and the last request', async () => {
    mock.setDefault({ latencyMs: 80 });
    const before = Date.now();
    await Promise.all(Array.from({ length: 5 }, () => chat()));
    await fetch(`${mock.url}/models`);
    const stats = mock.stats();
    expect(stats.requests).toBe(6);
    expect(stats.byPath).toEqual({ '/v1/chat/completions': 5, '/v1/models': 1 });
    expect(stats.httpVersions).toEqual({ '1.1': 6 });
    expect(stats.maxInFlight).toBe(5);
    expect(stats.inFlight).toBe(0);
    expect(stats.arrivals).toHaveLength(6);
    expect(stats.arrivals.every((t) => t >= before && t <= Date.now())).toBe(true);

    await chat({ model: 'last-one' }, { headers: { 'content-type': 'application/json', 'x-trace': 'abc' } });
    expect(mock.stats().lastHeaders['x-trace']).toBe('abc');
    expect(mock.stats().lastBody).toMatchObject({ model: 'last-one' });
    mock.resetStats();
    expect(mock.stats()).toMatchObject({ requests: 0, byPath: {}, arrivals: [], maxInFlight: 0 });
  });
});

describe('rpm limiter', () => {
  it('answers 429 with retry-after past rpm requests in the window, and recovers as it slides', async () => {
    const limited = await startMockUpstream({ rpm: 3, rpmWindowMs: 1000 });
    try {
      const send = (): Promise<Response> =>
        fetch(`${limited.url}/chat/completions`, { method: 'POST', body: JSON.stringify(chatBody) });
      const statuses = [];
      for (let i = 0; i < 4; i++) statuses.push((await send()).status);
      expect(statuses).toEqual([200, 200, 200, 429]);
      const rejected = await send();
      expect(rejected.status).toBe(429);
      expect(Number(rejected.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(Number(rejected.headers.get('retry-after-ms'))).toBeLessThanOrEqual(1000);
      expect(limited.stats()).toMatchObject({ requests: 5, rateLimited: 2 });
      await new Promise((resolve) => setTimeout(resolve, Number(rejected.headers.get('retry-after-ms')) + 20));
      expect((await send()).status).toBe(200);
    } finally {
      await limited.close();
    }
  });

  it('uses a 60 s window by default', async () => {
    const limited = await startMockUpstream({ rpm: 2 });
    try {
      const send = (): Promise<Response> => fetch(`${limited.url}/models`);
      expect((await send()).status).toBe(200);
      expect((await send()).status).toBe(200);
      const rejected = await send();
      expect(rejected.status).toBe(429);
      expect(Number(rejected.headers.get('retry-after'))).toBeGreaterThan(55);
      expect(Number(rejected.headers.get('retry-after'))).toBeLessThanOrEqual(60);
    } finally {
      await limited.close();
    }
  });
});

describe('/_mock control endpoints', () => {
  async function control(method: string, path: string, body?: unknown): Promise<Response> {
    return fetch(`${mock.origin}/_mock/${path}`, { method, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  }

  it('scripts, sets the default, reports stats and resets over HTTP', async () => {
    expect((await control('POST', 'script', [{ status: 500 }, {}])).status).toBe(200);
    expect((await control('POST', 'default', { status: 503 })).status).toBe(200);
    expect((JSON.parse(await (await control('GET', 'script')).text())).remaining).toBe(2);
    expect([(await chat()).status, (await chat()).status, (await chat()).status]).toEqual([500, 200, 503]);
    const stats = JSON.parse(await (await control('GET', 'stats')).text());
    expect(stats.requests).toBe(3);
    expect(stats.byPath['/_mock/stats']).toBeUndefined();
    expect((await control('POST', 'reset')).status).toBe(200);
    expect((await chat()).status).toBe(200);
    expect(mock.stats().requests).toBe(1);
  });

  it('sets the api key and rpm over HTTP', async () => {
    expect((await control('POST', 'config', { apiKey: 'k1' })).status).toBe(200);
    expect((await chat()).status).toBe(401);
    expect((await control('POST', 'config', { apiKey: null, rpm: 1 })).status).toBe(200);
    expect((await chat()).status).toBe(200);
    expect((await chat()).status).toBe(429);
    expect((await control('POST', 'config', { rpm: null })).status).toBe(200);
    expect((await chat()).status).toBe(200);
  });

  it('rejects malformed control input', async () => {
    expect((await control('POST', 'script', { status: 500 })).status).toBe(400);
    expect((await control('POST', 'script', [{ latencyMs: -1 }])).status).toBe(400);
    expect((await control('POST', 'config', { apiKey: 'x', extra: 1 })).status).toBe(400);
    expect((await control('GET', 'nothing')).status).toBe(404);
  });
});
