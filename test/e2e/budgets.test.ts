// Budgets end to end with the openai SDK against the mock upstream: 64 concurrent
// requests against a budget overspend by at most one request's estimate (the
// numbers are printed); refusals are 429 budget_exceeded with retry-after;
// onExceeded: fallback sends the request to the deployment's fallbacks; spend
// survives a restart on the same storage file.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Server, parseConfig, serve } from '@inference/gateway';
import { type MockUpstream, startMockUpstream } from '@inference/mock-upstream';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { metricValue } from '../support/harness.js';

let mock: MockUpstream;
let dir: string;
const servers: Server[] = [];

beforeAll(async () => {
  mock = await startMockUpstream({ port: 0 });
  dir = mkdtempSync(join(tmpdir(), 'inference-e2e-budgets-'));
});
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  mock.setDefault({});
});
afterAll(async () => {
  await mock.close();
  rmSync(dir, { recursive: true, force: true });
  delete process.env.BUDGET_TEAM_KEY;
});

async function start(doc: Record<string, unknown>): Promise<{ server: Server; client: OpenAI }> {
  const server = await serve(parseConfig({ server: { port: 0 }, ...doc }));
  servers.push(server);
  return { server, client: new OpenAI({ baseURL: `${server.url}/v1`, apiKey: process.env.BUDGET_TEAM_KEY ?? 'unused', maxRetries: 0 }) };
}

// "hi" is 1 o200k token + 4 per message; max_tokens 16: each request is estimated at 21 tokens.
const ESTIMATE_TOKENS = 21;
const ask = (client: OpenAI, model: string) => client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 16 });

interface Outcome { ok: number; refused: number; usedTokens: number; other: unknown[] }

async function fire(client: OpenAI, model: string, n: number): Promise<Outcome> {
  const results = await Promise.allSettled(Array.from({ length: n }, () => ask(client, model)));
  const out: Outcome = { ok: 0, refused: 0, usedTokens: 0, other: [] };
  for (const r of results) {
    if (r.status === 'fulfilled') {
      out.ok++;
      out.usedTokens += r.value.usage?.total_tokens ?? Number.NaN;
    } else if (r.reason instanceof OpenAI.APIError && r.reason.status === 429 && r.reason.code === 'budget_exceeded') {
      expect(Number(r.reason.headers?.get('retry-after'))).toBeGreaterThanOrEqual(1);
      out.refused++;
    } else {
      out.other.push(r.reason);
    }
  }
  return out;
}

