// Which failures before the first token send a request to the deployment's fallbacks.
import { ERROR_KINDS, InferenceError } from '@inference/core';
import { describe, expect, it } from 'vitest';
import { fallBack } from './requestJob.js';

describe('fallBack', () => {
  it('transient upstream failures fall back whatever the capacity policy; request errors never do', () => {
    for (const kind of ERROR_KINDS) {
      const e = new InferenceError(kind, 'x');
      for (const policy of ['reject', 'queue', 'fallback'] as const) expect(fallBack(e, policy)).toBe(e.retryable);
    }
    expect(fallBack(new InferenceError('circuit_open', 'x'), 'reject')).toBe(true);
    expect(fallBack(new InferenceError('invalid_request', 'x'), 'fallback')).toBe(false);
  });

  it('a local capacity refusal falls back only under onCapacityExhausted: fallback', () => {
    const e = new InferenceError('rate_limited', 'x', { capacity: true });
    expect(fallBack(e, 'fallback')).toBe(true);
    expect(fallBack(e, 'reject')).toBe(false);
    expect(fallBack(e, 'queue')).toBe(false);
  });
});
