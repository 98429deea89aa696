// Headless Chromium for the status-page tests: Debian's chromium (installed by
// scripts/setup.sh) driven through playwright-core, plus a DOM poll helper. A
// missing browser is a failure that says how to install it, never a skip.

import { existsSync } from 'node:fs';
import { type Browser, type Page, chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const VIEWPORT = { width: 1280, height: 900 };
/** Generous: the machine may be busy with other builds; the page polls every second. */
export const WAIT_MS = 30_000;

export interface BrowserPage {
  readonly browser: Browser;
  readonly page: Page;
  /** Console errors, page errors and CSP violations seen so far. */
  readonly errors: string[];
  /** Main-frame navigations so far (a live update must not add one). */
  navigations(): number;
}

export async function openBrowser(): Promise<BrowserPage> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}: run scripts/setup.sh (it installs Debian's chromium), or set CHROMIUM_PATH`);
  }
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  const page = await browser.newPage({ viewport: VIEWPORT, deviceScaleFactor: 1, colorScheme: 'light' });
  const errors: string[] = [];
  let navigations = 0;
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('framenavigated', (f) => {
    if (f === page.mainFrame()) navigations++;
  });
  return { browser, page, errors, navigations: () => navigations };
}

/** Polls until `check` holds; fails naming what it waited for. */
export async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`status page never showed: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