describe('budgets', () => {
  it('64 concurrent requests against a token budget overspend by at most one estimate', async () => {
    const limit = 10 * ESTIMATE_TOKENS + 5;
    mock.setDefault({ latencyMs: 50 });
    const { server, client } = await start({
      deployments: [{ name: 'capped', runtime: 'openai', endpoint: mock.url, model: 'gpt-4o-mini', replicas: 2, budget: { window: '1d', maxTokens: limit } }],
    });
    const o = await fire(client, 'capped', 64);
    const spent = await metricValue(server.url, 'inference_budget_spend_tokens', { scope: 'deployment', name: 'capped' });
    const overspend = Math.max(0, spent - limit);
    process.stdout.write(`budget e2e (tokens): limit=${limit} estimate/request=${ESTIMATE_TOKENS} admitted=${o.ok} refused=${o.refused} spent=${spent} overspend=${overspend}\n`);
    expect(o.other).toEqual([]);
    expect(o.ok + o.refused).toBe(64);
    expect(o.refused).toBeGreaterThan(0);
    expect(o.ok).toBeGreaterThanOrEqual(10);
    // Spend is exactly what the admitted requests reported, and within one estimate of the limit.
    expect(spent).toBe(o.usedTokens);
    expect(overspend).toBeLessThanOrEqual(ESTIMATE_TOKENS);
    expect(await metricValue(server.url, 'inference_budget_refusals_total', { scope: 'deployment', name: 'capped' })).toBe(o.refused);
    const view = (await (await fetch(`${server.url}/admin/budgets`)).json()) as { budgets: unknown[] };
    expect(view.budgets).toEqual([expect.objectContaining({ scope: 'deployment', name: 'capped', window: '1d', spent: { tokens: spent, costUsd: 0 }, reserved: { tokens: 0, costUsd: 0 }, limits: { maxTokens: limit, maxCostUsd: null } })]);
  });

  it('64 concurrent requests against an API key USD budget overspend by at most one estimate', async () => {
    process.env.BUDGET_TEAM_KEY = 'sk-budget-team-0123456789';
    // $1 per prompt token and $2 per completion token: one request is estimated at 5 + 2 * 16 = $37.
    const estimateUsd = 5 + 2 * 16;
    const limit = 8 * estimateUsd + 3;
    mock.setDefault({ latencyMs: 50 });
    const { server, client } = await start({
      auth: { apiKeys: [{ name: 'team', keyEnv: 'BUDGET_TEAM_KEY', budget: { window: '1h', maxCostUsd: limit } }] },
      deployments: [{ name: 'priced', runtime: 'openai', endpoint: mock.url, model: 'gpt-4o-mini', replicas: 2, price: { inputPerMTok: 1_000_000, outputPerMTok: 2_000_000 } }],
    });
    const o = await fire(client, 'priced', 64);
    const spent = await metricValue(server.url, 'inference_budget_spend_usd', { scope: 'key', name: 'team' });
    const overspend = Math.max(0, spent - limit);
    process.stdout.write(`budget e2e (USD, key): limit=${limit} estimate/request=${estimateUsd} admitted=${o.ok} refused=${o.refused} spent=${spent} overspend=${overspend}\n`);
    expect(o.other).toEqual([]);
    expect(o.refused).toBeGreaterThan(0);
    expect(o.ok).toBeGreaterThanOrEqual(8);
    expect(overspend).toBeLessThanOrEqual(estimateUsd);
    // The metrics name the key by its configured name only.
    const text = await (await fetch(`${server.url}/metrics`)).text();
    expect(text).not.toContain(process.env.BUDGET_TEAM_KEY);
  });

  it('onExceeded: fallback goes to the fallbacks; reject answers 429 with retry-after', async () => {
    const { client } = await start({
      deployments: [
        { name: 'gpt', runtime: 'openai', endpoint: mock.url, model: 'gpt-4o-mini' },
        { name: 'tiny', runtime: 'openai', endpoint: mock.url, model: 'gpt-4o-mini', fallbacks: ['gpt'], budget: { window: '1m', maxTokens: 10, onExceeded: 'fallback' } },
        { name: 'strict', runtime: 'openai', endpoint: mock.url, model: 'gpt-4o-mini', fallbacks: ['gpt'], budget: { window: 'hour', maxTokens: 10, onExceeded: 'reject' } },
      ],
    });
    const r = await ask(client, 'tiny');
    expect(r.model).toBe('gpt');
    const e = await ask(client, 'strict').catch((err: unknown) => err);
    expect(e).toBeInstanceOf(OpenAI.RateLimitError);
    expect(e).toMatchObject({ status: 429, code: 'budget_exceeded', type: 'insufficient_quota' });
    const ra = Number((e as InstanceType<typeof OpenAI.RateLimitError>).headers.get('retry-after'));
    expect(ra).toBeGreaterThanOrEqual(1);
    expect(ra).toBeLessThanOrEqual(3600);
  });

  it('spend survives a restart on the same storage file', async () => {
    const path = join(dir, 'spend.db');
    const doc = {
      storage: { path },
      deployments: [{ name: 'kept', runtime: 'openai', endpoint: mock.url, model: 'gpt-4o-mini', budget: { window: '1d', maxTokens: 3 * ESTIMATE_TOKENS } }],
    };
    const first = await start(doc);
    await ask(first.client, 'kept');
    await ask(first.client, 'kept');
    const spentBefore = await metricValue(first.server.url, 'inference_budget_spend_tokens', { scope: 'deployment', name: 'kept' });
    expect(spentBefore).toBeGreaterThan(2 * 16);
    await first.server.close();
    servers.splice(servers.indexOf(first.server), 1);

    const second = await start(doc);
    expect(await metricValue(second.server.url, 'inference_budget_spend_tokens', { scope: 'deployment', name: 'kept' })).toBe(spentBefore);
    // With 3 estimates of room and 2 requests' spend carried, one more fits and the next does not.
    const a = await ask(second.client, 'kept').then(() => 'ok', (e: unknown) => e);
    const b = await ask(second.client, 'kept').then(() => 'ok', (e: unknown) => e);
    expect([a, b].filter((x) => x === 'ok').length).toBeLessThanOrEqual(1);
    expect(b).toMatchObject({ status: 429, code: 'budget_exceeded' });
  });
});
