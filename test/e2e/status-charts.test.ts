// The status page's charts in headless Chromium: for each deployment, the last
// 15 minutes of requests/s, tokens/s, TTFT p50/p99 and errors/s as inline SVG
// (no CDN, under the page's hash-pinned CSP). Traffic and failures show up in
// the charts without a reload; a removed deployment's charts leave the page and
// the JSON. A screenshot is kept in test/artifacts/status-charts.png.

import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BrowserPage, VIEWPORT, openBrowser, until } from '../support/browser.js';
import { type Harness, startHarness } from '../support/harness.js';

const ARTIFACT = join(dirname(fileURLToPath(import.meta.url)), '..', 'artifacts', 'status-charts.png');

let h: Harness;
let b: BrowserPage;
let page: Page;

const chartAttr = async (deployment: string, chart: string, attr: string): Promise<number> =>
  Number(await page.getAttribute(`[data-charts="${deployment}"] figure[data-chart="${chart}"] svg`, attr, { timeout: 1000 }).catch(() => 'NaN'));
const paths = (deployment: string, chart: string): Promise<number> => page.locator(`[data-charts="${deployment}"] figure[data-chart="${chart}"] path.line`).count();

interface ChartsJson { deployments: Record<string, { requestsPerSec: number[]; errorsPerSec: number[]; ttftP50Ms: (number | null)[] }> }

async function chartsJson(): Promise<ChartsJson> {
  return (await (await fetch(`${h.url}/admin/status/charts`)).json()) as ChartsJson;
}

async function streamed(model: string): Promise<void> {
  const s = await h.client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 5, stream: true });
  let chunks = 0;
  for await (const _ of s) chunks++;
  expect(chunks).toBeGreaterThan(0);
}

beforeAll(async () => {
  h = await startHarness({ replicas: 1, extraDeployments: (url) => [{ name: 'other', runtime: 'openai', endpoint: url, model: 'gpt-4o-mini', replicas: 1, remote: { maxRetries: 0 } }] });
  b = await openBrowser();
  page = b.page;
});

afterAll(async () => {
  await b?.browser.close();
  await h?.close();
});

describe('status page charts', () => {
  it('plots requests/s, tokens/s, TTFT p50/p99 and errors/s per deployment, live', async () => {
    await page.goto(`${h.url}/`);
    await until('a chart block per deployment', async () => (await page.locator('[data-charts]').count()) === 2);
    const loadedOnce = b.navigations();
    for (const c of ['rps', 'tps', 'ttft', 'errors']) expect(await page.locator(`[data-charts="gpt"] figure[data-chart="${c}"] svg`).count()).toBe(1);
    // No traffic yet: flat lines at zero, no TTFT line at all.
    expect(await chartAttr('gpt', 'rps', 'data-peak')).toBe(0);
    expect(await paths('gpt', 'ttft')).toBe(0);

    for (let i = 0; i < 6; i++) await streamed('gpt');
    h.mock.setDefault({ status: 500 });
    try {
      for (let i = 0; i < 3; i++) await expect(streamed('other')).rejects.toMatchObject({ status: 502 });
    } finally {
      h.mock.setDefault({});
    }

    // The JSON: 6 requests of gpt and 3 failures of other in the window, 180 buckets of 5 s.
    const json = await chartsJson();
    const gpt = json.deployments.gpt;
    expect(gpt?.requestsPerSec).toHaveLength(180);
    expect((gpt?.requestsPerSec ?? []).reduce((a, v) => a + v * 5, 0)).toBeCloseTo(6);
    const peak = Math.max(...(gpt?.requestsPerSec ?? []));
    // The page plots it (its next fetch, at most 5 s later), without a reload.
    await until('gpt requests, tokens and TTFT (p50 and p99) charted', async () =>
      Math.abs((await chartAttr('gpt', 'rps', 'data-peak')) - peak) < 1e-9 && (await chartAttr('gpt', 'tps', 'data-peak')) > 0 && (await paths('gpt', 'ttft')) === 2);
    await until('the failures of other charted as errors', async () => (await chartAttr('other', 'errors', 'data-peak')) > 0);
    expect((json.deployments.other?.errorsPerSec ?? []).reduce((a, v) => a + v * 5, 0)).toBeCloseTo(3);
    expect(await chartAttr('gpt', 'errors', 'data-peak')).toBe(0);
    // The captions: the peak rate, and the newest TTFT p50 / p99 from the JSON.
    expect(await page.textContent('[data-charts="gpt"] figure[data-chart="rps"] [data-field="peak"]')).toBe(Math.max(...(gpt?.requestsPerSec ?? [])).toFixed(2));
    const p50 = (gpt?.ttftP50Ms ?? []).filter((v) => v !== null).at(-1) ?? 0;
    expect(await page.textContent('[data-charts="gpt"] figure[data-chart="ttft"] [data-field="latest"]')).toMatch(new RegExp(`^${p50 >= 1000 ? (p50 / 1000).toFixed(1) + ' s' : p50.toFixed(0) + ' ms'} / `));
    expect(await page.getAttribute('[data-charts="gpt"] figure[data-chart="rps"] svg', 'aria-label')).toMatch(/^Requests\/s of gpt over the last 15 minutes/);
    expect(b.navigations()).toBe(loadedOnce);
  });

  it('keeps a screenshot of the charts', async () => {
    await mkdir(dirname(ARTIFACT), { recursive: true });
    await page.evaluate('document.getElementById("charts").scrollIntoView()');
    await page.screenshot({ path: ARTIFACT });
    const png = await readFile(ARTIFACT);
    expect(png.subarray(1, 4).toString('ascii')).toBe('PNG');
    expect(png.readUInt32BE(16)).toBe(VIEWPORT.width);
    expect(png.length).toBeGreaterThan(10_000);
  });

  it('a removed deployment leaves the charts and the JSON', async () => {
    expect((await fetch(`${h.url}/admin/deployments/other`, { method: 'DELETE' })).status).toBe(200);
    expect(Object.keys((await chartsJson()).deployments)).toEqual(['gpt']);
    await until('the charts of other gone', async () => (await page.locator('[data-charts="other"]').count()) === 0);
  });

  it('ran without script errors or CSP violations', () => {
    expect(b.errors).toEqual([]);
  });
});
