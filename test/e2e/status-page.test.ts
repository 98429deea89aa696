// The status page at / in headless Chromium (Debian's chromium through
// playwright-core): it shows the deployments and replicas with their states, and
// follows live changes (a new deployment, a scale-up, a failed request, traffic)
// without a reload. A screenshot is kept in test/artifacts/status-page.png.

import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BrowserPage, VIEWPORT, openBrowser, until } from '../support/browser.js';
import { type Harness, startHarness } from '../support/harness.js';

const ARTIFACT = join(dirname(fileURLToPath(import.meta.url)), '..', 'artifacts', 'status-page.png');

let h: Harness;
let b: BrowserPage;
let page: Page;

function put(name: string, body: unknown): Promise<Response> {
  return fetch(`${h.url}/admin/deployments/${name}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

const text = async (selector: string): Promise<string> => (await page.textContent(selector)) ?? '';
const count = (selector: string): Promise<number> => page.locator(selector).count();
const rows = (deployment: string, state: string): Promise<number> => count(`article[data-deployment="${deployment}"] tr[data-replica][data-state="${state}"]`);

beforeAll(async () => {
  h = await startHarness({
    replicas: 2,
    gpt: { price: { inputPerMTok: 2, outputPerMTok: 8 }, budget: { window: '1h', maxCostUsd: 5, maxTokens: 1_000_000 } },
  });
  b = await openBrowser();
  page = b.page;
});

afterAll(async () => {
  await b?.browser.close();
  await h?.close();
});

describe('status page', () => {
  it('is one self-contained page under a strict Content-Security-Policy', async () => {
    const res = await fetch(`${h.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toMatch(/default-src 'none'/);
    expect(csp).toMatch(/script-src 'sha256-[A-Za-z0-9+/=]+'/);
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval/);
    const html = await res.text();
    // No external resources, and nothing rendered through the HTML parser.
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    expect(html).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
  });

  it('shows the deployments and their replicas with their states', async () => {
    await page.goto(`${h.url}/`);
    await until('two serving replicas of gpt', async () => (await rows('gpt', 'serving')) === 2);
    const trs = page.locator('article[data-deployment="gpt"] tr[data-replica]');
    const ids = await Promise.all(Array.from({ length: await trs.count() }, (_, i) => trs.nth(i).getAttribute('data-replica')));
    expect(ids).toHaveLength(2);
    expect(ids.every((id) => id?.startsWith('gpt#'))).toBe(true);
    expect(await page.textContent('article[data-deployment="gpt"] [data-field="replicas"]')).toBe('2 / 2');
    expect(await page.getAttribute('article[data-deployment="gpt"] .badge', 'data-state')).toBe('serving');
    expect(await page.textContent('[data-total="deployments"]')).toBe('1');
    expect(await page.textContent('#conn')).toMatch(/^Live/);
    expect(await page.isVisible('#no-errors')).toBe(true);
    // No admin auth configured: no key is asked for.
    expect(await page.isVisible('#auth')).toBe(false);
    expect(await page.textContent('#summary')).toBe('1 deployment, 2 of 2 replicas serving');
  });

  it('follows traffic, a new deployment, a scale-up and a failed request without a reload', async () => {
    const loadedOnce = b.navigations();

    // Traffic: rates and spend move.
    for (let i = 0; i < 4; i++) await h.client.chat.completions.create({ model: 'gpt', messages: [{ role: 'user', content: 'hi' }], max_tokens: 5 });
    await until('requests/s and spend of gpt above zero', async () => {
      const spend = await text('article[data-deployment="gpt"] [data-field="spend"]');
      const rps = Number(await text('article[data-deployment="gpt"] [data-field="rps"]'));
      return rps > 0 && /^\$0\.0\d*[1-9]/.test(spend) && spend.includes('of $5');
    });
    expect(Number(await page.textContent('[data-total="tps"]'))).toBeGreaterThan(0);
    expect(await page.getAttribute('article[data-deployment="gpt"] .spend [role="meter"]', 'aria-valuemax')).toBe('5');

    // A deployment applied through the admin API appears and serves.
    expect((await put('fresh', { runtime: 'openai', endpoint: h.mock.url, replicas: 1, remote: { maxRetries: 0 } })).status).toBe(200);
    await until('the new deployment with one serving replica', async () => (await rows('fresh', 'serving')) === 1);
    expect(await page.textContent('[data-total="deployments"]')).toBe('2');

    // Scaled up to three replicas through the scale endpoint.
    const scaled = await fetch(`${h.url}/admin/deployments/fresh/scale`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ replicas: 3 }) });
    expect(scaled.status).toBe(200);
    await until('three serving replicas of fresh', async () => (await rows('fresh', 'serving')) === 3);
    expect(await page.textContent('article[data-deployment="fresh"] [data-field="replicas"]')).toBe('3 / 3');

    // A failed request shows up in the recent errors with its client-safe message.
    h.mock.setDefault({ status: 500 });
    try {
      await expect(h.client.chat.completions.create({ model: 'fresh', messages: [{ role: 'user', content: 'private words' }], max_tokens: 5 })).rejects.toMatchObject({ status: 502 });
    } finally {
      h.mock.setDefault({});
    }
    await until('the failed request in the recent errors', async () => {
      const first = await page.locator('#error-rows tr[data-error]').first().textContent({ timeout: 1000 }).catch(() => '');
      return (first ?? '').includes('fresh') && (first ?? '').includes('upstream_error');
    });
    expect(await page.isVisible('#no-errors')).toBe(false);
    expect(await page.textContent('#error-rows')).not.toContain('private words');
    expect(await page.textContent('#summary')).toMatch(/latest error: fresh upstream_error/);

    // A deployment that cannot load shows as failed, with the reason (it stays for the screenshot).
    expect((await put('broken', { runtime: 'llama', model: 'models/no-such-model.gguf', replicas: 1 })).status).toBe(200);
    await until('broken failed with a reason', async () => (await rows('broken', 'failed')) === 1);
    expect(await page.getAttribute('article[data-deployment="broken"] .badge', 'data-state')).toBe('failed');
    expect(await text('article[data-deployment="broken"] tr[data-replica] [data-field="reason"]')).not.toBe('');
    expect(await text('#summary')).toMatch(/broken failed/);

    // Removed: the deployment leaves the page.
    expect((await fetch(`${h.url}/admin/deployments/fresh`, { method: 'DELETE' })).status).toBe(200);
    await until('fresh gone', async () => (await count('article[data-deployment="fresh"]')) === 0);

    // All of it without a reload.
    expect(b.navigations()).toBe(loadedOnce);
  });

  it('keeps a screenshot of the page', async () => {
    await mkdir(dirname(ARTIFACT), { recursive: true });
    await page.screenshot({ path: ARTIFACT });
    const png = await readFile(ARTIFACT);
    expect(png.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
    expect(png.subarray(12, 16).toString('ascii')).toBe('IHDR');
    expect(png.readUInt32BE(16)).toBe(VIEWPORT.width);
    expect(png.readUInt32BE(20)).toBe(VIEWPORT.height);
    // A blank page compresses to a few hundred bytes; a rendered one does not.
    expect(png.length).toBeGreaterThan(10_000);
  });

  it('ran without script errors or CSP violations', () => {
    expect(b.errors).toEqual([]);
  });
});
