// What the gateway answers while it shuts down, on both fronts (the lean front of
// the generate routes and Fastify's path, serve(..., { fastLane: false })):
// - while the server closes (close() has begun and the listener no longer takes
//   connections), a request on a connection already open gets a 503 in the
//   taxonomy's envelope, as a draining gateway gives it: the OpenAI envelope on the
//   OpenAI, admin and probe routes, Anthropic's shape on /v1/messages (its overloads
//   are 529), with `x-request-id`; over HTTP/1.1 (`connection: close`) and HTTP/2;
// - while draining, an HTTP/2 answer carries no `connection` header (HTTP/2 forbids
//   it; Node would warn and drop it) and nothing is warned, while HTTP/1.1 over the
//   same TLS listener still gets `connection: close`.
// The closing window is held open by connections the server waits for: an HTTP/1.1
// connection with a request in flight (its body half sent) when close() begins, the
// next request following it on that connection; an HTTP/2 session opened before.
// See docs/config.md ("Shutdown").

import http2 from 'node:http2';
import https from 'node:https';
import { type Socket, connect } from 'node:net';
import { type Server, parseConfig, serve } from '@inference/gateway';
import { type MockUpstream, startMockUpstream } from '@inference/mock-upstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CertFiles, Pki } from '../support/pki.js';
import { until } from '../support/cluster.js';

let mock: MockUpstream;
let pki: Pki;
let ca: Buffer;
let tlsFiles: CertFiles;

// Node warns once per process about a connection header on an HTTP/2 answer (and drops
// the header): warnings are collected from the start, so whichever HTTP/2 check sets one
// first sees it (and so do the ones after it).
const warnings: string[] = [];
const onWarning = (w: Error): void => { warnings.push(`${w.name}: ${w.message}`); };

/** Warnings are emitted on the next tick. */
async function warned(): Promise<string[]> {
  await new Promise((r) => setImmediate(r));
  return warnings;
}

beforeAll(async () => {
  process.on('warning', onWarning);
  mock = await startMockUpstream({ port: 0 });
  pki = Pki.create();
  ca = Pki.read(pki.ca('ca'));
  tlsFiles = pki.leaf('ca', 'server');
});

afterAll(async () => {
  process.off('warning', onWarning);
  await mock.close();
  pki.destroy();
});

function start(tls: boolean, fastLane: boolean): Promise<Server> {
  const deployments = [{ name: 'gpt', runtime: 'openai', endpoint: mock.url, model: 'gpt-4o-mini', replicas: 1 }];
  return serve(parseConfig({ server: { port: 0, ...(tls ? { tls: tlsFiles } : {}) }, deployments }), { fastLane });
}

type Headers = Record<string, string | string[] | number | undefined>;

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: unknown;
}

interface Ask {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly body?: string;
}

const CHAT: Ask = { method: 'POST', path: '/v1/chat/completions', body: JSON.stringify({ model: 'gpt', max_tokens: 4, messages: [{ role: 'user', content: 'hi' }] }) };
const COMPLETION: Ask = { method: 'POST', path: '/v1/completions', body: JSON.stringify({ model: 'gpt', max_tokens: 4, prompt: 'hi' }) };
const MESSAGES: Ask = { method: 'POST', path: '/v1/messages', body: JSON.stringify({ model: 'gpt', max_tokens: 4, messages: [{ role: 'user', content: 'hi' }] }) };
const MODELS: Ask = { method: 'GET', path: '/v1/models' };
const ADMIN: Ask = { method: 'GET', path: '/admin/deployments' };
const HEALTH: Ask = { method: 'GET', path: '/health' };
const OPENAI_ROUTES = [CHAT, COMPLETION, MODELS, ADMIN, HEALTH];

const SHUTTING_DOWN = 'the server is shutting down';

/** The OpenAI envelope of the shutdown refusal, with the request id it must carry. */
function expectOpenAIRefusal(a: Answer, what: string, id?: string): void {
  expect(a.status, what).toBe(503);
  expect(a.headers['content-type'], what).toMatch(/^application\/json/);
  expect(a.body, what).toEqual({ error: { message: SHUTTING_DOWN, type: 'server_error', param: null, code: 'overloaded' } });
  expect(a.headers['x-request-id'], what).toMatch(id === undefined ? /^req_[0-9a-f]+$/ : new RegExp(`^${id}$`));
}

