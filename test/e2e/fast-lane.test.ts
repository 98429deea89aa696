// The lean front of POST /v1/chat/completions and /v1/completions (http/fastLane.ts)
// answers exactly as Fastify does. Each check sends the same request to two
// gateways with the same config, one with the lean front (the default) and one
// without it (serve(..., { fastLane: false }): Fastify serves every route), and
// compares status, headers (the date left out, generated ids masked) and body
// (completion ids and timestamps masked): bad JSON, forbidden keys, empty and
// oversized bodies (declared and chunked), other or missing content types, a
// missing or wrong key, a key that may not use the deployment, invalid fields, an
// unknown deployment, request ids echoed or replaced, CORS headers, upstream
// errors with retry-after, streamed answers; over HTTP/1.1 and over HTTP/2 (TLS,
// with optional client certificates); and while draining. It also checks on the
// lean front itself that a client who goes away cancels the upstream request, and
// that drain waits for a stream it took.

import http2 from 'node:http2';
import { Readable } from 'node:stream';
import { type Server, parseConfig, serve } from '@inference/gateway';
import { type MockUpstream, startMockUpstream } from '@inference/mock-upstream';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CertFiles, Pki } from '../support/pki.js';
import { sleep } from '../support/cluster.js';

const APP = 'https://app.example.com';
const KEY = 'k-lane-e2e';
const NARROW = 'k-lane-narrow';
const LIMIT = 2048;
const PATHS = ['/v1/chat/completions', '/v1/completions'] as const;
type Path = (typeof PATHS)[number];

let mock: MockUpstream;
let pki: Pki;
let lane: Server;
let plain: Server;
let laneTls: Server;
let plainTls: Server;
let ca: Buffer;
let good: CertFiles;
let stranger: CertFiles;

interface Answer {
  readonly status: number;
  readonly headers: Record<string, unknown>;
  readonly body: string;
}

function config(tls?: Record<string, unknown>): ReturnType<typeof parseConfig> {
  const deployments = [
    { name: 'gpt', runtime: 'openai', endpoint: mock.url, model: 'gpt-4o-mini', replicas: 1, remote: { maxRetries: 0 } },
    { name: 'other', runtime: 'openai', endpoint: mock.url, model: 'gpt-4o-mini', replicas: 1, remote: { maxRetries: 0 } },
  ];
  const server = { port: 0, bodyLimitBytes: LIMIT, cors: { origins: [APP] }, ...(tls === undefined ? {} : { tls }) };
  const apiKeys = [{ name: 'web', keyEnv: 'LANE_E2E_KEY' }, { name: 'narrow', keyEnv: 'LANE_E2E_NARROW', deployments: ['gpt'] }];
  return parseConfig({ server, auth: { apiKeys }, deployments });
}

beforeAll(async () => {
  process.env.LANE_E2E_KEY = KEY;
  process.env.LANE_E2E_NARROW = NARROW;
  mock = await startMockUpstream({ port: 0 });
  pki = Pki.create();
  ca = Pki.read(pki.ca('ca'));
  const clientCa = pki.ca('client-ca');
  pki.ca('other-ca');
  good = pki.leaf('client-ca', 'good-client');
  stranger = pki.leaf('other-ca', 'stranger');
  const tls = { ...pki.leaf('ca', 'server'), clientCaFile: clientCa, requireClientCert: false };
  [lane, plain, laneTls, plainTls] = await Promise.all([
    serve(config()), serve(config(), { fastLane: false }), serve(config(tls)), serve(config(tls), { fastLane: false }),
  ]);
});

afterAll(async () => {
  await Promise.all([lane.close(), plain.close(), laneTls.close(), plainTls.close()]);
  await mock.close();
  pki.destroy();
});

async function waitFor(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** What may differ between two answers to the same request: the date, generated ids, timestamps. */
function masked(status: number, headers: Record<string, unknown>, body: string): Answer {
  const h: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (k === 'date' || k.startsWith(':')) continue;
    h[k] = k === 'x-request-id' && typeof v === 'string' && /^req_[0-9a-f]+$/.test(v) ? 'req_<generated>' : v;
  }
  return { status, headers: h, body: body.replace(/\b(chatcmpl|cmpl)-[0-9a-f]+/g, '$1-<id>').replace(/"created":\d+/g, '"created":0') };
}

type Body = string | (() => Readable) | undefined;

async function h1(server: Server, path: Path, headers: Record<string, string>, body: Body): Promise<Answer> {
  const res = await request(`${server.url}${path}`, { method: 'POST', headers, body: typeof body === 'function' ? body() : body });
  return masked(res.statusCode, res.headers, await res.body.text());
}

