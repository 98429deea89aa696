// Resetting a budget's spend (POST /admin/budgets/:scope/:name/reset): its
// current window starts again from zero; what requests in flight hold stays held.
// - LocalBudgetResets: this process's BudgetActor (and the spend row in storage);
// - ClusterBudgetResets: a new epoch of the budget in `resets/<d|k>:<name>`
//   (through the manager leader). Every node watches it: on a new epoch it zeroes
//   its own ledger and counts cluster spend under the epoch's counter scopes
//   (cluster/clusterBudget.ts), so the other nodes' old spend no longer counts.
// `before` is the spend the caller's node saw: its own plus the other nodes'.

import type { ActorRef, BudgetMsg, BudgetScope, BudgetStatus } from '@inference/actors';
import type { PrefixWatch } from '@inference/cluster';
import { type ClusterBudgetShare, SHARED_PREFIX, type SharedState, segmentOf } from '@inference/runtime';

export interface BudgetResets {
  /** The budget's status before the reset; undefined when no such budget is configured. */
  reset(scope: BudgetScope, name: string): Promise<BudgetStatus | undefined>;
}

function resetLocal(budget: ActorRef<BudgetMsg>, scope: BudgetScope, name: string): Promise<BudgetStatus | undefined> {
  return budget.ask<BudgetStatus | undefined>((reply) => ({ type: 'reset', scope, name, reply }));
}

export class LocalBudgetResets implements BudgetResets {
  constructor(private readonly budget: ActorRef<BudgetMsg>) {}

  reset(scope: BudgetScope, name: string): Promise<BudgetStatus | undefined> {
    return resetLocal(this.budget, scope, name);
  }
}

function entryKey(scope: BudgetScope, name: string): string {
  return `${scope === 'deployment' ? 'd' : 'k'}:${segmentOf(name)}`;
}

function epochIn(value: unknown): number {
  return typeof value === 'object' && value !== null && 'epoch' in value && typeof value.epoch === 'number' ? value.epoch : 0;
}

export class ClusterBudgetResets implements BudgetResets {
  private readonly watch: PrefixWatch;
  private readonly seen = new Map<string, number>();
  private readonly unsubscribe: () => void;

  constructor(private readonly shared: SharedState, private readonly budget: ActorRef<BudgetMsg>, private readonly share: ClusterBudgetShare) {
    this.watch = shared.watch(SHARED_PREFIX.resets);
    share.epochs((scope, name) => epochIn(this.watch.entries().get(entryKey(scope, name))?.value));
    let first = true;
    this.unsubscribe = this.watch.subscribe((u) => {
      if (u.type === 'stale' || u.type === 'live') return;
      for (const e of this.watch.entries().values()) {
        const epoch = epochIn(e.value);
        const had = this.seen.get(e.key);
        this.seen.set(e.key, epoch);
        // The first snapshot only learns the epochs; a later new epoch zeroes this node's ledger.
        if (first || had === epoch) continue;
        const [s, ...rest] = e.key.split(':');
        void resetLocal(this.budget, s === 'd' ? 'deployment' : 'key', rest.join(':').replaceAll('@', '/')).catch(() => undefined);
      }
      first = false;
    });
  }

  async reset(scope: BudgetScope, name: string): Promise<BudgetStatus | undefined> {
    const key = entryKey(scope, name);
    const before = await resetLocal(this.budget, scope, name);
    if (before === undefined) return undefined;
    const elsewhere = this.share.elsewhere(scope, name, before.windowStart);
    const entry = this.watch.entries().get(key);
    await this.shared.put(SHARED_PREFIX.resets + key, { epoch: epochIn(entry?.value) + 1, at: Date.now() });
    return { ...before, tokens: before.tokens + elsewhere.tokens, costUsd: before.costUsd + elsewhere.costUsd };
  }

  close(): void {
    this.unsubscribe();
  }
}
