// Backoff schedule and retry policy.
import { InferenceError, ERROR_KINDS } from '@inference/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_BACKOFF, backoffDelay, isUpstreamFault, shouldRetry } from './backoff.js';

describe('backoffDelay', () => {
  it('property: full jitter stays in [0, min(cap, base*2^n)] and honours retry-after as a floor', () => {
    const randoms = fc.double({ min: 0, max: 0.999999, noNaN: true });
    const retryAfters = fc.option(fc.integer({ min: 0, max: 100_000 }), { nil: undefined });
    fc.assert(fc.property(fc.integer({ min: 0, max: 40 }), randoms, retryAfters, (n, r, ra) => {
      const d = backoffDelay(n, DEFAULT_BACKOFF, r, ra);
      const ceiling = Math.min(DEFAULT_BACKOFF.capMs, DEFAULT_BACKOFF.baseMs * 2 ** n);
      if (ra === undefined) {
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThan(ceiling);
      } else {
        expect(d).toBeGreaterThanOrEqual(ra);
        expect(d).toBeLessThanOrEqual(Math.max(ra, ceiling));
      }
    }));
  });

  it('grows with the attempt at the top of the jitter range', () => {
    const top = [0, 1, 2, 3, 10].map((n) => backoffDelay(n, { baseMs: 100, capMs: 1000 }, 0.999999));
    expect(top).toEqual([99, 199, 399, 799, 999]);
  });
});

describe('shouldRetry', () => {
  const retryable = new Set(['rate_limited', 'overloaded', 'upstream_error', 'upstream_timeout']);
  it('retries only transient kinds, within budget, before any output', () => {
    for (const kind of ERROR_KINDS) {
      const e = new InferenceError(kind, 'x');
      expect(shouldRetry(e, 0, 2, false)).toBe(retryable.has(kind));
      expect(shouldRetry(e, 0, 2, true)).toBe(false);
      expect(shouldRetry(e, 2, 2, false)).toBe(false);
    }
  });

  it('never retries a local capacity refusal, nor counts it against the upstream', () => {
    const e = new InferenceError('rate_limited', 'x', { capacity: true });
    expect(shouldRetry(e, 0, 2, false)).toBe(false);
    expect(isUpstreamFault(new InferenceError('overloaded', 'x', { capacity: true }))).toBe(false);
    expect(isUpstreamFault(new InferenceError('upstream_timeout', 'x'))).toBe(true);
    expect(isUpstreamFault(new InferenceError('rate_limited', 'x'))).toBe(false);
    expect(isUpstreamFault(new InferenceError('invalid_request', 'x'))).toBe(false);
  });
});
