// The sliding-window limiter, with explicit time.

import { describe, expect, it } from 'vitest';
import { SlidingWindowLimiter } from './rateLimiter.js';

describe('SlidingWindowLimiter', () => {
  it('admits `limit` requests per window and says how long until the next slot', () => {
    const limiter = new SlidingWindowLimiter(3, 1000);
    expect([limiter.tryAcquire(0), limiter.tryAcquire(100), limiter.tryAcquire(200)]).toEqual([0, 0, 0]);
    expect(limiter.tryAcquire(300)).toBe(700);
    expect(limiter.tryAcquire(999)).toBe(1);
    expect(limiter.tryAcquire(1000)).toBe(0);
    expect(limiter.tryAcquire(1050)).toBe(50);
    expect(limiter.tryAcquire(1100)).toBe(0);
  });

  it('never admits more than `limit` in any window (sweep of arrival patterns)', () => {
    for (let seed = 1; seed <= 50; seed++) {
      const limit = 1 + (seed % 7);
      const windowMs = 100 + seed * 10;
      const limiter = new SlidingWindowLimiter(limit, windowMs);
      const admitted: number[] = [];
      let now = 0;
      let state = seed;
      for (let i = 0; i < 500; i++) {
        state = (state * 1103515245 + 12345) % 2147483648;
        now += state % 40;
        if (limiter.tryAcquire(now) === 0) admitted.push(now);
      }
      for (let i = limit; i < admitted.length; i++) {
        expect((admitted[i] ?? 0) - (admitted[i - limit] ?? 0)).toBeGreaterThanOrEqual(windowMs);
      }
    }
  });

  it('rejects nonsense limits', () => {
    expect(() => new SlidingWindowLimiter(0)).toThrow(RangeError);
    expect(() => new SlidingWindowLimiter(1.5)).toThrow(RangeError);
    expect(() => new SlidingWindowLimiter(1, 0)).toThrow(RangeError);
  });
});
