// ClusterRateShare over fake counters: the other nodes' admissions in the sliding
// minute, this node's own never counted twice, and nothing before joining.
import { describe, expect, it } from 'vitest';
import type { Counters } from '@inference/cluster';
import { ClusterRateShare } from './clusterRate.js';

/** Counters of one node in a cluster whose other nodes' totals are set by the test. */
class FakeCounters implements Counters {
  readonly own = new Map<string, number>();
  readonly others = new Map<string, number>();
  readonly expiry = new Map<string, number>();
  readonly syncIntervalMs = 200;
  add(scope: string, n: number, expiresAt: number): void {
    this.own.set(scope, (this.own.get(scope) ?? 0) + n);
    this.expiry.set(scope, expiresAt);
  }
  sweep(): Promise<number> {
    return Promise.resolve(0);
  }
  sum(scope: string): number {
    return (this.own.get(scope) ?? 0) + (this.others.get(scope) ?? 0);
  }
  flush(): Promise<void> {
    return Promise.resolve();
  }
  /** Sets the others' count for the bucket of `key` that holds `at`, whatever the scope's name. */
  setOthers(prefixOf: (bucket: number) => string, at: number, n: number, windowMs = 60_000): void {
    this.others.set(prefixOf(Math.floor(at / windowMs) * windowMs), n);
  }
}

describe('ClusterRateShare', () => {
  it('counts nothing before the node has joined', () => {
    const share = new ClusterRateShare();
    share.admitted('k', 1_000, 60_000);
    expect(share.elsewhere('k', 1_000, 60_000)).toBe(0);
  });

  it("adds the other nodes' current bucket and the part of the previous one still in the window, never its own", () => {
    const share = new ClusterRateShare();
    const c = new FakeCounters();
    share.attach(c);
    const t = 10 * 60_000 + 15_000; // 15 s into a bucket
    share.admitted('k', t, 60_000);
    share.admitted('k', t, 60_000);
    const [scope] = [...c.own.keys()];
    if (scope === undefined) throw new Error('no scope written');
    const base = scope.slice(0, scope.lastIndexOf(':') + 1);
    // The bucket's scope expires once it can no longer be the previous bucket: two minutes after its start.
    expect(c.expiry.get(scope)).toBe(12 * 60_000);
    // Own admissions only: nothing elsewhere.
    expect(share.elsewhere('k', t, 60_000)).toBe(0);
    c.setOthers((b) => `${base}${String(b)}`, t, 5);
    c.setOthers((b) => `${base}${String(b)}`, t - 60_000, 8);
    // 5 now + 8 x (45 s of the previous bucket still inside the minute) / 60 s = 5 + 6.
    expect(share.elsewhere('k', t, 60_000)).toBe(11);
    // Another limiter key is another scope.
    expect(share.elsewhere('other', t, 60_000)).toBe(0);
  });

  it('counts in windows of the limiter\'s own length (remote.rateWindowMs): 1 s buckets that expire 2 s after their start', () => {
    const share = new ClusterRateShare();
    const c = new FakeCounters();
    share.attach(c);
    const t = 5_000_000 + 250; // 250 ms into a 1 s bucket
    share.admitted('k', t, 1_000);
    const [scope] = [...c.own.keys()];
    if (scope === undefined) throw new Error('no scope written');
    expect(scope.endsWith(':5000000')).toBe(true);
    expect(c.expiry.get(scope)).toBe(5_002_000);
    const base = scope.slice(0, scope.lastIndexOf(':') + 1);
    c.setOthers((b) => `${base}${String(b)}`, t, 3, 1_000);
    c.setOthers((b) => `${base}${String(b)}`, t - 1_000, 4, 1_000);
    // 3 now + 4 x (750 ms of the previous second still inside the window) / 1 s = 3 + 3.
    expect(share.elsewhere('k', t, 1_000)).toBe(6);
    // Two windows later neither bucket is in the window any more.
    expect(share.elsewhere('k', t + 2_000, 1_000)).toBe(0);
  });

  it('forgets limiter keys and own counts once their windows are over (memory bounded by the keys in use)', () => {
    const share = new ClusterRateShare();
    share.attach(new FakeCounters());
    const t = 7_000_000;
    for (let i = 0; i < 100; i++) share.admitted(`key-${String(i)}`, t + i, 1_000);
    share.elsewhere('read-only', t, 1_000);
    expect(share.sizes()).toEqual({ keys: 101, scopes: 100 });
    // Still inside the second window: everything is kept.
    share.admitted('key-0', t + 1_500, 1_000);
    expect(share.sizes()).toEqual({ keys: 101, scopes: 101 });
    // Two windows after their bucket the others go; key-0 keeps its two live buckets.
    share.admitted('key-0', t + 2_500, 1_000);
    expect(share.sizes()).toEqual({ keys: 1, scopes: 2 });
    share.admitted('new', t + 6_000, 1_000);
    expect(share.sizes()).toEqual({ keys: 1, scopes: 1 });
  });
});
