// Virtual API keys end to end with the real `openai` client, on one gateway with
// admin keys and a config-file API key: create -> use -> rotate -> the old secret
// is refused -> revoke -> refused; expiry; a deployment outside the key's list
// (403); the key's budget, rpm and tpm (429); budget reset; the audit trail with
// the admin key's name and before/after values, paged by cursor; and records that
// survive a restart on a storage file.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Server, parseConfig, serve } from '@inference/gateway';
import { type MockUpstream, startMockUpstream } from '@inference/mock-upstream';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ENV = { VK_ADMIN_OPS: 'adm-vk-ops-4c1d9a0e77', VK_ADMIN_SEC: 'adm-vk-sec-98b2f1d3c6', VK_TEAM: 'sk-vk-team-51e0c7a2d4' };
let mock: MockUpstream;
let server: Server;
let dir: string;

function config(): ReturnType<typeof parseConfig> {
  return parseConfig({
    server: { port: 0 },
    storage: { path: join(dir, 'inference.db') },
    auth: {
      apiKeys: [{ name: 'team', keyEnv: 'VK_TEAM' }],
      adminKeys: [{ name: 'ops', keyEnv: 'VK_ADMIN_OPS' }, { name: 'security', keyEnv: 'VK_ADMIN_SEC' }],
    },
    audit: { maxRecords: 1000 },
    deployments: [
      { name: 'gpt', runtime: 'openai', endpoint: mock.url, model: 'gpt-4o-mini' },
      { name: 'other', runtime: 'openai', endpoint: mock.url, model: 'gpt-4o-mini' },
    ],
  });
}

beforeAll(async () => {
  Object.assign(process.env, ENV);
  mock = await startMockUpstream({ port: 0 });
  dir = mkdtempSync(join(tmpdir(), 'inference-e2e-keys-'));
  server = await serve(config());
});
afterAll(async () => {
  await server.close();
  await mock.close();
  rmSync(dir, { recursive: true, force: true });
  for (const k of Object.keys(ENV)) Reflect.deleteProperty(process.env, k);
});

interface KeyView { name: string; prefix: string; state: string; version: number; deployments: string[] | null; metadata: Record<string, string>; expiresAt: string | null }
interface Created { key: KeyView; secret: string }
interface AuditRecord { id: string; at: string; action: string; target: string; actor: string | null; requestId: string | null; before: unknown; after: unknown }

interface Reply { status: number; body: unknown }

async function call(method: string, path: string, body?: unknown, adminKey = ENV.VK_ADMIN_OPS): Promise<Reply> {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${adminKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: await res.json() };
}

/** An admin call that must succeed; its JSON. */
async function admin<T = unknown>(method: string, path: string, body?: unknown, adminKey = ENV.VK_ADMIN_OPS): Promise<T> {
  const r = await call(method, path, body, adminKey);
  if (r.status >= 300) throw new Error(`${method} ${path}: ${String(r.status)} ${JSON.stringify(r.body)}`);
  return r.body as T;
}

async function create(body: Record<string, unknown>, adminKey?: string): Promise<Created> {
  const r = await call('POST', '/admin/keys', body, adminKey);
  expect(r.status).toBe(201);
  return r.body as Created;
}

const openai = (apiKey: string): OpenAI => new OpenAI({ baseURL: `${server.url}/v1`, apiKey, maxRetries: 0 });
const chat = (apiKey: string, model = 'gpt', maxTokens = 2) => openai(apiKey).chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }], max_tokens: maxTokens });
const refusal = (p: Promise<unknown>): Promise<unknown> => p.then(() => 'served', (e: unknown) => e);

async function auditFor(target: string): Promise<AuditRecord[]> {
  return (await admin<{ records: AuditRecord[] }>('GET', '/admin/audit?limit=500')).records.filter((r) => r.target === target);
}

