// GET /admin/budgets: every budget's current window — spend, what requests in
// flight hold, and the limits — by deployment or API key NAME (never a key).
// Read-only; budgets themselves are set in the config (keys) or per deployment.

import type { FastifyInstance } from 'fastify';
import type { BudgetStatus } from '@inference/actors';
import type { Runtime } from '@inference/runtime';

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