function h2(server: Server, path: Path, headers: Record<string, string>, body: string, cert?: CertFiles): Promise<Answer> {
  const client = cert === undefined ? {} : { cert: Pki.read(cert.certFile), key: Pki.read(cert.keyFile) };
  return new Promise((resolve, reject) => {
    const session = http2.connect(server.url, { ca, ...client });
    session.on('error', reject);
    const req = session.request({ ':method': 'POST', ':path': path, ...headers });
    let head: Record<string, unknown> = {};
    let text = '';
    req.setEncoding('utf8');
    req.on('response', (h) => { head = { ...h }; });
    req.on('data', (d: string) => { text += d; });
    req.on('error', reject);
    req.on('end', () => {
      session.close();
      resolve(masked(Number(head[':status']), head, text));
    });
    req.end(body);
  });
}

const json = { 'content-type': 'application/json', authorization: `Bearer ${KEY}` };

/** A valid request body for the route, with `extra` fields. */
function valid(path: Path, extra: Record<string, unknown> = {}): string {
  const input = path === '/v1/chat/completions' ? { messages: [{ role: 'user', content: 'hi' }] } : { prompt: 'hi' };
  return JSON.stringify({ model: 'gpt', max_tokens: 4, ...input, ...extra });
}

/** A body sent in 512-byte chunks without a content-length (chunked transfer encoding). */
function chunked(size: number): () => Readable {
  return () => Readable.from(Array.from({ length: Math.ceil(size / 512) }, () => 'x'.repeat(512)));
}

interface Case {
  readonly name: string;
  readonly headers: Record<string, string>;
  readonly body: (path: Path) => Body;
}

const CASES: readonly Case[] = [
  { name: 'a valid request, a client request id, a listed origin', headers: { ...json, origin: APP, 'x-request-id': 'client-id.1' }, body: (p) => valid(p) },
  { name: 'streamed, with usage', headers: { ...json, origin: APP }, body: (p) => valid(p, { stream: true, stream_options: { include_usage: true } }) },
  { name: 'an unlisted origin', headers: { ...json, origin: 'https://evil.example.com' }, body: (p) => valid(p) },
  { name: 'a request id that does not match the pattern', headers: { ...json, 'x-request-id': 'has space' }, body: (p) => valid(p) },
  { name: 'bad JSON', headers: json, body: () => '{"model":' },
  { name: 'a __proto__ key', headers: json, body: () => '{"__proto__":{"x":1}}' },
  { name: 'a constructor.prototype key', headers: json, body: () => '{"constructor":{"prototype":{"x":1}}}' },
  { name: 'an empty body', headers: json, body: () => '' },
  { name: 'a declared body over the limit', headers: json, body: () => 'x'.repeat(LIMIT + 1) },
  { name: 'a chunked body over the limit', headers: json, body: () => chunked(LIMIT * 2) },
  { name: 'a JSON array', headers: json, body: () => '[1,2]' },
  { name: 'text/plain', headers: { ...json, 'content-type': 'text/plain' }, body: (p) => valid(p) },
  { name: 'no content type, with a body', headers: { authorization: `Bearer ${KEY}` }, body: (p) => valid(p) },
  { name: 'no content type, no body', headers: { authorization: `Bearer ${KEY}` }, body: () => undefined },
  { name: 'JSON with parameters, in capitals', headers: { ...json, 'content-type': 'Application/JSON ; charset=UTF-8' }, body: (p) => valid(p) },
  { name: 'a JSON subtype', headers: { ...json, 'content-type': 'application/json-seq' }, body: (p) => valid(p) },
  { name: 'no key', headers: { 'content-type': 'application/json', origin: APP }, body: (p) => valid(p) },
  { name: 'a wrong key', headers: { 'content-type': 'application/json', authorization: 'Bearer nope' }, body: (p) => valid(p) },
  { name: 'a key not allowed on the deployment', headers: { ...json, authorization: `Bearer ${NARROW}` }, body: (p) => valid(p, { model: 'other' }) },
  { name: 'an invalid field', headers: json, body: (p) => valid(p, { max_tokens: -1 }) },
  { name: 'an unknown deployment', headers: json, body: (p) => valid(p, { model: 'nope' }) },
];

