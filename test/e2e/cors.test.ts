// CORS for browser clients (server.cors.origins) on a real gateway with API
// keys: a preflight from a listed origin is answered (204, methods, headers)
// without a key, as browsers send it; the actual request gets the origin
// echoed, errors included; an unlisted origin gets no CORS headers; with no
// cors block nothing changes.

import { type Server, parseConfig, serve } from '@inference/gateway';
import { type MockUpstream, startMockUpstream } from '@inference/mock-upstream';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const APP = 'https://app.example.com';
let mock: MockUpstream;
let server: Server;
let plain: Server;

beforeAll(async () => {
  process.env.CORS_E2E_KEY = 'k-cors-e2e';
  mock = await startMockUpstream({ port: 0 });
  const deployments = [{ name: 'gpt', runtime: 'openai', endpoint: mock.url, model: 'gpt-4o-mini', replicas: 1 }];
  server = await serve(parseConfig({ server: { port: 0, cors: { origins: [APP, 'http://localhost:3000'] } }, auth: { apiKeys: [{ name: 'web', keyEnv: 'CORS_E2E_KEY' }] }, deployments }));
  plain = await serve(parseConfig({ server: { port: 0 }, deployments }));
});

afterAll(async () => {
  await server.close();
  await plain.close();
  await mock.close();
});

async function preflight(url: string, origin: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
  const res = await request(`${url}/v1/chat/completions`, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
  });
  await res.body.dump();
  return { status: res.statusCode, headers: res.headers };
}

async function post(url: string, origin: string, key?: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
  const res = await request(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { origin, 'content-type': 'application/json', ...(key === undefined ? {} : { authorization: `Bearer ${key}` }) },
    body: JSON.stringify({ model: 'gpt', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 }),
  });
  await res.body.dump();
  return { status: res.statusCode, headers: res.headers };
}

describe('CORS', () => {
  it('answers a preflight from a listed origin, without a key', async () => {
    const r = await preflight(server.url, APP);
    expect(r.status).toBe(204);
    expect(r.headers['access-control-allow-origin']).toBe(APP);
    expect(r.headers['access-control-allow-methods']).toMatch(/POST/);
    expect(r.headers['access-control-allow-headers']).toBe('authorization, content-type');
    expect(Number(r.headers['access-control-max-age'])).toBeGreaterThan(0);
  });

  it('echoes a listed origin on the answer, errors included, and exposes x-request-id', async () => {
    const ok = await post(server.url, APP, 'k-cors-e2e');
    expect(ok.status).toBe(200);
    expect(ok.headers['access-control-allow-origin']).toBe(APP);
    expect(ok.headers['access-control-expose-headers']).toMatch(/x-request-id/);
    expect(ok.headers.vary).toMatch(/origin/i);
    const denied = await post(server.url, 'http://localhost:3000');
    expect(denied.status).toBe(401);
    expect(denied.headers['access-control-allow-origin']).toBe('http://localhost:3000');
  });

  it('gives an unlisted origin no CORS headers', async () => {
    const p = await preflight(server.url, 'https://evil.example.com');
    expect(p.headers['access-control-allow-origin']).toBeUndefined();
    expect(p.headers['access-control-allow-methods']).toBeUndefined();
    const r = await post(server.url, 'https://evil.example.com', 'k-cors-e2e');
    expect(r.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('without server.cors, no CORS headers at all', async () => {
    expect((await post(plain.url, APP)).headers['access-control-allow-origin']).toBeUndefined();
    expect((await preflight(plain.url, APP)).headers['access-control-allow-origin']).toBeUndefined();
  });

  it('refuses a malformed origin in the config by key', () => {
    expect(() => parseConfig({ server: { cors: { origins: ['https://app.example.com/path'] } } })).toThrow(/server\.cors\.origins\[0\]/);
  });
});
