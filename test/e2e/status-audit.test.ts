// The status page's "Latest admin changes" section in headless Chromium: after a
// key is created and a deployment applied through the admin API, the page lists
// them (newest first, with the admin key's name) without a reload, and the JSON
// it polls (/admin/status) carries who/what/when only: no values, no secrets.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Server, parseConfig, serve } from '@inference/gateway';
import { type MockUpstream, startMockUpstream } from '@inference/mock-upstream';
import { type BrowserPage, openBrowser, until } from '../support/browser.js';

const ADMIN = 'adm-status-audit-3e7a9c1b55';
let mock: MockUpstream;
let server: Server;
let b: BrowserPage;

beforeAll(async () => {
  process.env.SA_ADMIN_KEY = ADMIN;
  mock = await startMockUpstream({ port: 0 });
  server = await serve(parseConfig({ server: { port: 0 }, auth: { adminKeys: [{ name: 'ops', keyEnv: 'SA_ADMIN_KEY' }] }, deployments: [] }));
  b = await openBrowser();
});
afterAll(async () => {
  await b?.browser.close();
  await server?.close();
  await mock?.close();
  Reflect.deleteProperty(process.env, 'SA_ADMIN_KEY');
});

const admin = (method: string, path: string, body?: unknown): Promise<Response> => fetch(`${server.url}${path}`, {
  method,
  headers: { authorization: `Bearer ${ADMIN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
  ...(body === undefined ? {} : { body: JSON.stringify(body) }),
});

describe('status page audit section', () => {
  it('lists the latest admin changes live, and the status JSON carries no values or secrets', async () => {
    const page = b.page;
    await page.goto(`${server.url}/`);
    await page.fill('#admin-key', ADMIN);
    await page.click('#auth button');
    await until('the page is live', async () => ((await page.textContent('#conn')) ?? '').startsWith('Live'));
    expect(await page.isVisible('#audit')).toBe(false);
    const loaded = b.navigations();

    const created = await admin('POST', '/admin/keys', { name: 'status-key' });
    const secret = ((await created.json()) as { secret: string }).secret;
    expect((await admin('PUT', '/admin/deployments/gpt', { runtime: 'openai', endpoint: mock.url, model: 'gpt-4o-mini' })).status).toBe(200);
    await until('two audit rows', async () => (await page.locator('#audit tr[data-audit]').count()) === 2);
    const tds = await page.locator('#audit tr[data-audit] td').allTextContents();
    // Four cells a row (time, admin key, change, target); the time aside:
    expect([tds.slice(1, 4), tds.slice(5, 8)]).toEqual([['ops', 'deployment.apply', 'gpt'], ['ops', 'key.create', 'status-key']]);
    expect(b.navigations()).toBe(loaded);

    const status = await (await admin('GET', '/admin/status')).text();
    expect(JSON.parse(status)).toMatchObject({ audit: [{ action: 'deployment.apply', actor: 'ops' }, { action: 'key.create', target: 'status-key' }] });
    expect(status).not.toContain(secret);
    expect(status).not.toContain('"before"');
    // The first poll, before the key was given, was a 401; nothing else went wrong (no CSP violation, no script error).
    expect(b.errors.filter((e) => !e.includes('401'))).toEqual([]);
  });
});
