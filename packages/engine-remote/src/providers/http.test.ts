import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cancellation, Flow, InferenceError, parseDeployment } from '@inference/core';
import { type RemoteSession, closeSession, openSession } from '../session.js';
import { type CallOptions, post } from './http.js';

type Route = (req: IncomingMessage, res: ServerResponse) => void;

let server: Server;
let route: Route = (_req, res) => res.end('{}');
/** Upstream requests whose connection closed before the response finished. */
let cutShort = 0;
let session: RemoteSession | undefined;

beforeAll(async () => {
  server = createServer((req, res) => {
    res.on('close', () => {
      if (!res.writableFinished) cutShort++;
    });
    req.resume();
    req.on('end', () => { route(req, res); });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
});

afterEach(async () => {
  if (session !== undefined) await closeSession(session);
  session = undefined;
  cutShort = 0;
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => { r(); }));
});

function call(signal = new Cancellation(), timeouts: Record<string, number> = {}): { o: CallOptions; signal: Cancellation } {
  const port = (server.address() as AddressInfo).port;
  const spec = parseDeployment({ name: 'u', runtime: 'openai', endpoint: `http://127.0.0.1:${port}/v1`, replicas: 1, remote: { timeouts } });
  session = openSession(spec, () => ({ apiKey: undefined }), 1);
  return { o: { spec, session, ctx: { requestId: 'req_1', signal } }, signal };
}

const until = async (cond: () => boolean): Promise<void> => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
};

