// Cluster-wide counters (spend, tokens, requests per window): each node keeps
// its own running total per scope and writes it to `counters/<scope>/<node>`
// every sync interval; every node sums its own exact total and the others'
// last synced totals. A scope names its window (e.g. `spend:team-a:2025-06-01`),
// so a new window is a new scope.
// Bound: a node sees another node's count late by at most the sync interval
// plus the watch delivery delay, so with N nodes each admitting at rate R the
// cluster can overshoot a limit by at most syncInterval x R x (N - 1); while
// the store is unreachable the others' totals freeze and the bound grows with
// the outage (each node still enforces its own share exactly).
// Invariants: totals written are absolute (a repeated write is harmless);
// a node only writes its own entries; a restarted node continues its totals.

import { PREFIX, checkSegment, counterKey } from './keys.js';
import type { KvBackend } from './kv.js';
import type { KvPrefixWatch } from './prefixWatch.js';
import type { Counters } from './types.js';

interface Own {
  total: number;
  synced: number;
}

export class KvCounters implements Counters {
  private readonly own = new Map<string, Own>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly kv: KvBackend,
    private readonly node: string,
    /** A watch of PREFIX.counters, held by the membership. */
    private readonly all: KvPrefixWatch,
    readonly syncIntervalMs: number,
  ) {
    this.timer = setInterval(() => {
      this.flushing = this.flush().catch(() => undefined);
    }, syncIntervalMs);
  }

  add(scope: string, n: number): void {
    if (!Number.isFinite(n)) throw new RangeError(`counter increment must be finite, got ${n}`);
    this.slot(scope).total += n;
  }

  sum(scope: string): number {
    checkSegment('counter scope', scope);
    let total = this.slot(scope).total;
    const head = `${scope}/`;
    for (const [key, entry] of this.all.entries()) {
      if (!key.startsWith(head) || key === head + this.node) continue;
      if (typeof entry.value === 'number') total += entry.value;
    }
    return total;
  }

  async flush(): Promise<void> {
    for (const [scope, own] of this.own) {
      if (own.total === own.synced) continue;
      const total = own.total;
      await this.kv.txn([], [{ type: 'put', key: counterKey(scope, this.node), value: JSON.stringify(total) }]);
      own.synced = total;
    }
  }

  async close(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.flushing;
    await this.flush().catch(() => undefined);
  }

  /** A scope seen for the first time starts from this node's stored total, if any. */
  private slot(scope: string): Own {
    let s = this.own.get(scope);
    if (s === undefined) {
      const stored = this.all.entries().get(counterKey(scope, this.node).slice(PREFIX.counters.length))?.value;
      const base = typeof stored === 'number' ? stored : 0;
      s = { total: base, synced: base };
      this.own.set(scope, s);
    }
    return s;
  }
}
