// The secrets allow-list through the admin API of a real gateway: a deployment
// applied at run time may name in apiKeyEnv only the variables the config file
// allows (secrets.env, exact names or PREFIX_*; or named by the file's own
// deployments). Any other is refused with a 400 naming it, and nothing is
// applied; an allowed one is read and sent upstream (the mock requires it). The
// variables holding the server's own keys are refused even under an allowed prefix.

import { type Server, parseConfig, serve } from '@inference/gateway';
import { type MockUpstream, startMockUpstream } from '@inference/mock-upstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ADMIN = 'k-secrets-admin';
const UPSTREAM = 'k-upstream-secret-value';
let mock: MockUpstream;
let server: Server;

beforeAll(async () => {
  process.env.SECRETS_E2E_ADMIN = ADMIN;
  process.env.PROVIDER_E2E_TEAM = 'k-team-api-key';
  process.env.PROVIDER_E2E_UPSTREAM = UPSTREAM;
  process.env.NOT_ALLOWED_E2E = UPSTREAM;
  mock = await startMockUpstream({ port: 0, apiKey: UPSTREAM });
  server = await serve(parseConfig({
    server: { port: 0 },
    secrets: { env: ['PROVIDER_E2E_*'] },
    auth: { adminKeys: [{ name: 'ops', keyEnv: 'SECRETS_E2E_ADMIN' }], apiKeys: [{ name: 'team', keyEnv: 'PROVIDER_E2E_TEAM' }] },
  }));
});

afterAll(async () => {
  await server.close();
  await mock.close();
});

async function put(name: string, apiKeyEnv: string): Promise<{ status: number; body: { error?: { message: string; param: string | null } } }> {
  const res = await fetch(`${server.url}/admin/deployments/${name}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN}` },
    body: JSON.stringify({ runtime: 'openai', endpoint: mock.url, model: 'gpt-4o-mini', replicas: 1, apiKeyEnv }),
  });
  return { status: res.status, body: (await res.json()) as { error?: { message: string; param: string | null } } };
}

describe('apiKeyEnv through the admin API', () => {
  it.each(['NOT_ALLOWED_E2E', 'HOME', 'SECRETS_E2E_ADMIN', 'PROVIDER_E2E_TEAM', 'INFERENCE_ADMIN_KEY'])('%s is refused with 400 naming it, and nothing is applied', async (name) => {
    const r = await put('stolen', name);
    expect(r.status).toBe(400);
    expect(r.body.error?.param).toBe('apiKeyEnv');
    expect(r.body.error?.message).toContain(name);
    expect(JSON.stringify(r.body)).not.toContain(UPSTREAM);
    const get = await fetch(`${server.url}/admin/deployments/stolen`, { headers: { authorization: `Bearer ${ADMIN}` } });
    expect(get.status).toBe(404);
  });

  it('an allowed prefix is applied, and its value reaches the upstream', async () => {
    const r = await put('allowed', 'PROVIDER_E2E_UPSTREAM');
    expect(r.status).toBe(200);
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer k-team-api-key' },
      body: JSON.stringify({ model: 'allowed', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 }),
    });
    expect(res.status).toBe(200);
  });
});
