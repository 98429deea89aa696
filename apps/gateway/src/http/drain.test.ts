import { type ServerResponse, createServer } from 'node:http';
import { type AddressInfo, type Socket, connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { Drain } from './drain.js';

describe('Drain', () => {
  it('counts each tracked response until it closes, ended or abandoned, with one close listener for all', async () => {
    const drain = new Drain();
    const responses: ServerResponse[] = [];
    const server = createServer((_req, res) => {
      drain.track(res);
      responses.push(res);
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('open');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    const clients: Socket[] = [0, 1, 2].map(() => {
      const c = connect(port, '127.0.0.1');
      c.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
      c.on('data', () => undefined);
      return c;
    });
    try {
      for (let i = 0; i < 500 && drain.inFlight < 3; i++) await new Promise((r) => setTimeout(r, 10));
      expect(drain.inFlight).toBe(3);
      // No closure per request: every response got the same listener.
      const shared = responses.map((r) => r.listeners('close'));
      expect(shared[0]?.filter((l) => shared.every((ls) => ls.includes(l))).length).toBeGreaterThan(0);
      drain.begin();
      expect(await drain.idle(50)).toBe(false);
      const idle = drain.idle(60_000);
      responses[0]?.end();
      clients[1]?.destroy();
      for (let i = 0; i < 500 && drain.inFlight > 1; i++) await new Promise((r) => setTimeout(r, 10));
      expect(drain.inFlight).toBe(1);
      responses[2]?.end();
      expect(await idle).toBe(true);
      expect(drain.inFlight).toBe(0);
    } finally {
      for (const c of clients) c.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => { r(); }));
    }
  });

  it('refuses all but the probes while draining, and the probes too once closing', () => {
    const drain = new Drain();
    const urls = ['/v1/chat/completions', '/v1/messages?beta=true', '/admin/deployments', '/health', '/ready', '/metrics?x=1'];
    expect(urls.filter((u) => drain.refuses(u))).toEqual([]);
    drain.begin();
    expect(urls.filter((u) => drain.refuses(u))).toEqual(['/v1/chat/completions', '/v1/messages?beta=true', '/admin/deployments']);
    expect(drain.closing).toBe(false);
    drain.close();
    expect(drain.draining).toBe(true);
    expect(drain.closing).toBe(true);
    expect(urls.filter((u) => drain.refuses(u))).toEqual(urls);
  });
});
