import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BUCKETS, BUCKET_MS, MAX_DEPLOYMENTS, TTFT_BOUNDS, Timeline, ttftBin } from './timeline.js';

const T0 = 1_700_000_000_000 - (1_700_000_000_000 % BUCKET_MS);

describe('Timeline', () => {
  it('counts into 5-second buckets and reports per-second rates, oldest first, ending at the current bucket', () => {
    const t = new Timeline();
    t.add(T0, 'a', { requests: 1, tokensIn: 10, tokensOut: 5, ttftMs: 20 });
    t.add(T0 + 4999, 'a', { requests: 1, errors: 1 });
    t.add(T0 + BUCKET_MS, 'a', { requests: 1, tokensOut: 50 });
    const s = t.series(T0 + BUCKET_MS + 1, 'a');
    if (s === undefined) throw new Error('no series');
    expect(s.requestsPerSec).toHaveLength(BUCKETS);
    expect(s.start).toBe(T0 + BUCKET_MS - (BUCKETS - 1) * BUCKET_MS);
    expect(s.requestsPerSec.slice(-2)).toEqual([2 / 5, 1 / 5]);
    expect(s.tokensPerSec.slice(-2)).toEqual([15 / 5, 50 / 5]);
    expect(s.errorsPerSec.slice(-2)).toEqual([1 / 5, 0]);
    expect(s.ttftP50Ms.slice(-2)).toEqual([TTFT_BOUNDS[ttftBin(20)], null]);
    expect(s.requestsPerSec.slice(0, -2).every((v) => v === 0)).toBe(true);
  });

  it('TTFT percentiles: p50 and p99 from the bucket histogram, within one bin (a factor of √2)', () => {
    const t = new Timeline();
    for (let i = 1; i <= 100; i++) t.add(T0, 'a', { requests: 1, ttftMs: i * 10 });
    const s = t.series(T0, 'a');
    const p50 = s?.ttftP50Ms.at(-1) ?? 0;
    const p99 = s?.ttftP99Ms.at(-1) ?? 0;
    expect(p50).toBeGreaterThanOrEqual(500);
    expect(p50).toBeLessThanOrEqual(500 * Math.SQRT2);
    expect(p99).toBeGreaterThanOrEqual(990);
    expect(p99).toBeLessThanOrEqual(990 * Math.SQRT2);
    // A first token past the last bound lands in the overflow bin and reports the largest bound.
    t.add(T0 + BUCKET_MS, 'a', { ttftMs: 1e9 });
    expect(t.series(T0 + BUCKET_MS, 'a')?.ttftP99Ms.at(-1)).toBe(TTFT_BOUNDS.at(-1));
  });

  it('forgets what is older than 15 minutes: a reused slot starts from zero', () => {
    const t = new Timeline();
    t.add(T0, 'a', { requests: 7, ttftMs: 5 });
    const later = T0 + BUCKETS * BUCKET_MS; // the same slot, one lap later
    expect(t.series(later, 'a')?.requestsPerSec.every((v) => v === 0)).toBe(true);
    t.add(later, 'a', { requests: 1 });
    const s = t.series(later, 'a');
    expect(s?.requestsPerSec.at(-1)).toBe(1 / 5);
    expect(s?.ttftP50Ms.at(-1)).toBeNull();
    expect(s?.requestsPerSec.reduce((a, b) => a + b, 0)).toBe(1 / 5);
  });

  it('a removed deployment is gone; retain keeps only the live ones', () => {
    const t = new Timeline();
    t.add(T0, 'a', { requests: 1 });
    t.add(T0, 'b', { requests: 1 });
    t.add(T0, 'c', { requests: 1 });
    t.remove('a');
    expect(t.series(T0, 'a')).toBeUndefined();
    t.retain(new Set(['c']));
    expect(t.deployments()).toEqual(['c']);
  });

  it('bounded: at most MAX_DEPLOYMENTS rings, the least recently updated is evicted', () => {
    const t = new Timeline();
    for (let i = 0; i < MAX_DEPLOYMENTS; i++) t.add(T0 + i, `d${i}`, { requests: 1 });
    t.add(T0 + MAX_DEPLOYMENTS, 'd0', { requests: 1 });
    t.add(T0 + MAX_DEPLOYMENTS + 1, 'new', { requests: 1 });
    expect(t.size).toBe(MAX_DEPLOYMENTS);
    expect(t.series(T0, 'd1')).toBeUndefined();
    expect(t.series(T0, 'd0')).toBeDefined();
  });

  it('property: the series always has BUCKETS points, and sums to what was added in the window', () => {
    fc.assert(fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 2 * BUCKETS * BUCKET_MS }), fc.integer({ min: 0, max: 5 })), { maxLength: 200 }), (events) => {
      const t = new Timeline();
      const sorted = [...events].sort((x, y) => x[0] - y[0]);
      for (const [at, n] of sorted) t.add(T0 + at, 'a', { requests: n });
      const now = T0 + (sorted.at(-1)?.[0] ?? 0);
      const s = t.series(now, 'a');
      if (sorted.length === 0) return s === undefined;
      const firstIndex = Math.floor(now / BUCKET_MS) - BUCKETS + 1;
      const inWindow = sorted.filter(([at]) => Math.floor((T0 + at) / BUCKET_MS) >= firstIndex).reduce((a, [, n]) => a + n, 0);
      const sum = (s?.requestsPerSec ?? []).reduce((a, v) => a + v * (BUCKET_MS / 1000), 0);
      return s?.requestsPerSec.length === BUCKETS && Math.abs(sum - inWindow) < 1e-9;
    }));
  });

  it('ttftBin: the first bound at or above the value', () => {
    expect(ttftBin(0)).toBe(0);
    expect(ttftBin(1)).toBe(0);
    expect(ttftBin(1.2)).toBe(1);
    expect(ttftBin(Infinity)).toBe(TTFT_BOUNDS.length);
  });
});
