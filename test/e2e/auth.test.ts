// Auth end to end with the real SDKs: /v1 needs an API key (Bearer; /v1/messages
// also x-api-key), a key restricted to some deployments is refused the others
// (403), /admin and /metrics need an admin key, and neither kind of key works in
// the other's place. Refusals use each surface's error shape; keys never appear
// in a response.

import Anthropic from '@anthropic-ai/sdk';
import { type Server, parseConfig, serve } from '@inference/gateway';
import { type MockUpstream, startMockUpstream } from '@inference/mock-upstream';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const KEYS = { AUTH_TEAM_A: 'sk-team-a-5f0c2d9e', AUTH_TEAM_B: 'sk-team-b-77a1b3c4', AUTH_OPS: 'adm-ops-0e9d8c7b' };
let mock: MockUpstream;
let server: Server;

beforeAll(async () => {
  Object.assign(process.env, KEYS);
  mock = await startMockUpstream({ port: 0 });
  server = await serve(parseConfig({
    server: { port: 0 },
    auth: {
      apiKeys: [
        { name: 'team-a', keyEnv: 'AUTH_TEAM_A', deployments: ['gpt', 'claude', 'routed'] },
        { name: 'team-b', keyEnv: 'AUTH_TEAM_B' },
      ],
      adminKeys: [{ name: 'ops', keyEnv: 'AUTH_OPS' }],
    },
    deployments: [
      { name: 'gpt', runtime: 'openai', endpoint: mock.url, model: 'gpt-4o-mini' },
      { name: 'secret', runtime: 'openai', endpoint: mock.url, model: 'gpt-4o-mini' },
      { name: 'routed', runtime: 'openai', endpoint: mock.url, model: 'gpt-4o-mini', fallbacks: ['secret'], remote: { maxRetries: 0 } },
      { name: 'claude', runtime: 'anthropic', endpoint: mock.url, model: 'claude-3-5-haiku-latest' },
    ],
  }));
});
afterAll(async () => {
  await server.close();
  await mock.close();
  for (const k of Object.keys(KEYS)) Reflect.deleteProperty(process.env, k);
});

const openai = (apiKey: string): OpenAI => new OpenAI({ baseURL: `${server.url}/v1`, apiKey, maxRetries: 0 });
const chat = (apiKey: string, model: string) => openai(apiKey).chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }], max_tokens: 2 });

