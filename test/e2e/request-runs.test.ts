// The gateway's runs in flight (RequestRun, one per request, kept by the gateway
// while it runs): a client that goes away cancels its own request down to the
// runner, and stopping the gateway cancels every request still running, so the
// server closes instead of waiting on work nobody will read. The in-flight
// gauge comes back to zero either way.

import { afterEach, describe, expect, it } from 'vitest';
import type { RunContext } from '@inference/core';
import { type RunnerDefinition, type Server, parseConfig, serve, supervisedRuntime } from '@inference/gateway';
import { metricValue } from '../support/harness.js';

/** What each request's cancellation said, in arrival order. */
let cancelled: string[] = [];
let started = 0;

/** Streams one chunk, then waits until its request is cancelled (a model that never finishes). */
const endless: RunnerDefinition<null> = {
  open: () => Promise.resolve(null),
  generate: (_r, _req, ctx: RunContext, sink) => {
    started++;
    sink({ index: 0, text: 'Once', tokens: 1 });
    return new Promise((_resolve, reject) => {
      ctx.signal.addEventListener('abort', () => {
        const reason = ctx.signal.reason;
        cancelled.push(reason instanceof Error ? reason.message : String(reason));
        reject(reason instanceof Error ? reason : new Error(String(reason)));
      }, { once: true });
    });
  },
};

const runtimes = { endless: supervisedRuntime(endless) };
let server: Server | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
  cancelled = [];
  started = 0;
});

async function start(): Promise<Server> {
  server = await serve(parseConfig({ server: { port: 0 }, deployments: [{ name: 'e', runtime: 'endless', replicas: 1 }] }, { runtimes }), { runtimes });
  await server.runtime.settled();
  return server;
}

/** Opens a streamed completion and returns once its first chunk arrived, with the rest of its body still to come. */
async function openStream(url: string, signal?: AbortSignal): Promise<{ rest: Promise<string> }> {
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'e', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    ...(signal === undefined ? {} : { signal }),
  });
  expect(res.status).toBe(200);
  const body = res.body;
  if (body === null) throw new Error('no body');
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  while (!text.includes('Once')) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`stream ended before its first chunk: ${text}`);
    text += decoder.decode(value, { stream: true });
  }
  const rest = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return text;
      text += decoder.decode(value, { stream: true });
    }
  })();
  return { rest };
}

async function until(what: string, probe: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('requests in flight', () => {
  it('a client that goes away cancels its request down to the runner; nothing stays in flight', async () => {
    const s = await start();
    const ac = new AbortController();
    const { rest } = await openStream(s.url, ac.signal);
    expect(await metricValue(s.url, 'inference_gateway_in_flight_requests', { deployment: 'e' })).toBe(1);
    ac.abort();
    await expect(rest).rejects.toThrow();
    await until('the runner to be cancelled', () => cancelled.length === 1);
    expect(cancelled).toEqual(['client disconnected']);
    await until('the gauge to return to 0', async () => (await metricValue(s.url, 'inference_gateway_in_flight_requests', { deployment: 'e' })) === 0);
    expect(await metricValue(s.url, 'inference_gateway_requests_total', { deployment: 'e', endpoint: 'chat', outcome: 'cancelled' })).toBe(1);
  });

  it('stopping the gateway cancels every request still running, and the streams end with an error event', async () => {
    const s = await start();
    const streams = await Promise.all([openStream(s.url), openStream(s.url), openStream(s.url)]);
    expect(started).toBe(3);
    await s.close();
    server = undefined;
    expect(cancelled).toEqual(['request ended', 'request ended', 'request ended']);
    for (const { rest } of streams) {
      const text = await rest;
      expect(text).toMatch(/data: \{"error":/);
      expect(text).not.toContain('data: [DONE]');
    }
  });
});
