// Budgets across the cluster: the BudgetActor of every node reports what it
// settled to per-node counters in etcd (`counters/<scope>/<node>`, synced every
// counterSyncMs) and, before admitting a request, adds what the other nodes
// spent in the same window. One scope per budget, window and amount:
// `budget:<d|k>:<name>:<window start ms>:<tokens|usd>`, so a new window is a new
// scope. Overspend bound: a node sees the others' spend late by at most the sync
// interval plus the watch delay, so N nodes each admitting R per second overshoot
// a limit by at most counterSyncMs x R x (N - 1) (docs/cluster.md).
// Before the node has joined (counters unset) budgets are enforced locally only.
// Each scope expires at the end of its window (windowBounds of the budget's
// window), so its entries leave etcd and this node's memory with it.

import { type Amount, type BudgetScope, type BudgetShare, parseWindow, windowBounds } from '@inference/actors';
import type { Counters } from '@inference/cluster';
import { segmentOf } from './clusterKeys.js';

function scopeOf(scope: BudgetScope, name: string, windowStart: number, what: 'tokens' | 'usd'): string {
  return `budget:${scope === 'deployment' ? 'd' : 'k'}:${segmentOf(name)}:${String(windowStart)}:${what}`;
}

/** A budget whose window is no longer known (its deployment or key is gone) keeps counting this long. */
const UNKNOWN_WINDOW_MS = 3_600_000;
/** How often expired `own` entries are dropped. */
const PRUNE_EVERY_MS = 10_000;

export class ClusterBudgetShare implements BudgetShare {
  private counters: Counters | undefined;
  /** What this node added per scope, so `sum - own` is the other nodes' part; pruned when the window ends. */
  private readonly own = new Map<string, { n: number; expiresAt: number }>();
  private nextPrune = 0;

  constructor(
    /** The window text of a budget (`1h`, `day`...), undefined when it no longer exists. */
    private readonly windowOf: (scope: BudgetScope, name: string) => string | undefined = () => undefined,
    private readonly now: () => number = Date.now,
  ) {}

  /** Scopes this node remembers (bounded by the budgets' live windows). */
  ownScopes(): number {
    return this.own.size;
  }

  private expiry(scope: BudgetScope, name: string, windowStart: number): number {
    const text = this.windowOf(scope, name);
    if (text === undefined) return this.now() + UNKNOWN_WINDOW_MS;
    return windowBounds(parseWindow(text), windowStart).end;
  }

  attach(counters: Counters): void {
    this.counters = counters;
  }

  elsewhere(scope: BudgetScope, name: string, windowStart: number): Amount {
    const c = this.counters;
    if (c === undefined) return { tokens: 0, costUsd: 0 };
    const t = scopeOf(scope, name, windowStart, 'tokens');
    const u = scopeOf(scope, name, windowStart, 'usd');
    return {
      tokens: Math.max(0, c.sum(t) - (this.own.get(t)?.n ?? 0)),
      costUsd: Math.max(0, c.sum(u) - (this.own.get(u)?.n ?? 0)),
    };
  }

  spent(scope: BudgetScope, name: string, windowStart: number, amount: Amount): void {
    const c = this.counters;
    if (c === undefined) return;
    const now = this.now();
    const expiresAt = this.expiry(scope, name, windowStart);
    for (const [what, n] of [['tokens', amount.tokens], ['usd', amount.costUsd]] as const) {
      if (n === 0) continue;
      const key = scopeOf(scope, name, windowStart, what);
      c.add(key, n, expiresAt);
      const prev = this.own.get(key);
      this.own.set(key, { n: (prev?.n ?? 0) + n, expiresAt: prev?.expiresAt ?? expiresAt });
    }
    if (now >= this.nextPrune) {
      this.nextPrune = now + PRUNE_EVERY_MS;
      for (const [k, v] of this.own) if (v.expiresAt <= now) this.own.delete(k);
    }
  }
}
