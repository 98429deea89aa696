// GET /admin/budgets: every budget's current window — spend, what requests in
// flight hold, and the limits — by deployment or API key NAME (never a key).
// POST /admin/budgets/:scope/:name/reset (scope: deployment | key): the budget's
// spend in its current window goes back to zero (budgets/budgetReset.ts), and the
// change is recorded in the audit trail with the spend before.
// Budgets themselves are set in the config, per deployment, or per virtual key.

import type { FastifyInstance } from 'fastify';
import type { BudgetStatus } from '@inference/actors';
import { InferenceError } from '@inference/core';
import type { AuditLog } from '../audit/auditLog.js';
import { adminOf } from '../http/auth.js';
import type { BudgetResets } from './budgetReset.js';
import type { Runtime } from '@inference/runtime';

function spentOf(b: BudgetStatus): { window: string; windowStart: string; tokens: number; costUsd: number } {
  return { window: b.window, windowStart: new Date(b.windowStart).toISOString(), tokens: b.tokens, costUsd: b.costUsd };
}

export function registerBudgetResetRoute(app: FastifyInstance, resets: BudgetResets, audit: AuditLog | undefined): void {
  app.post<{ Params: { scope: string; name: string } }>('/admin/budgets/:scope/:name/reset', async (req) => {
    const { scope, name } = req.params;
    if (scope !== 'deployment' && scope !== 'key') {
      throw new InferenceError('invalid_request', `scope: expected 'deployment' or 'key', got '${scope}'`, { param: 'scope' });
    }
    const was = await resets.reset(scope, name);
    if (was === undefined) throw new InferenceError('not_found', `no budget is configured for ${scope} '${name}'`, { param: 'name' });
    const before = spentOf(was);
    const after = { ...before, tokens: 0, costUsd: 0 };
    await audit?.append({ action: 'budget.reset', target: `${scope}:${name}`, actor: adminOf(req) ?? null, requestId: req.id, before, after });
    return { scope, name, before, after };
  });
}

export function registerBudgetRoutes(app: FastifyInstance, rt: Runtime): void {
  app.get('/admin/budgets', async () => {
    const all = await rt.budget.ask<BudgetStatus[]>((reply) => ({ type: 'spend', reply }));
    return {
      budgets: all.map((b) => ({
        scope: b.scope,
        name: b.name,
        window: b.window,
        windowStart: new Date(b.windowStart).toISOString(),
        windowEnd: new Date(b.windowEnd).toISOString(),
        spent: { tokens: b.tokens, costUsd: b.costUsd },
        reserved: { tokens: b.reservedTokens, costUsd: b.reservedUsd },
        limits: { maxTokens: b.maxTokens ?? null, maxCostUsd: b.maxCostUsd ?? null },
      })),
    };
  });
}
