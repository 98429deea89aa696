// Budgets across the cluster: the BudgetActor of every node reports what it
// settled to per-node counters in etcd (`counters/<scope>/<node>`, synced every
// counterSyncMs) and, before admitting a request, adds what the other nodes
// spent in the same window. One scope per budget, window and amount:
// `budget:<d|k>:<name>:<window start ms>:<tokens|usd>`, so a new window is a new
// scope. Overspend bound: a node sees the others' spend late by at most the sync
// interval plus the watch delay, so N nodes each admitting R per second overshoot
// a limit by at most counterSyncMs x R x (N - 1) (docs/cluster.md).
// Before the node has joined (counters unset) budgets are enforced locally only.

import type { Amount, BudgetScope, BudgetShare } from '@inference/actors';
import type { Counters } from '@inference/cluster';
import { segmentOf } from './clusterKeys.js';

function scopeOf(scope: BudgetScope, name: string, windowStart: number, what: 'tokens' | 'usd'): string {
  return `budget:${scope === 'deployment' ? 'd' : 'k'}:${segmentOf(name)}:${String(windowStart)}:${what}`;
}

export class ClusterBudgetShare implements BudgetShare {
  private counters: Counters | undefined;
  /** What this node added per scope, so `sum - own` is the other nodes' part. */
  private readonly own = new Map<string, number>();

  attach(counters: Counters): void {
    this.counters = counters;
  }

  elsewhere(scope: BudgetScope, name: string, windowStart: number): Amount {
    const c = this.counters;
    if (c === undefined) return { tokens: 0, costUsd: 0 };
    const t = scopeOf(scope, name, windowStart, 'tokens');
    const u = scopeOf(scope, name, windowStart, 'usd');
    return {
      tokens: Math.max(0, c.sum(t) - (this.own.get(t) ?? 0)),
      costUsd: Math.max(0, c.sum(u) - (this.own.get(u) ?? 0)),
    };
  }

  spent(scope: BudgetScope, name: string, windowStart: number, amount: Amount): void {
    const c = this.counters;
    if (c === undefined) return;
    for (const [what, n] of [['tokens', amount.tokens], ['usd', amount.costUsd]] as const) {
      if (n === 0) continue;
      const key = scopeOf(scope, name, windowStart, what);
      c.add(key, n);
      this.own.set(key, (this.own.get(key) ?? 0) + n);
    }
  }
}
