import { createServer } from 'node:http';
import http2 from 'node:http2';
import { type AddressInfo, connect as netConnect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ClosingConnections } from './closingConnections.js';

// Cleartext HTTP/2 here: the sessions are the same objects as over TLS (test/e2e/closing-connections.test.ts has TLS).

function connect(port: number): Promise<{ session: http2.ClientHttp2Session; events: string[] }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${String(port)}`);
    const events: string[] = [];
    session.on('goaway', (code: number) => { events.push(`goaway ${String(code)}`); });
    session.on('close', () => { events.push('close'); });
    session.once('error', reject);
    session.once('connect', () => { resolve({ session, events }); });
  });
}

function get(session: http2.ClientHttp2Session): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':path': '/' });
    req.on('response', (h) => { resolve(Number(h[':status'])); });
    req.on('data', () => undefined);
    req.on('error', reject);
    req.end();
  });
}

/** A graceful GOAWAY (NO_ERROR; Node may send it again as the session ends), then the end, and no error. */
function expectGoaway(events: string[]): void {
  expect(events[0]).toBe('goaway 0');
  expect(events.at(-1)).toBe('close');
  expect(events.filter((e) => e !== 'goaway 0' && e !== 'close')).toEqual([]);
}

async function until(what: string, check: () => boolean): Promise<void> {
  for (let i = 0; i < 300 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!check()) throw new Error(`timed out waiting for ${what}`);
}

describe('ClosingConnections', () => {
  it('tracks the sessions until they close, sends each a GOAWAY on close(), and one opened after close() gets it at once', async () => {
    const server = http2.createServer((_req, res) => { res.end('ok'); });
    const connections = new ClosingConnections(server, true);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    const a = await connect(port);
    const b = await connect(port);
    try {
      expect(await get(a.session)).toBe(200);
      expect(await get(b.session)).toBe(200);
      await until('two sessions', () => connections.openSessions === 2);
      b.session.close();
      await until('one session', () => connections.openSessions === 1);
      // The listener still takes connections: a session that arrives now is told to go at once.
      connections.close();
      await until('the idle session to end', () => a.events.includes('close'));
      expectGoaway(a.events);
      expect(connections.openSessions).toBe(0);
      const late = await connect(port);
      await until('the late session to end', () => late.events.includes('close'));
      expectGoaway(late.events);
      expect(connections.openSessions).toBe(0);
    } finally {
      a.session.destroy();
      b.session.destroy();
      await new Promise<void>((r) => server.close(() => { r(); }));
    }
  });

  it('after the grace, destroys what a client left mid-request: an HTTP/2 stream and an HTTP/1.1 body that stopped coming', async () => {
    // The handlers wait for the whole body, which never comes: nothing the gateway runs could end these.
    let seen = 0;
    const readAll = (req: { on(event: string, fn: () => void): unknown }, done: () => void): void => {
      seen++;
      req.on('data', () => undefined);
      req.on('end', done);
    };
    const h2 = http2.createServer((req, res) => { readAll(req, () => res.end('ok')); });
    const h1 = createServer((req, res) => { readAll(req, () => res.end('ok')); });
    const c2 = new ClosingConnections(h2, true, 300);
    const c1 = new ClosingConnections(h1, false, 300);
    await new Promise<void>((r) => h2.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => h1.listen(0, '127.0.0.1', r));
    const a = await connect((h2.address() as AddressInfo).port);
    const stream = a.session.request({ ':path': '/', ':method': 'POST' });
    stream.on('error', () => undefined);
    stream.write('half a bo');
    const socket = netConnect((h1.address() as AddressInfo).port, '127.0.0.1');
    const socketClosed = new Promise<void>((r) => socket.once('close', () => { r(); }));
    socket.on('error', () => undefined);
    socket.write('POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nhalf a bo');
    await until('both requests to reach their servers', () => seen === 2);
    const closed = Promise.all([
      new Promise<void>((r) => h2.close(() => { r(); })),
      new Promise<void>((r) => h1.close(() => { r(); })),
    ]);
    try {
      c2.close();
      c1.close();
      let done = false;
      void closed.then(() => { done = true; });
      await until('both servers to close', () => done);
      await socketClosed;
      await until('the session to end', () => a.events.includes('close'));
      expect(a.events[0]).toBe('goaway 0');
      expect(c2.openSessions).toBe(0);
    } finally {
      a.session.destroy();
      socket.destroy();
    }
  });
});