describe('API keys on /v1', () => {
  it('a configured key is served; none or a wrong one is 401 in the OpenAI envelope', async () => {
    expect((await chat(KEYS.AUTH_TEAM_A, 'gpt')).choices[0]?.message.content).toBe('The quick');
    expect((await chat(KEYS.AUTH_TEAM_B, 'secret')).choices[0]?.message.content).toBe('The quick');
    const wrong = await chat('sk-team-a-5f0c2d9f', 'gpt').catch((e: unknown) => e);
    expect(wrong).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(wrong).toMatchObject({ status: 401, type: 'authentication_error', code: 'invalid_api_key' });
    const res = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
    expect(res.headers.get('x-request-id')).toMatch(/^req_/);
    expect(await res.json()).toEqual({ error: { message: 'an API key is required (Authorization: Bearer <key>)', type: 'authentication_error', param: null, code: 'invalid_api_key' } });
  });

  it('a key without access to a deployment is refused with 403, and does not see it in /v1/models', async () => {
    const e = await chat(KEYS.AUTH_TEAM_A, 'secret').catch((err: unknown) => err);
    expect(e).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect(e).toMatchObject({ status: 403, type: 'permission_error', code: 'forbidden', param: 'model' });
    expect((e as Error).message).toContain("API key 'team-a' may not use deployment 'secret'");
    const models = await openai(KEYS.AUTH_TEAM_A).models.list();
    expect(models.data.map((m) => m.id).sort()).toEqual(['claude', 'gpt', 'routed']);
    const all = await openai(KEYS.AUTH_TEAM_B).models.list();
    expect(all.data.map((m) => m.id).sort()).toEqual(['claude', 'gpt', 'routed', 'secret']);
  });

  it('a fallback the key may not use is skipped: the primary failure is what the client hears', async () => {
    mock.setDefault({ status: 503 });
    try {
      // team-a may use `routed` but not its fallback `secret`: the upstream's 503 (a 502 upstream_error), not a 403 about `secret`.
      await expect(chat(KEYS.AUTH_TEAM_A, 'routed')).rejects.toMatchObject({ status: 502, code: 'upstream_error' });
      await expect(chat(KEYS.AUTH_TEAM_A, 'secret')).rejects.toMatchObject({ status: 403 });
    } finally {
      mock.setDefault({});
    }
  });

  it('/v1/messages takes x-api-key and answers refusals in the Anthropic shape', async () => {
    const ok = await new Anthropic({ baseURL: server.url, apiKey: KEYS.AUTH_TEAM_A, maxRetries: 0 }).messages.create({ model: 'claude', max_tokens: 2, messages: [{ role: 'user', content: 'x' }] });
    expect(ok.content[0]).toMatchObject({ type: 'text' });
    const bad = await new Anthropic({ baseURL: server.url, apiKey: 'nope', maxRetries: 0 }).messages.create({ model: 'claude', max_tokens: 2, messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(Anthropic.AuthenticationError);
    expect(bad).toMatchObject({ status: 401, error: { type: 'error', error: { type: 'authentication_error', message: 'invalid API key' } } });
    const forbidden = await new Anthropic({ baseURL: server.url, apiKey: KEYS.AUTH_TEAM_A, maxRetries: 0 }).messages.create({ model: 'secret', max_tokens: 2, messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e);
    expect(forbidden).toBeInstanceOf(Anthropic.PermissionDeniedError);
    expect(forbidden).toMatchObject({ status: 403, error: { error: { type: 'permission_error' } } });
  });

  it('an admin key is not an API key', async () => {
    await expect(chat(KEYS.AUTH_OPS, 'gpt')).rejects.toMatchObject({ status: 401 });
  });
});

describe('admin keys', () => {
  const get = (path: string, key?: string): Promise<Response> => fetch(`${server.url}${path}`, key === undefined ? {} : { headers: { authorization: `Bearer ${key}` } });

  it('/admin and /metrics need an admin key; API keys do not work there; /health and /ready stay open', async () => {
    expect((await get('/admin/deployments')).status).toBe(401);
    expect((await get('/admin/deployments', KEYS.AUTH_TEAM_B)).status).toBe(401);
    expect((await get('/metrics', KEYS.AUTH_TEAM_A)).status).toBe(401);
    const list = await get('/admin/deployments', KEYS.AUTH_OPS);
    expect(list.status).toBe(200);
    const metrics = await get('/metrics', KEYS.AUTH_OPS);
    expect(metrics.status).toBe(200);
    const text = await metrics.text();
    for (const v of Object.values(KEYS)) expect(text).not.toContain(v);
    expect((await get('/health')).status).toBe(200);
    expect((await get('/ready')).status).toBe(200);
  });

  it('a refusal never echoes the key it was given', async () => {
    const res = await get('/admin/deployments', KEYS.AUTH_TEAM_A);
    const body = await res.text();
    expect(body).not.toContain(KEYS.AUTH_TEAM_A);
    expect(JSON.parse(body)).toMatchObject({ error: { type: 'authentication_error', message: 'invalid admin key' } });
  });
});

describe('startup', () => {
  it('a key whose variable is unset stops startup, naming the key', async () => {
    await expect(serve(parseConfig({ server: { port: 0 }, auth: { apiKeys: [{ name: 'x', keyEnv: 'AUTH_UNSET_VARIABLE' }] } })))
      .rejects.toMatchObject({ kind: 'invalid_request', message: 'auth.apiKeys[0].keyEnv: environment variable AUTH_UNSET_VARIABLE is not set' });
  });

  it('one key configured twice is refused', async () => {
    await expect(serve(parseConfig({ server: { port: 0 }, auth: { apiKeys: [{ name: 'x', keyEnv: 'AUTH_TEAM_A' }], adminKeys: [{ name: 'y', keyEnv: 'AUTH_TEAM_A' }] } })))
      .rejects.toMatchObject({ message: expect.stringContaining('holds the same key as auth.apiKeys[0].keyEnv') as unknown });
  });
});
