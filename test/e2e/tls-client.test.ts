// HTTPS on the client listener (server.tls) with real certificates made by
// openssl at test time: HTTP/1.1 through undici's fetch and the openai SDK,
// HTTP/2 through node:http2 (ALPN h2), streaming on both; mutual TLS with a
// client CA (no certificate, or one from another CA, is refused); certificates
// reloaded without a restart, on reloadTls() (SIGHUP) and on a file change, and
// a broken file keeps the certificate in use.

import http2 from 'node:http2';
import https from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { writeFileSync } from 'node:fs';
import { type Server, parseConfig, serve } from '@inference/gateway';
import { type MockUpstream, startMockUpstream } from '@inference/mock-upstream';
import OpenAI from 'openai';
import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CertFiles, Pki } from '../support/pki.js';
import { until } from '../support/cluster.js';

let pki: Pki;
let mock: MockUpstream;
let caFile: string;
let server: Server;
let serverCert: CertFiles;

const deployments = (): unknown[] => [{ name: 'gpt', runtime: 'openai', endpoint: mock.url, model: 'gpt-4o-mini', replicas: 1 }];
const chatBody = (stream = false): string => JSON.stringify({ model: 'gpt', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, stream });

beforeAll(async () => {
  pki = Pki.create();
  caFile = pki.ca('ca');
  serverCert = pki.leaf('ca', 'server');
  mock = await startMockUpstream({ port: 0 });
  server = await serve(parseConfig({ server: { port: 0, tls: serverCert }, deployments: deployments() }));
});

afterAll(async () => {
  await server.close();
  await mock.close();
  pki.destroy();
});

/** The serial of the certificate a new TLS connection is shown. */
function servedSerial(port: number, ca: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      resolve(s.getPeerCertificate().serialNumber);
      s.end();
    });
    s.on('error', reject);
  });
}

/** One h2 request; resolves with status, body and the negotiated protocol. */
function h2Request(url: string, path: string, body: string, tls: { ca: Buffer; cert?: Buffer; key?: Buffer }): Promise<{ status: number; body: string; alpn: string | false | undefined }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url, tls);
    session.on('error', reject);
    const req = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/json' });
    let status = 0;
    let text = '';
    req.setEncoding('utf8');
    req.on('response', (h) => { status = Number(h[':status']); });
    req.on('data', (d: string) => { text += d; });
    req.on('error', reject);
    req.on('end', () => {
      const alpn = session.alpnProtocol;
      session.close();
      resolve({ status, body: text, alpn });
    });
    req.end(body);
  });
}

describe('TLS on the client listener', () => {
  it('serves https, and no plaintext', async () => {
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    await expect(fetch(`http://127.0.0.1:${String(server.port)}/health`)).rejects.toThrow();
  });

  it('HTTP/1.1 through undici fetch, trusting the test CA', async () => {
    const dispatcher = new Agent({ connect: { ca: Pki.read(caFile) } });
    const res = await undiciFetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: chatBody(), dispatcher });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { object: string }).object).toBe('chat.completion');
    await dispatcher.close();
  });

  it('HTTP/1.1 is what an HTTP/1.1-only client gets (ALPN falls back)', async () => {
    const version = await new Promise<string>((resolve, reject) => {
      const options: https.RequestOptions & { ALPNProtocols: string[] } = { ca: Pki.read(caFile), ALPNProtocols: ['http/1.1'] };
      const req = https.request(`${server.url}/health`, options, (res) => {
        res.resume();
        resolve(res.httpVersion);
      });
      req.on('error', reject);
      req.end();
    });
    expect(version).toBe('1.1');
  });

  it('HTTP/2 over TLS for a client that negotiates h2, streaming included', async () => {
    const plain = await h2Request(server.url, '/v1/chat/completions', chatBody(), { ca: Pki.read(caFile) });
    expect(plain.alpn).toBe('h2');
    expect(plain.status).toBe(200);
    expect((JSON.parse(plain.body) as { object: string }).object).toBe('chat.completion');
    const streamed = await h2Request(server.url, '/v1/chat/completions', chatBody(true), { ca: Pki.read(caFile) });
    expect(streamed.status).toBe(200);
    expect(streamed.body).toContain('chat.completion.chunk');
    expect(streamed.body.trim().endsWith('data: [DONE]')).toBe(true);
  });

  it('the openai SDK over https with the test CA, plain and streamed', async () => {
    const dispatcher = new Agent({ connect: { ca: Pki.read(caFile) } });
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0, fetch: undiciFetch as unknown as typeof fetch, fetchOptions: { dispatcher } as unknown as OpenAI['fetchOptions'] });
    const out = await client.chat.completions.create({ model: 'gpt', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 });
    expect(out.object).toBe('chat.completion');
    const stream = await client.chat.completions.create({ model: 'gpt', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, stream: true });
    let chunks = 0;
    for await (const c of stream) if (c.object === 'chat.completion.chunk') chunks++;
    expect(chunks).toBeGreaterThan(0);
    await dispatcher.close();
  });

  it('an untrusted client (no CA) is refused by the TLS check, not served', async () => {
    await expect(undiciFetch(`${server.url}/health`)).rejects.toThrow();
  });
});