describe('virtual key lifecycle', () => {
  it('create -> use -> rotate -> old refused -> revoke -> refused, while the config key keeps working', async () => {
    const created = await create({ name: 'app-1', metadata: { team: 'search', owner: 'ann' } });
    expect(created.secret).toMatch(/^sk-inf-[A-Za-z0-9_-]{43}$/);
    expect(created.key).toMatchObject({ name: 'app-1', state: 'active', version: 1, deployments: null, metadata: { team: 'search', owner: 'ann' } });
    expect(created.secret.startsWith(created.key.prefix)).toBe(true);
    expect((await chat(created.secret)).choices[0]?.message.content).toBe('The quick');

    const rotated = (await admin<Created>('POST', '/admin/keys/app-1/rotate'));
    expect(rotated.secret).not.toBe(created.secret);
    expect(rotated.key.version).toBe(2);
    const old = await refusal(chat(created.secret));
    expect(old).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(old).toMatchObject({ status: 401, code: 'invalid_api_key' });
    expect((await chat(rotated.secret)).choices).toHaveLength(1);

    const revoked = await admin<KeyView>('POST', '/admin/keys/app-1/revoke');
    expect(revoked.state).toBe('revoked');
    const after = await refusal(chat(rotated.secret));
    expect(after).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((after as Error).message).toContain('this API key has been revoked');
    // Revoked is final; the record stays listed.
    expect((await call('POST', '/admin/keys/app-1/rotate')).status).toBe(400);
    expect((await admin<{ keys: KeyView[] }>('GET', '/admin/keys')).keys.find((k) => k.name === 'app-1')?.state).toBe('revoked');
    expect((await chat(ENV.VK_TEAM)).choices).toHaveLength(1);
    // Without any key /v1 is closed.
    expect((await fetch(`${server.url}/v1/models`)).status).toBe(401);
  });

  it('an expired key is refused with 401 saying so', async () => {
    const expiresAt = new Date(Date.now() + 1500).toISOString();
    const k = await create({ name: 'short-lived', expiresAt });
    expect(k.key.expiresAt).toBe(expiresAt);
    expect((await chat(k.secret)).choices).toHaveLength(1);
    await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(expiresAt) - Date.now()) + 50));
    const e = await refusal(chat(k.secret));
    expect(e).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((e as Error).message).toContain('this API key has expired');
    expect((await admin<KeyView>('GET', '/admin/keys/short-lived')).state).toBe('expired');
    // Extending it brings it back.
    const later = new Date(Date.now() + 3_600_000).toISOString();
    expect((await admin<KeyView>('PATCH', '/admin/keys/short-lived', { expiresAt: later })).state).toBe('active');
    expect((await chat(k.secret)).choices).toHaveLength(1);
  });

  it('a deployment outside the key\'s list is 403 and not in /v1/models; an update widens it', async () => {
    const k = await create({ name: 'scoped', deployments: ['gpt'] });
    const e = await refusal(chat(k.secret, 'other'));
    expect(e).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect(e).toMatchObject({ status: 403, code: 'forbidden', param: 'model' });
    expect((await openai(k.secret).models.list()).data.map((m) => m.id)).toEqual(['gpt']);
    await admin('PATCH', '/admin/keys/scoped', { deployments: null });
    expect((await chat(k.secret, 'other')).choices).toHaveLength(1);
  });

  it('the key budget refuses with 429 once spent; a reset re-opens it and is audited with the spend before', async () => {
    const k = await create({ name: 'budgeted', budget: { window: '1d', maxTokens: 40 } });
    let served = 0;
    let refused: unknown;
    for (let i = 0; i < 20 && refused === undefined; i++) {
      const r = await refusal(chat(k.secret, 'gpt', 8));
      if (r === 'served') served++;
      else refused = r;
    }
    expect(served).toBeGreaterThan(0);
    expect(refused).toBeInstanceOf(OpenAI.RateLimitError);
    expect(refused).toMatchObject({ status: 429, type: 'insufficient_quota' });
    expect((refused as Error).message).toContain("the budget of API key 'budgeted'");
    const reset = await admin<{ before: { tokens: number }; after: { tokens: number } }>('POST', '/admin/budgets/key/budgeted/reset', undefined, ENV.VK_ADMIN_SEC);
    expect(reset.before.tokens).toBeGreaterThan(0);
    expect(reset.after.tokens).toBe(0);
    expect((await chat(k.secret, 'gpt', 8)).choices).toHaveLength(1);
    const [rec] = await auditFor('key:budgeted');
    expect(rec).toMatchObject({ action: 'budget.reset', actor: 'security', before: { tokens: reset.before.tokens, window: '1d' }, after: { tokens: 0 } });
    expect((await call('POST', '/admin/budgets/key/nobody/reset')).status).toBe(404);
    expect((await call('POST', '/admin/budgets/team/budgeted/reset')).status).toBe(400);
  });

  it('rpm refuses the request past the limit with 429 and retry-after; tpm refuses once the minute\'s tokens are used', async () => {
    const r = await create({ name: 'rpm-2', rpm: 2 });
    await chat(r.secret);
    await chat(r.secret);
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST', headers: { authorization: `Bearer ${r.secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt', messages: [{ role: 'user', content: 'x' }], max_tokens: 2 }),
    });
    expect(res.status).toBe(429);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(((await res.json()) as { error: { message: string; type: string } }).error).toMatchObject({ type: 'rate_limit_error', message: "API key 'rpm-2' has used its rpm limit for this minute" });

    const t = await create({ name: 'tpm-10', tpm: 10 });
    await chat(t.secret, 'gpt', 12);
    const e = await refusal(chat(t.secret));
    expect(e).toBeInstanceOf(OpenAI.RateLimitError);
    expect((e as Error).message).toContain('tpm');
    // Limits lifted at run time apply at once.
    await admin('PATCH', '/admin/keys/tpm-10', { tpm: null });
    expect((await chat(t.secret)).choices).toHaveLength(1);
  });

  it('bad input is a 400 naming the field; unknown keys 404; the key API needs an admin key', async () => {
    const bad = async (body: unknown, param: string): Promise<void> => {
      const r = await call('POST', '/admin/keys', body);
      expect(r.status).toBe(400);
      expect(r.body).toMatchObject({ error: { type: 'invalid_request_error', param } });
    };
    await bad({ name: 'x', colour: 'red' }, 'colour');
    await bad({ name: 'has space' }, 'name');
    await bad({ name: 'team' }, 'name'); // a config-file key's name
    await bad({ name: 'app-1' }, 'name'); // exists (revoked)
    await bad({ name: 'x', rpm: 0 }, 'rpm');
    await bad({ name: 'x', expiresAt: '2001-01-01T00:00:00Z' }, 'expiresAt');
    await bad({ name: 'x', budget: { window: 'fortnight' } }, 'budget.window');
    await bad({ name: 'x', metadata: { team: 7 } }, 'metadata.team');
    expect((await call('GET', '/admin/keys/nope')).status).toBe(404);
    expect((await call('PATCH', '/admin/keys/scoped', {})).status).toBe(400);
    expect((await fetch(`${server.url}/admin/keys`)).status).toBe(401);
    expect((await fetch(`${server.url}/admin/keys`, { headers: { authorization: `Bearer ${ENV.VK_TEAM}` } })).status).toBe(401);
  });
});

