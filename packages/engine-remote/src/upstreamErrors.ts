// Turns upstream failures (HTTP statuses with provider error bodies, transport
// errors, timeouts) into the taxonomy. The upstream's own message is kept as the
// diagnostic; clients see a safe message, plus the upstream's text only for
// request errors, which are about their own input.

import { type ErrorKind, InferenceError } from '@inference/core';

const MAX_MESSAGE = 500;

interface UpstreamErrorBody {
  message?: string;
  type?: string;
  code?: string;
}

function bodyError(body: unknown): UpstreamErrorBody {
  if (typeof body !== 'object' || body === null) return {};
  const e = (body as Record<string, unknown>).error;
  if (typeof e !== 'object' || e === null) return {};
  const o = e as Record<string, unknown>;
  const out: UpstreamErrorBody = {};
  if (typeof o.message === 'string') out.message = o.message.slice(0, MAX_MESSAGE);
  if (typeof o.type === 'string') out.type = o.type;
  if (typeof o.code === 'string') out.code = o.code;
  return out;
}

/** Milliseconds from retry-after-ms / retry-after (seconds or HTTP date). */
export function retryAfterMs(headers: Record<string, string | string[] | undefined>, now = Date.now()): number | undefined {
  const first = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);
  const ms = first(headers['retry-after-ms']);
  if (ms !== undefined && Number.isFinite(Number(ms)) && Number(ms) >= 0) return Number(ms);
  const ra = first(headers['retry-after']);
  if (ra === undefined) return undefined;
  if (/^\d+(\.\d+)?$/.test(ra.trim())) return Number(ra) * 1000;
  const date = Date.parse(ra);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

export function classifyStatus(status: number, body: unknown, headers: Record<string, string | string[] | undefined>, provider: string): InferenceError {
  const e = bodyError(body);
  const diagnostic = `${provider} upstream ${status}: ${e.type ?? ''} ${e.code ?? ''} ${e.message ?? ''}`.trim();
  const opts = { diagnostic, retryAfterMs: retryAfterMs(headers) };
  let kind: ErrorKind;
  let message: string;
  if (status === 400 || status === 413 || status === 422) {
    if (e.code === 'context_length_exceeded' || /context.length|too many tokens|prompt is too long/i.test(e.message ?? '')) kind = 'context_length_exceeded';
    else if (e.code === 'content_filter' || e.code === 'content_policy_violation') kind = 'content_filtered';
    else kind = 'invalid_request';
    message = e.message ?? 'the upstream rejected the request';
  } else if (status === 401 || status === 403) {
    kind = 'unauthorized';
    message = 'the upstream provider rejected our credentials';
  } else if (status === 429) {
    kind = 'rate_limited';
    message = 'the upstream provider is rate limiting requests, try again later';
  } else if (status === 503 || status === 529) {
    kind = 'overloaded';
    message = 'the upstream provider is overloaded, try again later';
  } else if (status === 408 || status === 504) {
    kind = 'upstream_timeout';
    message = 'the upstream provider timed out';
  } else {
    kind = 'upstream_error';
    message = `the upstream provider returned an error (status ${status})`;
  }
  return new InferenceError(kind, message, opts);
}

/** undici / network failures by their error code, never by message text. */
export function classifyTransport(e: unknown, phase: 'connect' | 'headers' | 'body'): InferenceError {
  if (e instanceof InferenceError) return e;
  const code = typeof e === 'object' && e !== null && 'code' in e ? String((e).code) : '';
  const diagnostic = e instanceof Error ? `${code} ${e.message}` : String(e);
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
      return new InferenceError('upstream_timeout', 'timed out connecting to the upstream provider', { diagnostic, cause: e });
    case 'UND_ERR_HEADERS_TIMEOUT':
      return new InferenceError('upstream_timeout', 'the upstream provider did not answer in time', { diagnostic, cause: e });
    case 'UND_ERR_BODY_TIMEOUT':
      return new InferenceError('upstream_timeout', 'the upstream provider stopped sending', { diagnostic, cause: e });
    default:
      return new InferenceError('upstream_error', phase === 'body' ? 'the upstream connection broke mid-response' : 'could not reach the upstream provider', { diagnostic, cause: e });
  }
}