describe('certificate reload without a restart', () => {
  it('reloadTls() (what SIGHUP calls) puts new certificates in use for new connections', async () => {
    const ca = Pki.read(caFile);
    const before = await servedSerial(server.port, ca);
    Pki.install(pki.leaf('ca', 'server-2'), serverCert);
    expect(server.reloadTls()).toBe(true);
    const after = await servedSerial(server.port, ca);
    expect(after).not.toBe(before);
    expect(server.reloadTls()).toBe(false);
  });

  it('a file change is picked up by the watch', async () => {
    const ca = Pki.read(caFile);
    const before = await servedSerial(server.port, ca);
    Pki.install(pki.leaf('ca', 'server-3'), serverCert);
    const after = await until('the new certificate served', async () => {
      const s = await servedSerial(server.port, ca);
      return s !== before ? s : undefined;
    }, 20_000);
    expect(after).not.toBe(before);
  });

  it('a broken key file keeps the certificate in use', async () => {
    const ca = Pki.read(caFile);
    const before = await servedSerial(server.port, ca);
    writeFileSync(serverCert.keyFile, 'not a key\n');
    expect(server.reloadTls()).toBe(false);
    expect(await servedSerial(server.port, ca)).toBe(before);
    Pki.install(pki.leaf('ca', 'server-4'), serverCert);
  });
});

describe('mutual TLS on the client listener', () => {
  let mtls: Server;
  let client: CertFiles;
  let stranger: CertFiles;

  beforeAll(async () => {
    const clientCa = pki.ca('client-ca');
    client = pki.leaf('client-ca', 'client');
    pki.ca('other-ca');
    stranger = pki.leaf('other-ca', 'stranger');
    const cert = pki.leaf('ca', 'mtls-server');
    mtls = await serve(parseConfig({ server: { port: 0, tls: { ...cert, clientCaFile: clientCa } }, deployments: deployments() }));
  });

  afterAll(async () => {
    await mtls.close();
  });

  it('a client certificate from the client CA is served, over HTTP/1.1 and h2', async () => {
    const tls = { ca: Pki.read(caFile), cert: Pki.read(client.certFile), key: Pki.read(client.keyFile) };
    const dispatcher = new Agent({ connect: tls });
    const res = await undiciFetch(`${mtls.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: chatBody(), dispatcher });
    expect(res.status).toBe(200);
    await dispatcher.close();
    expect((await h2Request(mtls.url, '/v1/chat/completions', chatBody(), tls)).status).toBe(200);
  });

  it('no client certificate, or one from another CA, is refused', async () => {
    for (const tls of [{ ca: Pki.read(caFile) }, { ca: Pki.read(caFile), cert: Pki.read(stranger.certFile), key: Pki.read(stranger.keyFile) }]) {
      const dispatcher = new Agent({ connect: tls });
      await expect(undiciFetch(`${mtls.url}/health`, { dispatcher })).rejects.toThrow();
      await dispatcher.close();
    }
  });
});

describe('optional client certificates (requireClientCert: false)', () => {
  it('no certificate is served; one that does not verify is refused with 401', async () => {
    const clientCa = pki.ca('opt-ca');
    pki.ca('opt-other');
    const stranger = pki.leaf('opt-other', 'opt-stranger');
    const good = pki.leaf('opt-ca', 'opt-client');
    const s = await serve(parseConfig({ server: { port: 0, tls: { ...pki.leaf('ca', 'opt-server'), clientCaFile: clientCa, requireClientCert: false } }, deployments: deployments() }));
    try {
      const status = async (tls: { ca: Buffer; cert?: Buffer; key?: Buffer }): Promise<number> => {
        const dispatcher = new Agent({ connect: tls });
        const res = await undiciFetch(`${s.url}/v1/models`, { dispatcher });
        await res.arrayBuffer();
        await dispatcher.close();
        return res.status;
      };
      const ca = Pki.read(caFile);
      expect(await status({ ca })).toBe(200);
      expect(await status({ ca, cert: Pki.read(good.certFile), key: Pki.read(good.keyFile) })).toBe(200);
      expect(await status({ ca, cert: Pki.read(stranger.certFile), key: Pki.read(stranger.keyFile) })).toBe(401);
    } finally {
      await s.close();
    }
  });
});

describe('bad TLS files stop start-up naming the key', () => {
  it.each([
    [{ certFile: '/nonexistent/c.pem', keyFile: '/nonexistent/k.pem' }, 'server.tls.certFile', /cannot read/],
    [() => ({ certFile: pki.leaf('ca', 'mismatch-a').certFile, keyFile: pki.leaf('ca', 'mismatch-b').keyFile }), 'server.tls', /do not load together/],
  ])('%#', async (tls, param, message) => {
    const files = typeof tls === 'function' ? tls() : tls;
    let err: unknown;
    try {
      await serve(parseConfig({ server: { port: 0, tls: files } }));
    } catch (e) {
      err = e;
    }
    expect((err as { param?: string }).param).toBe(param);
    expect((err as Error).message).toMatch(message);
  });
});
