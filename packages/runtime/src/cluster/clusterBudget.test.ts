// ClusterBudgetShare over fake counters: each scope expires at the end of its
// budget's window, the other nodes' spend is what the counters add beyond this
// node's own, and this node's memory of its own spend is pruned with the window.
import { describe, expect, it } from 'vitest';
import type { Counters } from '@inference/cluster';
import { ClusterBudgetShare } from './clusterBudget.js';

class FakeCounters implements Counters {
  readonly totals = new Map<string, number>();
  readonly expiry = new Map<string, number>();
  readonly syncIntervalMs = 200;
  add(scope: string, n: number, expiresAt: number): void {
    this.totals.set(scope, (this.totals.get(scope) ?? 0) + n);
    this.expiry.set(scope, expiresAt);
  }
  sum(scope: string): number {
    return this.totals.get(scope) ?? 0;
  }
  flush(): Promise<void> {
    return Promise.resolve();
  }
  sweep(): Promise<number> {
    return Promise.resolve(0);
  }
}

describe('ClusterBudgetShare', () => {
  it("writes scopes that expire with their window and forgets its own spend once the window is over", () => {
    let now = Date.UTC(2026, 0, 1, 10, 0, 0);
    const share = new ClusterBudgetShare((scope, name) => (scope === 'key' && name === 'team' ? '1h' : undefined), () => now);
    const c = new FakeCounters();
    share.attach(c);
    const start = now;
    share.spent('key', 'team', start, { tokens: 10, costUsd: 0.5 });
    expect([...c.expiry.values()]).toEqual([start + 3_600_000, start + 3_600_000]);
    // Another node spent 5 tokens in the same window.
    const tokensScope = [...c.totals.keys()].find((k) => k.endsWith(':tokens')) ?? '';
    c.totals.set(tokensScope, (c.totals.get(tokensScope) ?? 0) + 5);
    expect(share.elsewhere('key', 'team', start).tokens).toBe(5);
    // Windows go by: the own memory holds the live ones only.
    for (let h = 1; h <= 48; h++) {
      now = start + h * 3_600_000;
      share.spent('key', 'team', now, { tokens: 1, costUsd: 0.01 });
    }
    expect(share.ownScopes()).toBeLessThanOrEqual(4);
    // A budget whose window is unknown (its deployment removed) still expires.
    share.spent('deployment', 'gone', now, { tokens: 1, costUsd: 0 });
    expect(Math.max(...c.expiry.values())).toBeLessThanOrEqual(now + 3_600_000);
  });
});
