// Closing the gateway with client connections open (docs/config.md, "Shutdown"),
// through both fronts of the generate routes:
// - an idle HTTP/2 session (TLS, ALPN h2) gets a GOAWAY and ends, and does not hold
//   close() (before: until its 72 s session timeout);
// - an idle HTTP/1.1 keep-alive connection, over TLS and over plain HTTP, is closed,
//   and so is one whose request was in flight when close() began, once answered
//   (before: until its keep-alive timeout, or for ever over TLS);
// - a streamed request in flight on an HTTP/2 session when close() begins (its body
//   half sent) still completes in full after the GOAWAY, and the session then ends;
// - SIGTERM to the real CLI, default settings, with an idle HTTP/2 client connected,
//   exits 0 (before: 1, "shutdown did not complete", after the drain bound and the grace);
//   and with clients stopped mid-body over HTTP/1.1 and HTTP/2, which no request can end:
//   they are destroyed 5 s after the close began, and it exits 0 (before: 1, as above).
// No timing threshold: close() races a generous bound, and which one won is asserted.

import http2 from 'node:http2';
import { type Socket, connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { type Server, parseConfig, serve } from '@inference/gateway';
import { type MockUpstream, startMockUpstream } from '@inference/mock-upstream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type CertFiles, Pki } from '../support/pki.js';
import { type CliServer, startCli, writeConfig } from '../support/cli.js';

let mock: MockUpstream;
let pki: Pki;
let ca: Buffer;
let tlsFiles: CertFiles;

beforeAll(async () => {
  mock = await startMockUpstream({ port: 0 });
  pki = Pki.create();
  ca = Pki.read(pki.ca('ca'));
  tlsFiles = pki.leaf('ca', 'server');
});

afterAll(async () => {
  await mock.close();
  pki.destroy();
});

/** Far above what any close takes here, far below the 65 s keep-alive and 72 s HTTP/2 session timeouts. */
const BOUND_MS = 20_000;

const deployments = (): unknown[] => [{ name: 'gpt', runtime: 'openai', endpoint: mock.url, model: 'gpt-4o-mini', replicas: 1 }];

function start(tls: boolean, fastLane: boolean): Promise<Server> {
  return serve(parseConfig({ server: { port: 0, ...(tls ? { tls: tlsFiles } : {}) }, deployments: deployments() }), { fastLane });
}

/** 'done' when `p` settles first, 'bound' when BOUND_MS passes first. */
async function within(p: Promise<unknown>): Promise<'done' | 'bound'> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<'bound'>((r) => { timer = setTimeout(() => { r('bound'); }, BOUND_MS); });
  try {
    return await Promise.race([p.then(() => 'done' as const), bound]);
  } finally {
    clearTimeout(timer);
  }
}

/** A graceful GOAWAY (NO_ERROR; Node may send it again as the session ends), then the end of the session, and no error. */
function expectGoaway(events: string[]): void {
  expect(events[0]).toBe('goaway 0');
  expect(events.at(-1)).toBe('close');
  expect(events.filter((e) => e !== 'goaway 0' && e !== 'close')).toEqual([]);
}

/** An HTTP/2 session and what happened to it. */
class Session {
  readonly events: string[] = [];
  readonly closed: Promise<void>;

  private constructor(readonly session: http2.ClientHttp2Session) {
    session.on('goaway', (code: number) => { this.events.push(`goaway ${String(code)}`); });
    session.on('error', (e: Error & { code?: string }) => { this.events.push(`error ${e.code ?? e.message}`); });
    this.closed = new Promise((resolve) => { session.once('close', () => { this.events.push('close'); resolve(); }); });
  }

  static open(url: string): Promise<Session> {
    return new Promise((resolve, reject) => {
      const session = http2.connect(url, { ca });
      session.once('error', reject);
      session.once('connect', () => { resolve(new Session(session)); });
    });
  }

  get(path: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = this.session.request({ ':path': path });
      let status = 0;
      req.on('response', (h) => { status = Number(h[':status']); });
      req.on('data', () => undefined);
      req.on('end', () => { resolve(status); });
      req.on('error', reject);
      req.end();
    });
  }
}

