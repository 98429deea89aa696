// TLS mode: the fixture certificate is trusted through the exported CA, ALPN clients get
// real HTTP/2 (node:http2.connect), HTTP/1.1 clients still work, faults apply per stream.

import http2 from 'node:http2';
import https from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mockCaPem, parseSse, startMockUpstream, type MockUpstream } from './index.js';

let mock: MockUpstream;
let ca: string;
beforeAll(async () => {
  mock = await startMockUpstream({ tls: true });
  ca = mockCaPem();
});
afterAll(async () => {
  await mock.close();
});

interface H2Result {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: string;
  error: unknown;
}

function h2Request(session: http2.ClientHttp2Session, path: string, body: unknown, headers: Record<string, string> = {}): Promise<H2Result> {
  return new Promise((resolve) => {
    const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/json', ...headers });
    let status = 0;
    let responseHeaders: http2.IncomingHttpHeaders = {};
    let text = '';
    stream.setEncoding('utf8');
    stream.on('response', (h) => {
      responseHeaders = h;
      status = Number(h[':status']);
    });
    stream.on('data', (chunk: string) => {
      text += chunk;
    });
    stream.on('end', () => {
      resolve({ status, headers: responseHeaders, body: text, error: undefined });
    });
    stream.on('error', (error) => {
      resolve({ status, headers: responseHeaders, body: text, error });
    });
    stream.end(JSON.stringify(body));
  });
}

describe('TLS mode', () => {
  it('has an https origin and a /v1 url', () => {
    expect(mock.origin).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(mock.url).toBe(`${mock.origin}/v1`);
  });

  it('answers over real HTTP/2 with the fixture CA trusted', async () => {
    const session = http2.connect(mock.origin, { ca });
    try {
      const chatBody = { model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 };
      const plain = await h2Request(session, '/v1/chat/completions', chatBody);
      expect(plain.status).toBe(200);
      expect(JSON.parse(plain.body).choices[0].message.content).toBe('The quick');

      const streamed = await h2Request(session, '/v1/chat/completions', { ...chatBody, stream: true });
      expect(streamed.status).toBe(200);
      expect(streamed.headers['content-type']).toMatch(/^text\/event-stream/);
      expect(parseSse(streamed.body).map((e) => e.data).pop()).toBe('[DONE]');

      const anthropic = await h2Request(session, '/v1/messages', { model: 'c', max_tokens: 1, messages: [{ role: 'user', content: 'hi' }] });
      expect(anthropic.status).toBe(200);
      expect(anthropic.headers['request-id']).toMatch(/^req_/);
      expect(mock.stats().httpVersions['2.0']).toBeGreaterThanOrEqual(3);
    } finally {
      session.close();
    }
  });

  it('resets only the stream on a mid-stream disconnect, after N events', async () => {
    const session = http2.connect(mock.origin, { ca });
    try {
      mock.setScript([{ disconnectAfterChunks: 2 }]);
      const cut = await h2Request(session, '/v1/chat/completions', { model: 'm', messages: [{ role: 'user', content: 'hi' }], stream: true });
      expect(cut.status).toBe(200);
      expect(cut.error).toBeDefined();
      expect(parseSse(cut.body)).toHaveLength(2);
      const after = await h2Request(session, '/v1/chat/completions', { model: 'm', messages: [{ role: 'user', content: 'hi' }] });
      expect(after.status).toBe(200);
    } finally {
      session.close();
    }
  });

  it('still serves HTTP/1.1 clients', async () => {
    const body = await new Promise<string>((resolve, reject) => {
      const req = https.request(`${mock.url}/models`, { ca }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          resolve(text);
        });
      });
      req.on('error', reject);
      req.end();
    });
    expect(JSON.parse(body).object).toBe('list');
    expect(mock.stats().httpVersions['1.1']).toBeGreaterThanOrEqual(1);
  });

  it('close() ends hung HTTP/2 requests', async () => {
    const other = await startMockUpstream({ tls: true, defaultBehavior: { hang: true } });
    const session = http2.connect(other.origin, { ca });
    session.on('error', () => undefined);
    const pending = h2Request(session, '/v1/chat/completions', { model: 'm', messages: [{ role: 'user', content: 'x' }] });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(other.stats().inFlight).toBe(1);
    await other.close();
    const result = await pending;
    expect(result.status).toBe(0);
    session.destroy();
  });
});
