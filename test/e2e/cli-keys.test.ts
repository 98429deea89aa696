// The `inference key | audit | budget` commands of the real CLI against a running
// gateway with an admin key ($INFERENCE_ADMIN_KEY): create prints the secret once,
// which then serves; rotate prints a new one and the old is refused; revoke; the
// audit listing names the changes; a budget reset; bad flags fail before any call.

import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type Server, parseConfig, serve } from '@inference/gateway';
import { type MockUpstream, startMockUpstream } from '@inference/mock-upstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'apps', 'gateway', 'dist', 'cli.js');
const ADMIN = 'adm-cli-keys-0d4f7b2e91';
const run = promisify(execFile);
let mock: MockUpstream;
let server: Server;

beforeAll(async () => {
  process.env.CLIK_ADMIN = ADMIN;
  mock = await startMockUpstream({ port: 0 });
  server = await serve(parseConfig({
    server: { port: 0 },
    auth: { adminKeys: [{ name: 'ops', keyEnv: 'CLIK_ADMIN' }] },
    deployments: [{ name: 'gpt', runtime: 'openai', endpoint: mock.url, model: 'gpt-4o-mini' }],
  }));
});
afterAll(async () => {
  await server.close();
  await mock.close();
  Reflect.deleteProperty(process.env, 'CLIK_ADMIN');
});

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  try {
    const r = await run(process.execPath, [CLI, ...args, '--server', server.url], { env: { ...process.env, INFERENCE_ADMIN_KEY: ADMIN } });
    return { code: 0, out: r.stdout, err: r.stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: x.code ?? -1, out: x.stdout ?? '', err: x.stderr ?? '' };
  }
}

async function chat(secret: string): Promise<number> {
  const res = await fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST', headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt', messages: [{ role: 'user', content: 'x' }], max_tokens: 2 }),
  });
  await res.arrayBuffer();
  return res.status;
}

const secretIn = (out: string): string => /^secret: (sk-inf-\S+)$/m.exec(out)?.[1] ?? '';

describe('inference key / audit / budget', () => {
  it('manages a key through its life and shows the audit trail', async () => {
    const created = await cli('key', 'create', 'cli-app', '--deployments', 'gpt', '--rpm', '50', '--budget-window', '1d', '--budget-tokens', '5000', '--team', 'search', '--owner', 'ann');
    expect(created.code).toBe(0);
    const first = secretIn(created.out);
    expect(first).toMatch(/^sk-inf-/);
    expect(await chat(first)).toBe(200);

    const list = await cli('key', 'list');
    expect(list.out).toMatch(/cli-app\s+sk-inf-\S+\s+active\s+gpt\s+50\s+-\s+5000 tok\/1d\s+never\s+search\s+ann/);
    expect(list.out).not.toContain(first);

    const updated = await cli('key', 'update', 'cli-app', '--clear', 'rpm', '--tpm', '900', '--json');
    expect(JSON.parse(updated.out)).toMatchObject({ name: 'cli-app', rpm: null, tpm: 900 });

    const rotated = await cli('key', 'rotate', 'cli-app');
    const second = secretIn(rotated.out);
    expect(second).not.toBe(first);
    expect(await chat(first)).toBe(401);
    expect(await chat(second)).toBe(200);

    const reset = await cli('budget', 'reset', 'key', 'cli-app');
    expect(reset.code).toBe(0);
    expect(reset.out).toMatch(/^reset the 1d budget of key cli-app \(was \d+ tokens/);

    expect((await cli('key', 'revoke', 'cli-app')).out.trim()).toBe('revoked key cli-app');
    expect(await chat(second)).toBe(401);

    const audit = await cli('audit', '--limit', '10');
    const actions = audit.out.split('\n').slice(1).map((l) => l.split(/\s{2,}/).slice(1, 4).join(' ')).filter((l) => l !== '');
    expect(actions).toEqual(['ops key.revoke cli-app', 'ops budget.reset key:cli-app', 'ops key.rotate cli-app', 'ops key.update cli-app', 'ops key.create cli-app']);
  });

  it('refuses bad input with a message and exit status 1, without a secret in sight', async () => {
    const bad = await cli('key', 'create', 'x', '--rpm', 'lots');
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('--rpm must be a whole number');
    const server400 = await cli('key', 'create', 'has space');
    expect(server400.code).toBe(1);
    expect(server400.err).toContain('name: may hold letters');
    const missing = await cli('key', 'rotate', 'nobody');
    expect(missing.err).toContain("no key named 'nobody'");
    expect((await cli('budget', 'reset', 'team', 'x')).err).toContain("expected deployment or key, got 'team'");
  });
});