/** A raw HTTP/1.1 connection (over TLS without ALPN: the listener's HTTP/1.1 fallback), keep-alive, with what it received. */
class H1Connection {
  private data = '';
  readonly closed: Promise<void>;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => { this.data += d; });
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => { socket.once('close', () => { resolve(); }); });
  }

  static open(server: Server, tls: boolean): Promise<H1Connection> {
    return new Promise((resolve, reject) => {
      const socket: Socket = tls
        ? tlsConnect({ host: '127.0.0.1', port: server.port, ca, servername: 'localhost' }, () => { resolve(new H1Connection(socket)); })
        : netConnect(server.port, '127.0.0.1', () => { resolve(new H1Connection(socket)); });
      socket.once('error', reject);
    });
  }

  get received(): string {
    return this.data;
  }

  write(text: string): Promise<void> {
    return new Promise((resolve, reject) => { this.socket.write(text, (e) => { if (e) reject(e); else resolve(); }); });
  }

  /** Waits until `n` answers have come (each ends its headers; those asked here carry small bodies). */
  async answers(n: number): Promise<void> {
    while ((this.data.match(/HTTP\/1\.1 \d{3}/g) ?? []).length < n || !this.data.endsWith('}')) {
      if (this.socket.destroyed) throw new Error(`connection closed after: ${this.data}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  destroy(): void {
    this.socket.destroy();
  }
}

const HEALTH_H1 = 'GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n';
// Refused with a 400 once complete (no messages): nothing is dispatched.
const BAD_BODY = JSON.stringify({ model: 'gpt' });
const BAD_HEAD = `POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${String(BAD_BODY.length)}\r\n\r\n`;

async function inFlight(server: Server, n: number): Promise<void> {
  for (let i = 0; i < 1000 && server.inFlight() < n; i++) await new Promise((r) => setTimeout(r, 10));
  expect(server.inFlight()).toBe(n);
}

const FRONTS = [{ front: 'the lean front', fastLane: true }, { front: "Fastify's path", fastLane: false }] as const;

describe.each(FRONTS)('close() with idle connections open, through $front', ({ fastLane }) => {
  it('TLS: an idle HTTP/2 session gets a GOAWAY and ends; idle and just-answered HTTP/1.1 connections are closed', async () => {
    const server = await start(true, fastLane);
    const h2 = await Session.open(server.url);
    const idle = await H1Connection.open(server, true);
    const busy = await H1Connection.open(server, true);
    let closing: Promise<void> | undefined;
    try {
      expect(await h2.get('/health')).toBe(200);
      await idle.write(HEALTH_H1);
      await idle.answers(1);
      // In flight when close() begins: its body is half sent.
      await busy.write(BAD_HEAD + BAD_BODY.slice(0, 6));
      await inFlight(server, 1);
      closing = server.close();
      await busy.write(BAD_BODY.slice(6));
      expect(await within(closing)).toBe('done');
      expect(await within(Promise.all([h2.closed, idle.closed, busy.closed]))).toBe('done');
      expectGoaway(h2.events);
      // Answered as ever, keep-alive, then closed once idle.
      expect(busy.received).toMatch(/^HTTP\/1\.1 400 /);
      expect(busy.received).not.toMatch(/connection: close/i);
    } finally {
      h2.session.destroy();
      idle.destroy();
      busy.destroy();
      await closing;
    }
  }, 60_000);

  it('plain HTTP: idle and just-answered HTTP/1.1 keep-alive connections are closed', async () => {
    const server = await start(false, fastLane);
    const idle = await H1Connection.open(server, false);
    const busy = await H1Connection.open(server, false);
    let closing: Promise<void> | undefined;
    try {
      await idle.write(HEALTH_H1);
      await idle.answers(1);
      await busy.write(BAD_HEAD + BAD_BODY.slice(0, 6));
      await inFlight(server, 1);
      closing = server.close();
      await busy.write(BAD_BODY.slice(6));
      expect(await within(closing)).toBe('done');
      expect(await within(Promise.all([idle.closed, busy.closed]))).toBe('done');
      expect(busy.received).toMatch(/^HTTP\/1\.1 400 /);
    } finally {
      idle.destroy();
      busy.destroy();
      await closing;
    }
  }, 60_000);

  it('HTTP/2: a streamed request in flight when close() begins completes in full after the GOAWAY', async () => {
    mock.setDefault({ tokens: 40, chunkDelayMs: 20 });
    const server = await start(true, fastLane);
    const h2 = await Session.open(server.url);
    let closing: Promise<void> | undefined;
    try {
      const body = JSON.stringify({ model: 'gpt', stream: true, max_tokens: 12, messages: [{ role: 'user', content: 'hi' }] });
      const req = h2.session.request({ ':method': 'POST', ':path': '/v1/chat/completions', 'content-type': 'application/json' });
      let status = 0;
      let text = '';
      req.setEncoding('utf8');
      req.on('response', (h) => { status = Number(h[':status']); });
      req.on('data', (d: string) => { text += d; });
      const ended = new Promise<void>((resolve, reject) => { req.on('end', resolve); req.on('error', reject); });
      req.write(body.slice(0, 10));
      await inFlight(server, 1);
      closing = server.close();
      // The GOAWAY comes while the stream is open; the rest of its body follows it.
      const goaway = new Promise<void>((resolve) => { h2.session.once('goaway', () => { resolve(); }); });
      expect(await within(goaway)).toBe('done');
      req.end(body.slice(10));
      expect(await within(ended)).toBe('done');
      expect(status).toBe(200);
      const events = text.split('\n\n').filter((b) => b.startsWith('data: ')).map((b) => b.slice(6));
      expect(events.at(-1)).toBe('[DONE]');
      const chunks = events.slice(0, -1).map((d) => JSON.parse(d) as { error?: unknown; choices?: { finish_reason?: string | null }[] });
      expect(chunks.filter((c) => c.error !== undefined)).toEqual([]);
      expect(chunks.some((c) => (c.choices ?? []).some((ch) => ch.finish_reason === 'length'))).toBe(true);
      expect(await within(closing)).toBe('done');
      expect(await within(h2.closed)).toBe('done');
      expectGoaway(h2.events);
    } finally {
      mock.setDefault({});
      h2.session.destroy();
      await closing;
    }
  }, 60_000);
});

describe('SIGTERM to the CLI', () => {
  let cli: CliServer | undefined;
  afterEach(() => {
    cli?.kill();
    cli = undefined;
  });

  it('exits 0 with an idle HTTP/2 client connected, default drain settings', async () => {
    const c = await startCli(['--config', writeConfig({ server: { port: 0, tls: tlsFiles }, deployments: deployments() }), '--quiet']);
    cli = c;
    expect(c.url).toMatch(/^https:/);
    const h2 = await Session.open(c.url);
    try {
      expect(await h2.get('/health')).toBe(200);
      c.child.kill('SIGTERM');
      // Without the GOAWAY: the drain bound (30 s) plus the CLI's grace (15 s), then exit 1.
      expect(await c.exited).toBe(0);
      expect(await within(h2.closed)).toBe('done');
      expect(h2.events[0]).toBe('goaway 0');
      expect(c.output()).toMatch(/SIGTERM, draining 0 requests/);
      expect(c.output()).not.toMatch(/shutdown did not complete/);
    } finally {
      h2.session.destroy();
    }
  }, 90_000);

  it('exits 0 with clients stopped mid-body (HTTP/1.1 and HTTP/2): what no request can end is destroyed after the grace', async () => {
    const c = await startCli(['--config', writeConfig({ server: { port: 0, tls: tlsFiles, drainTimeoutMs: 1000 }, deployments: deployments() }), '--quiet']);
    cli = c;
    const port = Number(new URL(c.url).port);
    const h1 = await H1Connection.open({ port } as Server, true);
    const h2 = await Session.open(c.url);
    try {
      await h1.write(BAD_HEAD + BAD_BODY.slice(0, 6));
      const stalled = h2.session.request({ ':method': 'POST', ':path': '/v1/chat/completions', 'content-type': 'application/json' });
      stalled.on('error', () => undefined);
      stalled.write(BAD_BODY.slice(0, 6));
      // Answered after the gateway has read what came before it (on the same session, and on the other connection
      // in the same or an earlier turn): both stalled requests are in, and the drain counts them.
      expect(await h2.get('/health')).toBe(200);
      c.child.kill('SIGTERM');
      // Without the grace: the drain bound plus the CLI's 15 s, then exit 1, "shutdown did not complete".
      expect(await c.exited).toBe(0);
      expect(c.output()).toMatch(/draining 2 requests/);
      expect(c.output()).not.toMatch(/shutdown did not complete/);
      expect(await within(Promise.all([h1.closed, h2.closed]))).toBe('done');
      expect(h1.received).toBe('');
    } finally {
      h1.destroy();
      h2.session.destroy();
    }
  }, 90_000);
});
