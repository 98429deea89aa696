// Secrets never leave where they belong: the real `inference serve` CLI with
// request logging on, a config-file API key, an admin key, an upstream API key
// (apiKeyEnv) and virtual keys created, used, rotated and revoked at run time.
// Afterwards every byte the process wrote (pino logs on stdout and stderr),
// /metrics, the status page JSON (/admin/status), the audit trail, the key list,
// the budget view, and the storage file are searched for each secret.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type MockUpstream, startMockUpstream } from '@inference/mock-upstream';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliServer, startCli } from '../support/cli.js';

const ENV = { SEC_TEAM_KEY: 'sk-sec-team-7d3e9b1a04', SEC_ADMIN_KEY: 'adm-sec-ops-2f8c6e4d19', SEC_UPSTREAM_KEY: 'sk-upstream-c0ffee5a1b2c3d' };

let mock: MockUpstream;
let dir: string;
let server: CliServer | undefined;

beforeAll(async () => {
  // The mock requires the upstream key, so a served request proves the gateway sent it.
  mock = await startMockUpstream({ port: 0, apiKey: ENV.SEC_UPSTREAM_KEY });
  dir = mkdtempSync(join(tmpdir(), 'inference-e2e-secrets-'));
});
afterAll(async () => {
  server?.kill();
  await mock.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('secrets', () => {
  it('appear in no log line, metric, status view, audit record, key listing or storage file', async () => {
    const config = join(dir, 'inference.yaml');
    writeFileSync(config, [
      `storage: { path: ${join(dir, 'inference.db')} }`,
      'auth:',
      '  apiKeys: [{ name: team, keyEnv: SEC_TEAM_KEY, budget: { window: 1d, maxTokens: 100000 } }]',
      '  adminKeys: [{ name: ops, keyEnv: SEC_ADMIN_KEY }]',
      'deployments:',
      `  - { name: gpt, runtime: openai, endpoint: "${mock.url}", model: gpt-4o-mini, apiKeyEnv: SEC_UPSTREAM_KEY }`,
      '',
    ].join('\n'));
    server = await startCli(['--config', config, '--port', '0', '--host', '127.0.0.1'], { ...process.env, ...ENV });
    const url = server.url;
    const adminHeaders = { authorization: `Bearer ${ENV.SEC_ADMIN_KEY}`, 'x-request-id': 'secret-probe' };
    const admin = async (method: string, path: string, body?: unknown): Promise<{ status: number; text: string }> => {
      const res = await fetch(`${url}${path}`, {
        method,
        headers: { ...adminHeaders, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: res.status, text: await res.text() };
    };
    const chat = async (key: string): Promise<number> => {
      const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: key, maxRetries: 0, defaultHeaders: { 'x-request-id': 'secret-probe' } });
      try {
        await client.chat.completions.create({ model: 'gpt', messages: [{ role: 'user', content: 'x' }], max_tokens: 3 });
        return 200;
      } catch (e) {
        if (e instanceof OpenAI.APIError && typeof e.status === 'number') return e.status;
        throw e;
      }
    };

    const created = await admin('POST', '/admin/keys', { name: 'vk', budget: { window: '1h', maxTokens: 100000 }, rpm: 1000, tpm: 1000000, metadata: { team: 'search' } });
    expect(created.status).toBe(201);
    const first = (JSON.parse(created.text) as { secret: string }).secret;
    expect(await chat(first)).toBe(200);
    expect(await chat(ENV.SEC_TEAM_KEY)).toBe(200);
    const rotated = await admin('POST', '/admin/keys/vk/rotate');
    const second = (JSON.parse(rotated.text) as { secret: string }).secret;
    expect(await chat(first)).toBe(401);
    expect(await chat(second)).toBe(200);
    expect(await chat(`${second}x`)).toBe(401);
    expect((await admin('POST', '/admin/keys/vk/revoke')).status).toBe(200);
    expect(await chat(second)).toBe(401);

    const views: Record<string, string> = {};
    for (const path of ['/metrics', '/admin/status', '/admin/audit?limit=500', '/admin/keys', '/admin/budgets', '/admin/deployments']) {
      const r = await admin('GET', path);
      expect(r.status).toBe(200);
      views[path] = r.text;
    }
    await server.stop();
    const output = server.output();
    const stored = readFileSync(join(dir, 'inference.db')).toString('latin1');

    // What was captured is real: the key names and request ids are there.
    expect(views['/metrics']).toContain('name="vk"');
    expect(views['/admin/audit?limit=500']).toContain('key.rotate');
    expect(views['/admin/status']).toContain('"team"');
    expect(output).toContain('secret-probe');
    expect(stored).toContain('"vk"');

    const secrets = { ...ENV, first, second };
    for (const [name, secret] of Object.entries(secrets)) {
      for (const [where, text] of [['logs', output], ['storage file', stored], ...Object.entries(views)] as const) {
        expect(text.includes(secret), `${name} found in ${where}`).toBe(false);
        // Not a long piece of it either (a display prefix is the first 12 characters only).
        expect(text.includes(secret.slice(-16)), `the end of ${name} found in ${where}`).toBe(false);
      }
    }
    // The API shows neither a secret nor its hash.
    for (const text of Object.values(views)) expect(text).not.toMatch(/"hash"|[0-9a-f]{64}/);
  });
});
