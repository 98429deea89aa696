import { describe, expect, it } from 'vitest';
import { ERROR_KINDS, ERROR_TABLE, InferenceError, openAIErrorBody, retryAfterSeconds, toInferenceError } from './errors.js';

describe('error taxonomy', () => {
  it('fixes the status of every kind as docs/architecture.md lists it', () => {
    const statuses = Object.fromEntries(ERROR_KINDS.map((k) => [k, ERROR_TABLE[k].status]));
    expect(statuses).toEqual({
      invalid_request: 400, unauthorized: 401, forbidden: 403, budget_exceeded: 429, not_found: 404, rate_limited: 429,
      overloaded: 503, context_length_exceeded: 400, content_filtered: 400, upstream_error: 502,
      upstream_timeout: 504, circuit_open: 503, engine_unavailable: 503, internal: 500,
    });
  });

  it('renders the OpenAI envelope with param and keeps the diagnostic out', () => {
    const e = new InferenceError('invalid_request', 'messages is required', { param: 'messages', diagnostic: 'secret detail' });
    const body = openAIErrorBody(e);
    expect(body).toEqual({ error: { message: 'messages is required', type: 'invalid_request_error', param: 'messages', code: 'invalid_request' } });
    expect(JSON.stringify(body)).not.toContain('secret detail');
  });

  it('turns unknown throwables into internal errors without leaking their text', () => {
    const e = toInferenceError(new TypeError('x is undefined at secret.ts'));
    expect(e.kind).toBe('internal');
    expect(e.message).toBe('internal error');
    expect(e.diagnostic).toContain('secret.ts');
  });

  it('rounds retry-after up to whole seconds', () => {
    expect(retryAfterSeconds(new InferenceError('rate_limited', 'slow down', { retryAfterMs: 1200 }))).toBe(2);
    expect(retryAfterSeconds(new InferenceError('rate_limited', 'slow down', { retryAfterMs: 10 }))).toBe(1);
    expect(retryAfterSeconds(new InferenceError('rate_limited', 'slow down'))).toBeUndefined();
  });

  it('marks retryable kinds', () => {
    expect(ERROR_KINDS.filter((k) => ERROR_TABLE[k].retryable)).toEqual([
      'rate_limited', 'overloaded', 'upstream_error', 'upstream_timeout', 'circuit_open', 'engine_unavailable',
    ]);
  });
});
