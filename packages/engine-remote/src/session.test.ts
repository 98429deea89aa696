// The session's pool: open streams share an HTTP/2 connection (up to H2_STREAMS
// each), while an HTTP/1.1 upstream gets one connection per request in flight.
// (Requests that arrive while no connection is up yet each open one: the protocol
// is known only after the handshake.)
// Real TLS + HTTP/2 (the mock upstream with its fixture certificate).
import { readFile } from 'node:fs/promises';
import { type ServerHttp2Session, createSecureServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cancellation, type ChatRequest, InferenceError, type TokenChunk, parseDeployment } from '@inference/core';
import { MOCK_CERT_PATH, MOCK_KEY_PATH, type MockUpstream, mockCaPem, startMockUpstream } from '@inference/mock-upstream';
import { type RemoteSession, closeSession, openSession } from './session.js';
import { generate } from './providers/openai.js';

const req: ChatRequest = {
  kind: 'chat', model: 'u', sampling: { stop: [], n: 1 }, stream: true, includeUsage: false, passthrough: {}, messages: [{ role: 'user', content: 'hi' }],
};

let h2: MockUpstream;
let h1: MockUpstream;
beforeAll(async () => {
  // Each stream sends its role chunk and first token, then pauses for ten minutes.
  const paused = { chunkDelayMs: 600_000, burstChunks: 2 };
  h2 = await startMockUpstream({ tls: true, defaultBehavior: paused });
  h1 = await startMockUpstream({ defaultBehavior: paused });
});
afterAll(async () => {
  await h2.close();
  await h1.close();
});

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(cond()).toBe(true);
}

/** Opens `n` streams on one session, waits for each one's first token, and returns the pool's stats then. */
async function openStreams(mock: MockUpstream, n: number, ca?: string): Promise<{ connected: number; running: number }> {
  const spec = parseDeployment({ name: 'u', runtime: 'openai', endpoint: mock.url, replicas: 1, remote: { maxConcurrent: 64 } });
  const session: RemoteSession = openSession(spec, () => ({ apiKey: undefined }), 1, ca === undefined ? {} : { tls: { ca } });
  const signals = Array.from({ length: n }, () => new Cancellation());
  let firstTokens = 0;
  const start = (signal: Cancellation): Promise<unknown> => generate({ spec, session, ctx: { requestId: 'r', signal } }, req, (c: TokenChunk) => {
    if (c.text !== '') firstTokens++;
  }).catch((e: unknown) => e);
  // One stream first, so that a connection is up (and its protocol known) when the others come.
  const runs = [start(signals[0] ?? new Cancellation())];
  try {
    await until(() => firstTokens === 1);
    for (const signal of signals.slice(1)) runs.push(start(signal));
    await until(() => firstTokens === n);
    const { connected, running } = session.pool.stats;
    return { connected, running };
  } finally {
    for (const s of signals) s.abort(new Error('test over'));
    await Promise.all(runs);
    await closeSession(session);
  }
}

describe('openSession', () => {
  it('carries concurrent streams on one HTTP/2 connection', async () => {
    expect(await openStreams(h2, 5, mockCaPem())).toEqual({ connected: 1, running: 5 });
  });

  it('gives each request in flight its own HTTP/1.1 connection (no pipelining)', async () => {
    expect(await openStreams(h1, 3)).toEqual({ connected: 3, running: 3 });
  });
});

describe('an HTTP/2 connection that goes away', () => {
  it('fails the streams it carried and sends none of them twice', async () => {
    const [key, cert] = await Promise.all([readFile(MOCK_KEY_PATH), readFile(MOCK_CERT_PATH)]);
    let received = 0;
    const sessions: ServerHttp2Session[] = [];
    const server = createSecureServer({ key, cert, allowHTTP1: true });
    server.on('session', (s) => { sessions.push(s); });
    server.on('stream', (stream) => {
      received++;
      stream.on('data', () => undefined);
      stream.on('end', () => {
        stream.respond({ ':status': 200, 'content-type': 'text/event-stream' });
        stream.write('data: {"choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"}}]}\n\n');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const spec = parseDeployment({ name: 'u', runtime: 'openai', endpoint: `https://localhost:${port}/v1`, replicas: 1, remote: { maxConcurrent: 64 } });
    const session = openSession(spec, () => ({ apiKey: undefined }), 1, { tls: { ca: mockCaPem() } });
    let firstTokens = 0;
    const start = (): Promise<unknown> => generate({ spec, session, ctx: { requestId: 'r', signal: new Cancellation() } }, req, (c: TokenChunk) => {
      if (c.text !== '') firstTokens++;
    }).then(() => 'resolved', (e: unknown) => e);
    try {
      const runs = [start()];
      await until(() => firstTokens === 1);
      runs.push(start(), start());
      await until(() => firstTokens === 3);
      expect(session.pool.stats.connected).toBe(1);
      for (const s of sessions) s.goaway();
      const outcomes = await Promise.all(runs);
      for (const o of outcomes) expect(o).toBeInstanceOf(InferenceError);
      // Give a resend the time to reach the server, were there one.
      await new Promise((r) => setTimeout(r, 200));
      expect(received).toBe(3);
    } finally {
      await closeSession(session);
      for (const s of sessions) s.destroy();
      await new Promise<void>((r) => { server.close(() => { r(); }); });
    }
  });
});
