import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
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
});