describe('the lean front answers as Fastify does, HTTP/1.1', () => {
  for (const path of PATHS) {
    it.each(CASES)(`${path}: $name`, async (c) => {
      const a = await h1(lane, path, c.headers, c.body(path));
      const b = await h1(plain, path, c.headers, c.body(path));
      expect(a).toEqual(b);
      expect(a.headers['x-request-id']).toEqual(c.headers['x-request-id'] === 'client-id.1' ? 'client-id.1' : 'req_<generated>');
    });
  }

  it('an upstream error, with retry-after', async () => {
    const answers: Answer[] = [];
    for (const server of [lane, plain]) {
      mock.setScript([{ status: 429, retryAfterSeconds: 7 }]);
      answers.push(await h1(server, '/v1/chat/completions', json, valid('/v1/chat/completions')));
    }
    expect(answers[0]?.status).toBe(429);
    expect(answers[0]?.headers['retry-after']).toBeDefined();
    expect(answers[0]).toEqual(answers[1]);
  });

  it('CORS headers on plain and streamed answers from a listed origin', async () => {
    for (const stream of [false, true]) {
      const a = await h1(lane, '/v1/chat/completions', { ...json, origin: APP }, valid('/v1/chat/completions', { stream }));
      expect(a.status).toBe(200);
      expect(a.headers['access-control-allow-origin']).toBe(APP);
      expect(a.headers['access-control-expose-headers']).toMatch(/x-request-id/);
      expect(a.headers.vary).toBe('origin');
    }
  });
});

describe('CORS on every event stream', () => {
  it('a streamed Anthropic message carries the CORS headers too', async () => {
    const body = JSON.stringify({ model: 'gpt', max_tokens: 4, stream: true, messages: [{ role: 'user', content: 'hi' }] });
    const headers = { 'content-type': 'application/json', 'x-api-key': KEY, 'anthropic-version': '2023-06-01', origin: APP };
    const res = await request(`${lane.url}/v1/messages`, { method: 'POST', headers, body });
    const text = await res.body.text();
    expect(res.statusCode).toBe(200);
    expect(text).toContain('message_stop');
    expect(res.headers['access-control-allow-origin']).toBe(APP);
    expect(res.headers.vary).toBe('origin');
  });
});

describe('the lean front answers as Fastify does, HTTP/2 over TLS', () => {
  const h2Cases = CASES.filter((c) => typeof c.body('/v1/completions') !== 'function');
  for (const path of PATHS) {
    it.each(h2Cases)(`${path}: $name`, async (c) => {
      const body = c.body(path);
      const text = typeof body === 'string' ? body : '';
      const a = await h2(laneTls, path, c.headers, text);
      expect(a).toEqual(await h2(plainTls, path, c.headers, text));
      expect(a.headers.connection).toBeUndefined();
    });
  }

  it('client certificates: one that verifies is served, one that does not is refused alike', async () => {
    const path = '/v1/chat/completions';
    const ok = await h2(laneTls, path, json, valid(path), good);
    expect(ok.status).toBe(200);
    const refused = await h2(laneTls, path, json, valid(path), stranger);
    expect(refused.status).toBe(401);
    expect(refused).toEqual(await h2(plainTls, path, json, valid(path), stranger));
  });
});

describe('on the lean front itself', () => {
  it('a client that goes away cancels the upstream request', async () => {
    mock.reset();
    mock.setScript([{ hang: true }]);
    const ac = new AbortController();
    const pending = request(`${lane.url}/v1/chat/completions`, { method: 'POST', headers: json, body: valid('/v1/chat/completions'), signal: ac.signal });
    await waitFor('the upstream request', () => mock.stats().inFlight === 1);
    expect(lane.inFlight()).toBe(1);
    ac.abort();
    await expect(pending).rejects.toThrow();
    await waitFor('the upstream request to be cancelled', () => mock.stats().inFlight === 0 && lane.inFlight() === 0);
    mock.reset();
  });

  it('while draining: a stream it took runs to its end, new requests get 503 with connection: close as from Fastify', async () => {
    mock.setScript([{ chunkDelayMs: 40, tokens: 10 }]);
    const body = valid('/v1/chat/completions', { stream: true, max_tokens: 10 });
    const res = await request(`${lane.url}/v1/chat/completions`, { method: 'POST', headers: json, body });
    expect(res.statusCode).toBe(200);
    expect(lane.inFlight()).toBe(1);
    const drained = lane.drain(10_000);
    void plain.drain(10_000);
    for (const path of PATHS) {
      const a = await h1(lane, path, json, valid(path));
      expect(a.status).toBe(503);
      expect(a.headers.connection).toBe('close');
      expect(a).toEqual(await h1(plain, path, json, valid(path)));
    }
    const text = await res.body.text();
    expect(text.trim().endsWith('data: [DONE]')).toBe(true);
    expect(await drained).toBe(true);
    expect(lane.inFlight()).toBe(0);
  });
});
