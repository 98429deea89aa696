// The status page behind admin keys, in headless Chromium: the HTML is open but
// its data is not, so the page asks for an admin key, refuses a wrong one, keeps a
// right one in the tab's sessionStorage (a reload stays signed in), forgets it on
// request, and shows spend against budget for deployments and API keys by name.
// No key ever appears on the page.

import { type Server, parseConfig, serve } from '@inference/gateway';
import { type MockUpstream, startMockUpstream } from '@inference/mock-upstream';
import OpenAI from 'openai';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BrowserPage, openBrowser, until } from '../support/browser.js';

const KEYS = { STATUS_ADMIN_KEY: 'adm-status-3c9f1e27', STATUS_TEAM_KEY: 'sk-status-team-8d2b6a41' };
let mock: MockUpstream;
let server: Server;
let b: BrowserPage;
let page: Page;

beforeAll(async () => {
  Object.assign(process.env, KEYS);
  mock = await startMockUpstream({ port: 0 });
  server = await serve(parseConfig({
    server: { port: 0 },
    auth: {
      apiKeys: [{ name: 'team-blue', keyEnv: 'STATUS_TEAM_KEY', budget: { window: '1d', maxCostUsd: 2, maxTokens: 100_000 } }],
      adminKeys: [{ name: 'ops', keyEnv: 'STATUS_ADMIN_KEY' }],
    },
    deployments: [{
      name: 'gpt', runtime: 'openai', endpoint: mock.url, model: 'gpt-4o-mini', replicas: 1,
      price: { inputPerMTok: 1000, outputPerMTok: 4000 }, budget: { window: '1h', maxCostUsd: 10 },
    }],
  }));
  b = await openBrowser();
  page = b.page;
});
afterAll(async () => {
  await b?.browser.close();
  await server?.close();
  await mock?.close();
  for (const k of Object.keys(KEYS)) Reflect.deleteProperty(process.env, k);
});

const text = async (selector: string): Promise<string> => (await page.textContent(selector)) ?? '';

async function enterKey(key: string): Promise<void> {
  await page.fill('#admin-key', key);
  await page.click('#auth button[type="submit"]');
}

describe('status page with admin keys', () => {
  it('asks for an admin key and refuses a wrong one', async () => {
    expect((await fetch(`${server.url}/admin/status`)).status).toBe(401);
    await page.goto(`${server.url}/`);
    await until('the admin key form', () => page.isVisible('#auth'));
    expect(await text('#conn')).toBe('Admin key needed');
    expect(await page.locator('article[data-deployment]').count()).toBe(0);
    await enterKey('adm-status-wrong');
    await until('the refusal', async () => (await text('#auth-msg')) === 'That key was refused.');
    expect(await page.locator('article[data-deployment]').count()).toBe(0);
  });

  it('shows the live state with the right key, and spend against budgets per deployment and per key name', async () => {
    await enterKey(KEYS.STATUS_ADMIN_KEY);
    await until('gpt serving', async () => (await page.locator('article[data-deployment="gpt"] tr[data-replica][data-state="serving"]').count()) === 1);
    expect(await page.isVisible('#auth')).toBe(false);
    expect(await text('article[data-deployment="gpt"] .spend')).toContain('Spend (this 1h window)');
    expect(await text('tr[data-key="team-blue"] [data-field="spend"]')).toBe('$0 of $2.0000');

    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: KEYS.STATUS_TEAM_KEY, maxRetries: 0 });
    const r = await client.chat.completions.create({ model: 'gpt', messages: [{ role: 'user', content: 'x' }], max_tokens: 5 });
    const cost = ((r.usage?.prompt_tokens ?? 0) * 1000 + (r.usage?.completion_tokens ?? 0) * 4000) / 1e6;
    expect(cost).toBeGreaterThan(0);
    const shown = `$${cost.toFixed(4)} of $2.0000`;
    await until(`the key's spend ${shown}`, async () => (await text('tr[data-key="team-blue"] [data-field="spend"]')) === shown);
    await until("the deployment's spend", async () => (await text('article[data-deployment="gpt"] [data-field="spend"]')) === `$${cost.toFixed(4)} of $10.0000 per 1h`);
    expect(Number(await page.getAttribute('tr[data-key="team-blue"] [data-field="spend"] [role="meter"]', 'aria-valuenow'))).toBeCloseTo(cost, 10);
  });

  it('keeps the key for the tab across a reload, never shows it, and forgets it on request', async () => {
    await page.reload();
    await until('gpt after the reload', async () => (await page.locator('article[data-deployment="gpt"]').count()) === 1);
    expect(await page.isVisible('#auth')).toBe(false);
    const html = await page.content();
    for (const key of Object.values(KEYS)) expect(html).not.toContain(key);
    await page.click('#forget');
    await until('the admin key form again', () => page.isVisible('#auth'));
    expect(await page.evaluate('sessionStorage.length')).toBe(0);
  });

  it('ran without script errors or CSP violations other than the refused status requests', () => {
    // Chromium logs each 401 answer as a failed resource load; nothing else may appear.
    expect(b.errors.filter((e) => !/status of 401/.test(e))).toEqual([]);
  });
});