describe('audit trail', () => {
  it('records deployment apply, scale and remove with the admin key name and the spec before and after', async () => {
    const spec = { runtime: 'openai', endpoint: mock.url, model: 'gpt-4o-mini', replicas: 1 };
    expect((await call('PUT', '/admin/deployments/audited', spec)).status).toBe(200);
    expect((await call('POST', '/admin/deployments/audited/scale', { replicas: 2 }, ENV.VK_ADMIN_SEC)).status).toBe(200);
    expect((await call('DELETE', '/admin/deployments/audited')).status).toBe(200);
    // A refused change leaves no record.
    expect((await call('POST', '/admin/deployments/audited/scale', { replicas: 3 })).status).toBe(404);
    const recs = await auditFor('audited');
    expect(recs.map((r) => [r.action, r.actor])).toEqual([['deployment.remove', 'ops'], ['deployment.scale', 'security'], ['deployment.apply', 'ops']]);
    const [remove, scale, apply] = recs;
    expect(apply?.before).toBeNull();
    expect(apply?.after).toMatchObject({ name: 'audited', replicas: 1 });
    expect(scale?.before).toMatchObject({ replicas: 1 });
    expect(scale?.after).toMatchObject({ replicas: 2 });
    expect(remove?.before).toMatchObject({ replicas: 2 });
    expect(remove?.after).toBeNull();
    expect(apply?.requestId).toMatch(/^req_/);
  });

  it('records key create, update, rotate and revoke with views before and after, never a secret or hash', async () => {
    const k = await create({ name: 'watched', rpm: 5 });
    await admin('PATCH', '/admin/keys/watched', { rpm: 6 });
    const rotated = (await admin<Created>('POST', '/admin/keys/watched/rotate'));
    await admin('POST', '/admin/keys/watched/revoke');
    const recs = await auditFor('watched');
    expect(recs.map((r) => r.action)).toEqual(['key.revoke', 'key.rotate', 'key.update', 'key.create']);
    expect(recs[3]).toMatchObject({ actor: 'ops', before: null, after: { name: 'watched', rpm: 5, state: 'active', prefix: k.key.prefix } });
    expect(recs[2]).toMatchObject({ before: { rpm: 5 }, after: { rpm: 6 } });
    expect(recs[1]).toMatchObject({ before: { prefix: k.key.prefix }, after: { prefix: rotated.key.prefix } });
    expect(recs[0]).toMatchObject({ before: { state: 'active' }, after: { state: 'revoked' } });
    const text = JSON.stringify(recs);
    for (const s of [k.secret, rotated.secret]) {
      expect(text).not.toContain(s);
      expect(text).not.toContain(s.slice(16));
    }
    expect(text).not.toMatch(/[0-9a-f]{64}/);
  });

  it('pages newest first by cursor with no record twice, and refuses a bad cursor or limit', async () => {
    const all = (await admin<{ records: AuditRecord[]; next: string | null }>('GET', '/admin/audit?limit=500'));
    expect(all.next).toBeNull();
    expect(all.records.length).toBeGreaterThan(10);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const q: string = cursor === null ? '' : `&before=${cursor}`;
      const page = (await admin<{ records: AuditRecord[]; next: string | null }>('GET', `/admin/audit?limit=3${q}`));
      expect(page.records.length).toBeLessThanOrEqual(3);
      seen.push(...page.records.map((r) => r.id));
      cursor = page.next;
      pages++;
    } while (cursor !== null && pages < 100);
    expect(seen).toEqual(all.records.map((r) => r.id));
    expect([...seen].sort().reverse()).toEqual(seen);
    expect((await call('GET', '/admin/audit?before=nope')).status).toBe(400);
    expect((await call('GET', '/admin/audit?limit=0')).status).toBe(400);
    expect((await call('GET', '/admin/audit?colour=red')).status).toBe(400);
  });

  it('keys and audit records survive a restart on the storage file', async () => {
    const k = await create({ name: 'durable', deployments: ['gpt'] });
    const before = (await admin<{ records: AuditRecord[] }>('GET', '/admin/audit?limit=500')).records;
    await server.close();
    server = await serve(config());
    expect((await chat(k.secret)).choices).toHaveLength(1);
    expect(await refusal(chat(k.secret, 'other'))).toBeInstanceOf(OpenAI.PermissionDeniedError);
    const e = await refusal(chat('sk-inf-' + 'A'.repeat(43)));
    expect(e).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((await admin<KeyView>('GET', '/admin/keys/app-1')).state).toBe('revoked');
    expect((await admin<{ records: AuditRecord[] }>('GET', '/admin/audit?limit=500')).records).toEqual(before);
  });
});
