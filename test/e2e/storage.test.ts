// The catalog survives a restart on the same storage file: deployments applied,
// scaled and removed through the admin API win over the config file; untouched
// file deployments follow the file. A file that is not a database stops startup
// with a clear error.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type RuntimeConfig, type Server, parseConfig, serve } from '@inference/gateway';
import { type MockUpstream, startMockUpstream } from '@inference/mock-upstream';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let mock: MockUpstream;
let dir: string;

beforeAll(async () => {
  mock = await startMockUpstream({ port: 0 });
  dir = mkdtempSync(join(tmpdir(), 'inference-e2e-storage-'));
});
afterAll(async () => {
  await mock.close();
  rmSync(dir, { recursive: true, force: true });
});

function config(path: string, fileReplicas: number): RuntimeConfig {
  return parseConfig({
    server: { port: 0 },
    storage: { path },
    deployments: [
      { name: 'gpt', runtime: 'openai', endpoint: mock.url, model: 'gpt-4o-mini', replicas: 1 },
      { name: 'doomed', runtime: 'openai', endpoint: mock.url, replicas: 1 },
      { name: 'plain', runtime: 'openai', endpoint: mock.url, replicas: fileReplicas },
      { name: 'scaled', runtime: 'openai', endpoint: mock.url, replicas: 1 },
    ],
  });
}

async function admin(server: Server, method: string, name: string, body?: unknown): Promise<Response> {
  return fetch(`${server.url}/admin/deployments/${name}`, {
    method,
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
}

async function desired(server: Server): Promise<Record<string, number>> {
  const list = (await (await fetch(`${server.url}/admin/deployments`)).json()) as { deployments: { spec: { name: string; replicas: number } }[] };
  return Object.fromEntries(list.deployments.map((d) => [d.spec.name, d.spec.replicas]));
}

describe('catalog persistence', () => {
  it('a restart keeps admin changes and follows the file for the rest', async () => {
    const path = join(dir, 'catalog', 'inference.db');
    const first = await serve(config(path, 1));
    try {
      expect((await admin(first, 'PUT', 'added', { runtime: 'openai', endpoint: mock.url, replicas: 2 })).status).toBe(200);
      expect((await admin(first, 'PUT', 'gpt', { runtime: 'openai', endpoint: mock.url, model: 'gpt-4o-mini', replicas: 3 })).status).toBe(200);
      expect((await admin(first, 'DELETE', 'doomed')).status).toBe(200);
      expect((await admin(first, 'POST', 'scaled/scale', { replicas: 2 })).status).toBe(200);
      expect(await desired(first)).toEqual({ gpt: 3, plain: 1, scaled: 2, added: 2 });
    } finally {
      await first.close();
    }
    // The file now asks for 2 replicas of `plain`, which the admin API never touched.
    const second = await serve(config(path, 2));
    try {
      expect(await desired(second)).toEqual({ gpt: 3, plain: 2, scaled: 2, added: 2 });
      const client = new OpenAI({ baseURL: `${second.url}/v1`, apiKey: 'unused', maxRetries: 0 });
      const r = await client.chat.completions.create({ model: 'added', messages: [{ role: 'user', content: 'x' }], max_tokens: 2 });
      expect(r.choices[0]?.message.content).toBe('The quick');
      await expect(client.chat.completions.create({ model: 'doomed', messages: [{ role: 'user', content: 'x' }] })).rejects.toMatchObject({ status: 404 });
    } finally {
      await second.close();
    }
  });

  it('without storage the catalog is in memory: a restart is back to the file', async () => {
    const cfg = parseConfig({ server: { port: 0 }, deployments: [{ name: 'gpt', runtime: 'openai', endpoint: mock.url, replicas: 1 }] });
    const first = await serve(cfg);
    try {
      expect((await admin(first, 'PUT', 'added', { runtime: 'openai', endpoint: mock.url })).status).toBe(200);
    } finally {
      await first.close();
    }
    const second = await serve(cfg);
    try {
      expect(await desired(second)).toEqual({ gpt: 1 });
    } finally {
      await second.close();
    }
  });

  it('a storage file that is not a database stops startup with an error naming storage.path', async () => {
    const path = join(dir, 'corrupt.db');
    writeFileSync(path, 'not a database '.repeat(100));
    await expect(serve(config(path, 1))).rejects.toMatchObject({ kind: 'invalid_request', param: 'storage.path' });
  });
});
