// The wire-error classification table for OpenAI and Anthropic bodies.
import { describe, expect, it } from 'vitest';
import { classifyStatus, classifyTransport, retryAfterMs } from './upstreamErrors.js';

const anthropic = (type: string, message = 'm'): unknown => ({ type: 'error', error: { type, message } });
const openai = (type: string, code: string | null, message = 'm', param: string | null = null): unknown => ({ error: { message, type, param, code } });

describe('classifyStatus', () => {
  it.each([
    [529, 'overloaded_error', 'overloaded'],
    [429, 'rate_limit_error', 'rate_limited'],
    [401, 'authentication_error', 'unauthorized'],
    [403, 'permission_error', 'unauthorized'],
    [400, 'invalid_request_error', 'invalid_request'],
    [404, 'not_found_error', 'not_found'],
    [413, 'request_too_large', 'invalid_request'],
    [500, 'api_error', 'upstream_error'],
    [503, 'api_error', 'upstream_error'],
    [504, 'timeout_error', 'upstream_timeout'],
  ] as const)('anthropic %i %s -> %s', (status, type, kind) => {
    expect(classifyStatus(status, anthropic(type), {}, 'anthropic').kind).toBe(kind);
  });

  it('anthropic: a long prompt is context_length_exceeded, 529 without a body is overloaded', () => {
    expect(classifyStatus(400, anthropic('invalid_request_error', 'prompt is too long: 210000 tokens > 200000 maximum'), {}, 'anthropic').kind).toBe(
      'context_length_exceeded',
    );
    expect(classifyStatus(529, undefined, {}, 'anthropic').kind).toBe('overloaded');
  });

  it.each([
    [400, 'invalid_request_error', 'context_length_exceeded', 'context_length_exceeded'],
    [400, 'invalid_request_error', 'content_filter', 'content_filtered'],
    [429, 'insufficient_quota', 'insufficient_quota', 'budget_exceeded'],
    [429, 'requests', 'rate_limit_exceeded', 'rate_limited'],
    [401, 'invalid_request_error', 'invalid_api_key', 'unauthorized'],
    [503, 'server_error', null, 'upstream_error'],
    [500, 'server_error', null, 'upstream_error'],
    [502, 'server_error', null, 'upstream_error'],
    [529, 'server_error', 'overloaded', 'overloaded'],
  ] as const)('openai %i %s/%s -> %s', (status, type, code, kind) => {
    expect(classifyStatus(status, openai(type, code), {}, 'openai').kind).toBe(kind);
  });

  it('keeps the upstream message as the diagnostic and shows it only for request errors', () => {
    const auth = classifyStatus(401, openai('invalid_request_error', 'invalid_api_key', 'Incorrect API key provided: sk-abc***'), {}, 'openai');
    expect(auth.message).not.toContain('sk-abc');
    expect(auth.diagnostic).toContain('Incorrect API key');
    const bad = classifyStatus(400, openai('invalid_request_error', null, 'temperature must be <= 2'), {}, 'openai');
    expect(bad.kind).toBe('invalid_request');
    expect(bad.message).toBe('temperature must be <= 2');
    const server = classifyStatus(500, anthropic('api_error', 'secret internals'), {}, 'anthropic');
    expect(server.message).not.toContain('secret internals');
    expect(server.diagnostic).toContain('secret internals');
  });

  it('a client-error body on a 5xx does not turn a server failure into a non-retryable one', () => {
    const e = classifyStatus(500, openai('invalid_request_error', 'context_length_exceeded'), {}, 'openai');
    expect(e.kind).toBe('upstream_error');
    expect(e.retryable).toBe(true);
  });

  it('an upstream 503 is upstream_error (502 to our clients), still retryable and with its retry-after', () => {
    for (const [body, provider] of [[openai('server_error', null), 'openai'], [anthropic('api_error'), 'anthropic'], [undefined, 'openai']] as const) {
      const e = classifyStatus(503, body, { 'retry-after': '2' }, provider);
      expect(e.kind).toBe('upstream_error');
      expect(e.status).toBe(502);
      expect(e.retryable).toBe(true);
      expect(e.retryAfterMs).toBe(2000);
      expect(e.message).toContain('status 503');
    }
    // An upstream that says it is overloaded in so many words stays overloaded.
    expect(classifyStatus(503, anthropic('overloaded_error'), {}, 'anthropic').kind).toBe('overloaded');
    expect(classifyStatus(529, undefined, {}, 'openai').kind).toBe('overloaded');
  });

  it('a request error keeps the field the upstream blames as its param', () => {
    const o = classifyStatus(400, openai('invalid_request_error', null, 'temperature must be <= 2', 'temperature'), {}, 'openai');
    expect(o).toMatchObject({ kind: 'invalid_request', param: 'temperature', message: 'temperature must be <= 2' });
    const ctx = classifyStatus(400, openai('invalid_request_error', 'context_length_exceeded', 'too long', 'messages'), {}, 'openai');
    expect(ctx).toMatchObject({ kind: 'context_length_exceeded', param: 'messages' });
    expect(classifyStatus(400, openai('invalid_request_error', null, 'bad'), {}, 'openai').param).toBeNull();
    // Anthropic names the field at the head of its message.
    const a = classifyStatus(400, anthropic('invalid_request_error', 'messages.0.content: Field required'), {}, 'anthropic');
    expect(a).toMatchObject({ kind: 'invalid_request', param: 'messages.0.content' });
    expect(classifyStatus(400, anthropic('invalid_request_error', 'max_tokens: Field required'), {}, 'anthropic').param).toBe('max_tokens');
    expect(classifyStatus(400, anthropic('invalid_request_error', 'prompt is too long: 210000 tokens'), {}, 'anthropic').param).toBeNull();
    expect(classifyStatus(400, anthropic('invalid_request_error', 'Error: something'), {}, 'anthropic').param).toBeNull();
    // Not a request error: no param, whatever the body says.
    expect(classifyStatus(500, openai('server_error', null, 'x', 'temperature'), {}, 'openai').param).toBeNull();
    expect(classifyStatus(401, openai('invalid_request_error', 'invalid_api_key', 'x', 'api_key'), {}, 'openai').param).toBeNull();
    // A param that is no field name is dropped.
    expect(classifyStatus(400, openai('invalid_request_error', null, 'x', 'p'.repeat(201)), {}, 'openai').param).toBeNull();
  });

  it('carries retry-after-ms before retry-after', () => {
    expect(classifyStatus(429, undefined, { 'retry-after-ms': '250', 'retry-after': '9' }, 'openai').retryAfterMs).toBe(250);
    expect(classifyStatus(429, undefined, { 'retry-after': '2' }, 'anthropic').retryAfterMs).toBe(2000);
    expect(classifyStatus(429, undefined, {}, 'openai').retryAfterMs).toBeUndefined();
  });
});

describe('retryAfterMs', () => {
  it('reads HTTP dates and ignores garbage', () => {
    expect(retryAfterMs({ 'retry-after': new Date(10_000).toUTCString() }, 5_000)).toBe(5_000);
    expect(retryAfterMs({ 'retry-after': 'soon' })).toBeUndefined();
    expect(retryAfterMs({ 'retry-after-ms': '' , 'retry-after': '1' })).toBe(1000);
  });
});

describe('classifyTransport', () => {
  it('maps undici timeouts to upstream_timeout and other failures to upstream_error', () => {
    const err = (code: string): Error => Object.assign(new Error('x'), { code });
    expect(classifyTransport(err('UND_ERR_CONNECT_TIMEOUT'), 'connect').kind).toBe('upstream_timeout');
    expect(classifyTransport(err('UND_ERR_HEADERS_TIMEOUT'), 'headers').kind).toBe('upstream_timeout');
    expect(classifyTransport(err('UND_ERR_BODY_TIMEOUT'), 'body').kind).toBe('upstream_timeout');
    expect(classifyTransport(err('ECONNREFUSED'), 'connect').kind).toBe('upstream_error');
  });
});
