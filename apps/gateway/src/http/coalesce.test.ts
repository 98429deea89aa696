import { type ServerResponse, createServer } from 'node:http';
import { type AddressInfo, type Socket, connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { Flow } from '@inference/core';
import { StreamBuffers } from '@inference/runtime';
import { CoalescedWriter } from './coalesce.js';

/** What CoalescedWriter uses of a response, recording each write. */
function fakeResponse(): { res: ServerResponse; writes: string[]; ended: string[]; destroy: () => void } {
  const writes: string[] = [];
  const ended: string[] = [];
  const r = {
    destroyed: false,
    write(data: string): boolean {
      writes.push(data);
      return true;
    },
    end(data: string): void {
      ended.push(data);
    },
  };
  return { res: r as unknown as ServerResponse, writes, ended, destroy: () => { r.destroyed = true; } };
}

/** After the promise jobs and I/O callbacks of this turn of the event loop. */
const nextTurn = (): Promise<void> => new Promise((r) => { setImmediate(r); });

describe('CoalescedWriter', () => {
  it('sends the chunks of one turn in a single write after it', async () => {
    const { res, writes } = fakeResponse();
    const w = new CoalescedWriter(res);
    w.write('a');
    w.write('');
    w.write('b');
    expect(writes).toEqual([]);
    await nextTurn();
    expect(writes).toEqual(['ab']);
    w.write('c');
    await nextTurn();
    expect(writes).toEqual(['ab', 'c']);
  });

  it('ends with what is pending first, and writes nothing more after', async () => {
    const { res, writes, ended } = fakeResponse();
    const w = new CoalescedWriter(res);
    w.write('x');
    w.end('[DONE]');
    await nextTurn();
    expect(ended).toEqual(['x[DONE]']);
    expect(writes).toEqual([]);
  });

  it('sends the last chunks and the end of a turn in one end, also across promise jobs', async () => {
    const { res, writes, ended } = fakeResponse();
    const w = new CoalescedWriter(res);
    w.write('a');
    for (let i = 0; i < 10; i++) await Promise.resolve();
    process.nextTick(() => { w.write('b'); });
    await new Promise<void>((r) => { process.nextTick(r); });
    w.end('[DONE]');
    await nextTurn();
    expect(ended).toEqual(['ab[DONE]']);
    expect(writes).toEqual([]);
  });

  it('drops what is pending when the response is gone', async () => {
    const { res, writes, destroy } = fakeResponse();
    const w = new CoalescedWriter(res);
    w.write('lost');
    destroy();
    await nextTurn();
    expect(writes).toEqual([]);
  });
});

describe('CoalescedWriter back-pressure (a real socket whose client stops reading)', () => {
  async function stuckClient(onResponse: (res: ServerResponse) => void): Promise<{ close: () => Promise<void>; client: Socket }> {
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      onResponse(res);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    // A raw client that sends its request and then never reads.
    const client = connect(port, '127.0.0.1');
    client.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
    client.pause();
    return {
      client,
      close: async () => {
        client.destroy();
        server.closeAllConnections();
        await new Promise<void>((r) => server.close(() => { r(); }));
      },
    };
  }

  const until = async (cond: () => boolean, what: string): Promise<void> => {
    for (let i = 0; i < 1000; i++) {
      if (cond()) return;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`timed out waiting for ${what}`);
  };

  it('pauses the flow while the socket buffer is full and resumes it on drain', async () => {
    const flow = new Flow();
    let writer: CoalescedWriter | undefined;
    const t = await stuckClient((res) => { writer = new CoalescedWriter(res, { flow }); });
    await until(() => writer !== undefined, 'the response');
    const chunk = `data: ${'x'.repeat(16 * 1024)}\n\n`;
    let written = 0;
    // The producer follows the flow: it stops as soon as it is paused.
    while (!flow.paused && written < 128 * 1024 * 1024) {
      writer?.write(chunk);
      written += chunk.length;
      await new Promise((r) => setImmediate(r));
    }
    expect(flow.paused).toBe(true);
    expect(writer?.congested).toBe(true);
    // Bounded: what the kernel's socket buffers and one write hold, far below what the producer had to give.
    expect(written).toBeLessThan(64 * 1024 * 1024);
    t.client.resume();
    await until(() => !flow.paused, 'the drain');
    expect(writer?.congested).toBe(false);
    await t.close();
  });

  it('destroys a response that stays stuck longer than stallMs', async () => {
    const flow = new Flow();
    let response: ServerResponse | undefined;
    let writer: CoalescedWriter | undefined;
    const t = await stuckClient((res) => {
      response = res;
      writer = new CoalescedWriter(res, { flow, stallMs: 200 });
    });
    await until(() => writer !== undefined, 'the response');
    const chunk = `data: ${'y'.repeat(64 * 1024)}\n\n`;
    while (!flow.paused) {
      writer?.write(chunk);
      await new Promise((r) => setImmediate(r));
    }
    await until(() => response?.destroyed === true, 'the stall timeout');
    // The flow is released with the response: nothing stays paused for good.
    await until(() => !flow.paused, 'the flow released');
    await t.close();
  });

  it('destroys a response ended while its client is behind that stays stuck longer than stallMs', async () => {
    const flow = new Flow();
    let response: ServerResponse | undefined;
    let writer: CoalescedWriter | undefined;
    const t = await stuckClient((res) => {
      response = res;
      writer = new CoalescedWriter(res, { flow, stallMs: 200 });
    });
    await until(() => writer !== undefined, 'the response');
    const chunk = `data: ${'z'.repeat(64 * 1024)}\n\n`;
    while (!flow.paused) {
      writer?.write(chunk);
      await new Promise((r) => setImmediate(r));
    }
    // The producer is done: the last bytes wait behind the unread ones.
    writer?.end('data: [DONE]\n\n');
    await until(() => response?.destroyed === true, 'the stall timeout');
    await t.close();
  });
});

describe('CoalescedWriter in the stream accounting (real responses)', () => {
  it('leaves StreamBuffers when its response closes, ended or abandoned, with one close listener shared by every response', async () => {
    const buffers = new StreamBuffers();
    const responses: ServerResponse[] = [];
    const writers: CoalescedWriter[] = [];
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      responses.push(res);
      const w = new CoalescedWriter(res, { buffers });
      writers.push(w);
      w.write('data: first\n\n');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    const clients = [0, 1].map(() => {
      const c = connect(port, '127.0.0.1');
      c.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
      c.on('data', () => undefined);
      return c;
    });
    try {
      for (let i = 0; i < 500 && buffers.size < 2; i++) await new Promise((r) => setTimeout(r, 10));
      expect(buffers.size).toBe(2);
      // No closure per stream: the listener each response got is the same function.
      const [a, b] = responses.map((r) => r.listeners('close'));
      expect(a?.filter((l) => b?.includes(l)).length).toBeGreaterThan(0);
      writers[0]?.end('data: [DONE]\n\n');
      for (let i = 0; i < 500 && buffers.size > 1; i++) await new Promise((r) => setTimeout(r, 10));
      expect(buffers.size).toBe(1);
      clients[1]?.destroy();
      for (let i = 0; i < 500 && buffers.size > 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(buffers.size).toBe(0);
    } finally {
      for (const c of clients) c.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => { r(); }));
    }
  });
});