/** Anthropic's shape of the same refusal: an overload, 529 on that surface, with `request-id` and the body's `request_id`. */
function expectAnthropicRefusal(a: Answer, what: string): void {
  expect(a.status, what).toBe(529);
  expect(a.headers['content-type'], what).toMatch(/^application\/json/);
  const id = a.headers['x-request-id'];
  expect(id, what).toMatch(/^req_[0-9a-f]+$/);
  expect(a.headers['request-id'], what).toBe(id);
  expect(a.body, what).toEqual({ type: 'error', error: { type: 'overloaded_error', message: SHUTTING_DOWN }, request_id: id });
}

function parseBody(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** Every HTTP/1.1 answer in `text`, in order (each with a content-length, or the rest of the stream). */
function answersIn(text: string): Answer[] {
  const out: Answer[] = [];
  let rest = text;
  while (rest.length > 0) {
    const split = rest.indexOf('\r\n\r\n');
    if (split < 0) break;
    const [statusLine = '', ...lines] = rest.slice(0, split).split('\r\n');
    const head: Headers = {};
    for (const l of lines) {
      const colon = l.indexOf(':');
      head[l.slice(0, colon).toLowerCase()] = l.slice(colon + 1).trim();
    }
    const length = head['content-length'] === undefined ? rest.length : Number(head['content-length']);
    const body = rest.slice(split + 4, split + 4 + length);
    out.push({ status: Number(statusLine.split(' ')[1]), headers: head, body: parseBody(body) });
    rest = rest.slice(split + 4 + length);
  }
  return out;
}

// The first request on each connection: accepted before close() begins, its body half
// sent (the connection is busy, so the closing server waits for it); a body the route
// refuses with a 400 once complete, so nothing is dispatched.
const FIRST_BODY = JSON.stringify({ model: 'gpt' });
const FIRST_HEAD = `POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${String(FIRST_BODY.length)}\r\n\r\n`;
const HALF = 6;

/**
 * A connection with a request in flight when the server starts closing; `follow()`
 * completes it and sends `ask` after it on the same connection, so that `ask`
 * arrives while the server closes.
 */
class BusyConnection {
  private data = '';
  private readonly ended: Promise<void>;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => { this.data += d; });
    this.ended = new Promise((resolve) => { socket.on('close', () => { resolve(); }); });
  }

  static open(port: number): Promise<BusyConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.write(FIRST_HEAD + FIRST_BODY.slice(0, HALF), () => { resolve(new BusyConnection(socket)); });
      });
      socket.on('error', reject);
    });
  }

  /** Completes the first request, sends `ask`; resolves with both answers once the server has closed the connection. */
  async follow(ask: Ask, headers: Record<string, string> = {}): Promise<[Answer | undefined, Answer | undefined]> {
    const body = ask.body ?? '';
    const more = { host: '127.0.0.1', ...headers, ...(body === '' ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }) };
    const head = `${ask.method} ${ask.path} HTTP/1.1\r\n${Object.entries(more).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
    this.socket.write(FIRST_BODY.slice(HALF) + head + body);
    await this.ended;
    const [first, second] = answersIn(this.data);
    return [first, second];
  }
}

/** Whether a new TCP connection to `port` is refused: the listener is closed, so the server is closing. */
function refused(port: number): Promise<true | undefined> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.on('connect', () => {
      s.destroy();
      resolve(undefined);
    });
    s.on('error', () => { resolve(true); });
  });
}

function h2Ask(session: http2.ClientHttp2Session, ask: Ask): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': ask.method, ':path': ask.path, ...(ask.body === undefined ? {} : { 'content-type': 'application/json' }) });
    let head: Headers = {};
    let text = '';
    req.setEncoding('utf8');
    req.on('response', (h) => { head = { ...h }; });
    req.on('data', (d: string) => { text += d; });
    req.on('error', reject);
    req.on('end', () => { resolve({ status: Number(head[':status']), headers: head, body: parseBody(text) }); });
    req.end(ask.body);
  });
}

function h2Session(server: Server): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(server.url, { ca });
    session.once('error', reject);
    session.once('connect', () => { resolve(session); });
  });
}

/** HTTP/1.1 over the TLS listener (https offers no h2). */
function h1Tls(server: Server, ask: Ask): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request(`${server.url}${ask.path}`, { method: ask.method, ca, headers: { 'content-type': 'application/json' }, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { text += d; });
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parseBody(text) }); });
    });
    req.on('error', reject);
    req.end(ask.body);
  });
}

const FRONTS = [{ front: 'the lean front', fastLane: true }, { front: "Fastify's path", fastLane: false }] as const;

describe.each(FRONTS)('while closing, through $front', ({ fastLane }) => {
  it('HTTP/1.1: a request on a connection already open gets the envelope of its route, with connection: close', async () => {
    const server = await start(false, fastLane);
    const asks = [...OPENAI_ROUTES, MESSAGES];
    const busy = await Promise.all(asks.map(() => BusyConnection.open(server.port)));
    // Every first request is in flight: the connections are busy when close() begins.
    await until('the first requests in flight', () => Promise.resolve(server.inFlight() === asks.length ? true : undefined), 10_000, 20);
    const closed = server.close();
    await until('the listener to close', () => refused(server.port), 10_000, 20);
    const answers = await Promise.all(busy.map((b, i) => b.follow(asks[i] ?? CHAT, i === 0 ? { 'x-request-id': 'closing-1' } : {})));
    await closed;
    answers.forEach(([first, a], i) => {
      const ask = asks[i] ?? CHAT;
      const what = `${ask.method} ${ask.path}: ${JSON.stringify([first, a])}`;
      // Accepted before closing: answered as ever (its missing field named), and the connection kept.
      expect(first?.status, what).toBe(400);
      if (a === undefined) throw new Error(`no answer while closing: ${what}`);
      if (ask === MESSAGES) expectAnthropicRefusal(a, what);
      else expectOpenAIRefusal(a, what, i === 0 ? 'closing-1' : undefined);
      expect(a.headers.connection, what).toBe('close');
    });
  });
});

describe.each(FRONTS)('HTTP/2 over TLS, through $front', ({ fastLane }) => {
  let server: Server;
  let closed: Promise<void> | undefined;

  beforeAll(async () => {
    server = await start(true, fastLane);
  });
  afterAll(async () => {
    await (closed ?? server.close());
  });

  it('while draining: 503 with no connection header and no warning; HTTP/1.1 still gets connection: close', async () => {
    expect(await server.drain(10_000)).toBe(true);
    const session = await h2Session(server);
    try {
      for (const ask of [CHAT, COMPLETION, MODELS, ADMIN, MESSAGES]) {
        const a = await h2Ask(session, ask);
        const what = `h2 ${ask.path}: ${JSON.stringify(a)}`;
        if (ask === MESSAGES) expectAnthropicRefusal(a, what);
        else expectOpenAIRefusal(a, what);
        expect(a.headers.connection, what).toBeUndefined();
      }
      // The probes keep answering while draining.
      expect((await h2Ask(session, HEALTH)).status).toBe(200);
    } finally {
      session.close();
    }
    expect(await warned()).toEqual([]);
    const h1 = await h1Tls(server, CHAT);
    expectOpenAIRefusal(h1, JSON.stringify(h1));
    expect(h1.headers.connection).toBe('close');
  });

  it('while closing: a request on a session already open gets the envelope of its route', async () => {
    const session = await h2Session(server);
    try {
      // The session is open when close() begins: the server waits for its sessions to end.
      await h2Ask(session, HEALTH);
      closed = server.close();
      await until('the listener to close', () => refused(server.port), 10_000, 20);
      for (const ask of [...OPENAI_ROUTES, MESSAGES]) {
        const a = await h2Ask(session, ask);
        const what = `h2 ${ask.method} ${ask.path}: ${JSON.stringify(a)}`;
        if (ask === MESSAGES) expectAnthropicRefusal(a, what);
        else expectOpenAIRefusal(a, what);
        expect(a.headers.connection, what).toBeUndefined();
      }
    } finally {
      session.close();
    }
    expect(await warned()).toEqual([]);
    await closed;
  });
});
