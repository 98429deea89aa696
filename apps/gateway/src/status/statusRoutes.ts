// The status page: GET / serves one self-contained HTML page (statusPage.html,
// inline CSS and JS, no external requests) and GET /admin/status the JSON it polls.
// The page holds no data itself, so it is public; the JSON is under /admin and so
// behind admin auth when that is configured (the page sends a Bearer key), as is
// GET /admin/status/charts (the last 15 minutes per deployment, for the charts). The
// page's inline script and style are pinned by hash in its Content-Security-Policy.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { MetricsSummary, SpendRecord, TimelineSnapshot } from '@inference/actors';
import type { Runtime } from '@inference/runtime';
import { type BudgetLimits, buildStatus } from './statusModel.js';
import type { AuditLog } from '../audit/auditLog.js';

export interface StatusPage {
  readonly html: string;
  readonly csp: string;
}

function inlineHashes(html: string, tag: 'script' | 'style'): string[] {
  const re = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, 'g');
  return [...html.matchAll(re)].map((m) => `'sha256-${createHash('sha256').update(m[1] ?? '').digest('base64')}'`);
}

/** Reads the page next to this module (src/ in tests, dist/ when built) and pins its inline code. */
export function loadStatusPage(): StatusPage {
  const html = readFileSync(new URL('./statusPage.html', import.meta.url), 'utf8');
  const csp = [
    "default-src 'none'",
    `script-src ${inlineHashes(html, 'script').join(' ')}`,
    `style-src ${inlineHashes(html, 'style').join(' ')}`,
    "connect-src 'self'",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  return { html, csp };
}

/** How many of the latest admin changes the status view carries. */
export const STATUS_AUDIT_RECORDS = 5;

/** The latest admin changes as the page lists them: who, what, when; the values before and after stay in /admin/audit. */
async function latestChanges(
  audit: AuditLog | undefined,
): Promise<{ at: string; actor: string | null; action: string; target: string; node: string | null }[]> {
  if (audit === undefined) return [];
  return (await audit.page(undefined, STATUS_AUDIT_RECORDS)).map((r) => ({ at: r.at, actor: r.actor, action: r.action, target: r.target, node: r.node }));
}

export function registerStatusRoutes(app: FastifyInstance, rt: Runtime, audit?: AuditLog): void {
  const page = loadStatusPage();
  // Live: virtual keys' budgets come and go at run time.
  const keyBudgets: ReadonlyMap<string, BudgetLimits> = rt.keyBudgets;
  app.get('/', (_req, reply) => reply
    .header('content-security-policy', page.csp)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('cache-control', 'no-store')
    .type('text/html; charset=utf-8')
    .send(page.html));
  app.get('/admin/status', async (_req, reply) => {
    const [list, summary, spend, changes] = await Promise.all([
      rt.list(),
      rt.metrics.ask<MetricsSummary>((r) => ({ type: 'summary', reply: r })),
      rt.budget.ask<SpendRecord[]>((r) => ({ type: 'spend', reply: r })),
      latestChanges(audit),
    ]);
    return reply.header('cache-control', 'no-store').send({ ...buildStatus(list, summary, { now: Date.now(), spend, keys: keyBudgets }), audit: changes });
  });
  // The charts: 15 minutes per deployment in 5-second buckets (timeline.ts); removed deployments are dropped.
  app.get('/admin/status/charts', async (_req, reply) => {
    const live = (await rt.list()).map((d) => d.spec.name);
    const charts = await rt.metrics.ask<TimelineSnapshot>((r) => ({ type: 'timeline', live, reply: r }));
    return reply.header('cache-control', 'no-store').send(charts);
  });
}