describe('post (one upstream call)', () => {
  it('returns a 2xx body whole, sent to the endpoint path with the JSON body', async () => {
    let seen = '';
    route = (req, res) => {
      seen = `${req.method ?? ''} ${req.url ?? ''} ${req.headers['content-type'] ?? ''}`;
      res.end('{"ok":true}');
    };
    const { o, signal } = call();
    await expect(post(o, '/chat/completions', { 'content-type': 'application/json' }, { a: 1 }, signal, 'openai')).resolves.toBe('{"ok":true}');
    expect(seen).toBe('POST /v1/chat/completions application/json');
  });

  it('turns a non-2xx answer into its taxonomy error with retry-after', async () => {
    route = (_req, res) => {
      res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '3' });
      res.end('{"error":{"message":"slow down","type":"rate_limit_error"}}');
    };
    const { o, signal } = call();
    const err = await post(o, '/x', {}, {}, signal, 'openai').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InferenceError);
    expect((err as InferenceError).kind).toBe('rate_limited');
    expect((err as InferenceError).retryAfterMs).toBe(3000);
  });

  it('hands a streamed body to the reader chunk by chunk, resolves once the reader has enough, then drains', async () => {
    route = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('one;');
      setTimeout(() => res.write('two;'), 20);
      setTimeout(() => res.write('done;'), 40);
      // Never ended by the upstream: the reader saying "enough" is what resolves the call.
    };
    const { o, signal } = call();
    const got: string[] = [];
    await post(o, '/x', {}, {}, signal, 'openai', (bytes) => {
      got.push(Buffer.from(bytes).toString());
      return got.join('').includes('done;');
    });
    expect(got.join('')).toBe('one;two;done;');
    // The rest is drained for a grace period, then a connection the upstream keeps open is closed.
    expect(cutShort).toBe(0);
    await until(() => cutShort === 1);
    expect(cutShort).toBe(1);
  });

  it('aborts the upstream request when the signal fires mid-stream, rejecting with its reason', async () => {
    route = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('first;');
    };
    const { o, signal } = call();
    const reason = new InferenceError('internal', 'client disconnected');
    const p = post(o, '/x', {}, {}, signal, 'openai', () => {
      signal.abort(reason);
      return false;
    });
    await expect(p).rejects.toBe(reason);
    await until(() => cutShort === 1);
    expect(cutShort).toBe(1);
  });

  it('rejects at once when the signal fired before the call', async () => {
    const signal = new Cancellation();
    signal.abort(new InferenceError('upstream_timeout', 'too late'));
    const { o } = call(signal);
    await expect(post(o, '/x', {}, {}, signal, 'openai')).rejects.toMatchObject({ kind: 'upstream_timeout' });
  });

  it('aborts the upstream request when the reader throws, rejecting with that error', async () => {
    route = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('garbage');
    };
    const { o, signal } = call();
    const bad = new InferenceError('upstream_error', 'the upstream provider sent a malformed response');
    await expect(post(o, '/x', {}, {}, signal, 'openai', () => {
      throw bad;
    })).rejects.toBe(bad);
    await until(() => cutShort === 1);
    expect(cutShort).toBe(1);
  });

  it('maps an upstream that never answers to upstream_timeout (first-byte timeout)', async () => {
    route = () => undefined;
    const { o, signal } = call(undefined, { firstByteMs: 100 });
    await expect(post(o, '/x', {}, {}, signal, 'openai')).rejects.toMatchObject({ kind: 'upstream_timeout' });
  });

  it('ends a call that runs past the total timeout with upstream_timeout, streamed or not, and cuts the upstream off', async () => {
    // Each chunk comes well within the idle timeout; only the total runs out.
    route = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const tick = setInterval(() => res.write('data: x\n\n'), 20);
      res.on('close', () => { clearInterval(tick); });
    };
    for (const read of [undefined, () => false]) {
      const { o, signal } = call(undefined, { totalMs: 300, idleMs: 5000 });
      const started = Date.now();
      const err = await post(o, '/x', {}, {}, signal, 'openai', read).catch((e: unknown) => e);
      expect(err).toMatchObject({ kind: 'upstream_timeout', diagnostic: 'total timeout 300 ms' });
      expect(Date.now() - started).toBeGreaterThanOrEqual(300);
      await until(() => cutShort === 1);
      expect(cutShort).toBe(1);
      expect(signal.aborted).toBe(false);
      await closeSession(o.session);
      session = undefined;
      cutShort = 0;
    }
  });

  it('maps a connection cut mid-body to upstream_error', async () => {
    route = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
      res.write('{"partial":');
      setTimeout(() => res.destroy(), 20);
    };
    const { o, signal } = call();
    await expect(post(o, '/x', {}, {}, signal, 'openai')).rejects.toMatchObject({ kind: 'upstream_error' });
  });

  it('stops reading the upstream while the flow is paused, and reads on when it resumes', async () => {
    // The upstream writes as fast as its socket takes it, waiting for 'drain' like any good server.
    let sent = 0;
    let blocked = false;
    const total = 32 * 1024 * 1024;
    route = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const chunk = Buffer.alloc(64 * 1024, 120);
      const pump = (): void => {
        while (sent < total) {
          sent += chunk.length;
          if (!res.write(chunk)) {
            blocked = true;
            res.once('drain', () => { blocked = false; pump(); });
            return;
          }
        }
        res.end();
      };
      pump();
    };
    const flow = new Flow();
    const { o, signal } = call();
    let received = 0;
    let pausedAt = 0;
    const ctx = { ...o.ctx, flow };
    const done = post({ ...o, ctx }, '/x', {}, {}, signal, 'openai', (bytes) => {
      received += bytes.length;
      // The client stops reading after the first MiB.
      if (received >= 1024 * 1024 && pausedAt === 0) {
        pausedAt = received;
        flow.pause();
      }
      return false;
    });
    await until(() => pausedAt > 0 && blocked);
    expect(blocked).toBe(true);
    await new Promise((r) => setTimeout(r, 200));
    // Paused: what arrived after is at most what undici had in hand, and the upstream is held back.
    expect(received - pausedAt).toBeLessThan(1024 * 1024);
    expect(sent).toBeLessThan(total);
    flow.resume();
    await done;
    expect(received).toBe(total);
  });
});
