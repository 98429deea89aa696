// Stored Responses on the SQLite catalog storage: a response survives a restart of the
// gateway on the same file, and with API keys a stored response (and its items) is
// visible only to the key that created it; /v1/responses needs a key like every /v1 route.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type RuntimeConfig, parseConfig, serve } from '@inference/gateway';
import { type MockUpstream, startMockUpstream } from '@inference/mock-upstream';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const KEYS = { RESP_TEAM_A: 'sk-resp-a-1c2d3e4f', RESP_TEAM_B: 'sk-resp-b-5a6b7c8d' };
let mock: MockUpstream;
let dir: string;

beforeAll(async () => {
  Object.assign(process.env, KEYS);
  mock = await startMockUpstream({ port: 0 });
  dir = mkdtempSync(join(tmpdir(), 'inference-e2e-responses-'));
});
afterAll(async () => {
  await mock.close();
  rmSync(dir, { recursive: true, force: true });
  for (const k of Object.keys(KEYS)) Reflect.deleteProperty(process.env, k);
});

function config(): RuntimeConfig {
  return parseConfig({
    server: { port: 0 },
    storage: { path: join(dir, 'inference.db') },
    auth: { apiKeys: [{ name: 'team-a', keyEnv: 'RESP_TEAM_A' }, { name: 'team-b', keyEnv: 'RESP_TEAM_B' }] },
    deployments: [{ name: 'gpt', runtime: 'openai', endpoint: mock.url, model: 'gpt-4o-mini', replicas: 1 }],
  });
}

describe('responses on SQLite storage with API keys', () => {
  it('survive a restart, and are visible only to the key that stored them', async () => {
    let server = await serve(config());
    const a = (): OpenAI => new OpenAI({ baseURL: `${server.url}/v1`, apiKey: KEYS.RESP_TEAM_A, maxRetries: 0 });
    const b = (): OpenAI => new OpenAI({ baseURL: `${server.url}/v1`, apiKey: KEYS.RESP_TEAM_B, maxRetries: 0 });
    let id: string;
    let msgId: string;
    try {
      const anon = await fetch(`${server.url}/v1/responses`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'gpt', input: 'x' }) });
      expect(anon.status).toBe(401);
      const r = await a().responses.create({ model: 'gpt', input: 'kept', max_output_tokens: 2 });
      id = r.id;
      msgId = r.output[0]?.id ?? '';
    } finally {
      await server.close();
    }
    server = await serve(config());
    try {
      expect((await a().responses.retrieve(id)).output_text).toBe('The quick');
      expect(await b().responses.retrieve(id).catch((e: unknown) => e)).toBeInstanceOf(OpenAI.NotFoundError);
      expect(await b().responses.delete(id).catch((e: unknown) => e)).toBeInstanceOf(OpenAI.NotFoundError);
      const other = await b().responses.create({ model: 'gpt', input: 'x', previous_response_id: id }).catch((e: unknown) => e);
      expect((other as InstanceType<typeof OpenAI.NotFoundError>).param).toBe('previous_response_id');
      const ref = await b().responses.create({ model: 'gpt', input: [{ type: 'item_reference', id: msgId }] }).catch((e: unknown) => e);
      expect((ref as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('input[0].id');
      const next = await a().responses.create({ model: 'gpt', input: [{ type: 'item_reference', id: msgId }, { role: 'user', content: 'more' }], previous_response_id: id, max_output_tokens: 1 });
      expect(next.status).toBe('incomplete');
      expect((mock.stats().lastBody as { messages: unknown[] }).messages).toEqual([
        { role: 'user', content: 'kept' }, { role: 'assistant', content: 'The quick' }, { role: 'assistant', content: 'The quick' }, { role: 'user', content: 'more' },
      ]);
    } finally {
      await server.close();
    }
  });
});

describe('responses.ttlSeconds', () => {
  it('a stored response is gone once its time is up; with the default (30 days) it stays', async () => {
    const short = await serve(parseConfig({
      server: { port: 0 },
      responses: { ttlSeconds: 1 },
      deployments: [{ name: 'gpt', runtime: 'openai', endpoint: mock.url, model: 'gpt-4o-mini', replicas: 1 }],
    }));
    const kept = await serve(parseConfig({
      server: { port: 0 },
      deployments: [{ name: 'gpt', runtime: 'openai', endpoint: mock.url, model: 'gpt-4o-mini', replicas: 1 }],
    }));
    const client = (s: Awaited<ReturnType<typeof serve>>): OpenAI => new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    try {
      const a = await client(short).responses.create({ model: 'gpt', input: 'brief', max_output_tokens: 1 });
      const b = await client(kept).responses.create({ model: 'gpt', input: 'kept', max_output_tokens: 1 });
      await new Promise((r) => setTimeout(r, 1500));
      expect(await client(short).responses.retrieve(a.id).catch((e: unknown) => e)).toBeInstanceOf(OpenAI.NotFoundError);
      const next = await client(short).responses.create({ model: 'gpt', input: 'x', previous_response_id: a.id }).catch((e: unknown) => e);
      expect((next as InstanceType<typeof OpenAI.NotFoundError>).param).toBe('previous_response_id');
      expect((await client(kept).responses.retrieve(b.id)).id).toBe(b.id);
    } finally {
      await short.close();
      await kept.close();
    }
  });
});
