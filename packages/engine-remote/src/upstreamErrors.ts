// Turns upstream failures (HTTP statuses with provider error bodies, transport
// errors, timeouts) into the taxonomy. The classification is a table: the error
// body's own type/code decides first (OpenAI `{error:{type,code,message}}`,
// Anthropic `{type:'error', error:{type,message}}`), the HTTP status second. The
// upstream's own message is kept as the diagnostic; clients see a safe message,
// plus the upstream's text and the field at fault (`param`) only for request
// errors, which are about their input.
//
// A bare 503 is `upstream_error` (502 to our client), not `overloaded`: in the
// taxonomy `overloaded` is this runtime refusing work for lack of its own
// capacity (docs/flow-control.md), while an upstream 503 says only that the
// upstream failed. Both kinds are retried, fall back and count toward the breaker
// alike (reliability/backoff.ts, RequestRun), so only the reported kind
// differs. An upstream that says it is overloaded in so many words (529,
// Anthropic `overloaded_error`, OpenAI code `overloaded`) stays `overloaded`.

import { type ErrorKind, InferenceError } from '@inference/core';

const MAX_MESSAGE = 500;
/** An upstream `param` longer than this is not a field name; it is dropped. */
const MAX_PARAM = 200;

/** Wire dialects whose error bodies we understand. Other names classify by status alone. */
export type UpstreamDialect = 'openai' | 'anthropic';

interface UpstreamErrorBody {
  message?: string;
  type?: string;
  code?: string;
  param?: string;
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
  if (typeof o.param === 'string' && o.param !== '' && o.param.length <= MAX_PARAM) out.param = o.param;
  return out;
}

// Anthropic names the field at fault at the head of its message (`max_tokens: Field required`,
// `messages.0.content: ...`) rather than in a field of its own.
const ANTHROPIC_FIELD_PATH = /^([a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)*): /;

/** The request field the upstream blames: OpenAI's `error.param`, or Anthropic's field path. */
function paramOf(dialect: string, e: UpstreamErrorBody): string | undefined {
  if (e.param !== undefined) return e.param;
  if (dialect !== 'anthropic' || e.message === undefined) return undefined;
  const path = ANTHROPIC_FIELD_PATH.exec(e.message)?.[1];
  return path !== undefined && path.length <= MAX_PARAM ? path : undefined;
}

/** Milliseconds from retry-after-ms / retry-after (seconds or HTTP date). */
export function retryAfterMs(headers: Record<string, string | string[] | undefined>, now = Date.now()): number | undefined {
  const first = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);
  const ms = first(headers['retry-after-ms']);
  if (ms !== undefined && ms.trim() !== '' && Number.isFinite(Number(ms)) && Number(ms) >= 0) return Number(ms);
  const ra = first(headers['retry-after']);
  if (ra === undefined) return undefined;
  if (/^\d+(\.\d+)?$/.test(ra.trim())) return Number(ra) * 1000;
  const date = Date.parse(ra);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** The client-safe message per kind; request errors add the upstream's own text. */
const SAFE_MESSAGE: Readonly<Record<ErrorKind, string>> = {
  invalid_request: 'the upstream rejected the request',
  unauthorized: 'the upstream provider rejected our credentials',
  forbidden: 'the upstream provider does not allow this model for our credentials',
  budget_exceeded: "the upstream provider's quota for this deployment is exhausted",
  not_found: 'the upstream provider does not serve this model',
  rate_limited: 'the upstream provider is rate limiting requests, try again later',
  overloaded: 'the upstream provider is overloaded, try again later',
  context_length_exceeded: "the request exceeds the model's context length",
  content_filtered: "the request was rejected by the upstream provider's content filter",
  upstream_error: 'the upstream provider returned an error',
  upstream_timeout: 'the upstream provider timed out',
  circuit_open: 'the upstream provider is failing, try again later',
  engine_unavailable: 'the upstream provider is unavailable',
  internal: 'internal error',
};

/** Kinds whose upstream message is about the client's own input and may be shown. */
const SHOW_UPSTREAM_MESSAGE: ReadonlySet<ErrorKind> = new Set(['invalid_request', 'context_length_exceeded', 'content_filtered']);

/** OpenAI `error.code` / `error.type` values that decide the kind on their own. */
const OPENAI_CODES: Readonly<Record<string, ErrorKind>> = {
  context_length_exceeded: 'context_length_exceeded',
  string_above_max_length: 'context_length_exceeded',
  content_filter: 'content_filtered',
  content_policy_violation: 'content_filtered',
  insufficient_quota: 'budget_exceeded',
  rate_limit_exceeded: 'rate_limited',
  invalid_api_key: 'unauthorized',
  model_not_found: 'not_found',
  overloaded: 'overloaded',
};

/** Anthropic `error.type` values. */
const ANTHROPIC_TYPES: Readonly<Record<string, ErrorKind>> = {
  overloaded_error: 'overloaded',
  rate_limit_error: 'rate_limited',
  authentication_error: 'unauthorized',
  permission_error: 'unauthorized',
  invalid_request_error: 'invalid_request',
  not_found_error: 'not_found',
  request_too_large: 'invalid_request',
  api_error: 'upstream_error',
  timeout_error: 'upstream_timeout',
};

/** The kind from the status alone. */
export function kindOfStatus(status: number): ErrorKind {
  if (status === 400 || status === 413 || status === 422) return 'invalid_request';
  if (status === 401 || status === 403) return 'unauthorized';
  if (status === 404) return 'not_found';
  if (status === 429) return 'rate_limited';
  if (status === 529) return 'overloaded';
  if (status === 408 || status === 504) return 'upstream_timeout';
  return 'upstream_error';
}

// Both providers report a long prompt as a plain invalid request; only the wording tells.
const CONTEXT_LENGTH_TEXT = /context.length|maximum context|too many tokens|prompt is too long/i;

function kindOfBody(dialect: string, e: UpstreamErrorBody, status: number): ErrorKind | undefined {
  let kind: ErrorKind | undefined;
  if (dialect === 'anthropic') kind = e.type === undefined ? undefined : ANTHROPIC_TYPES[e.type];
  else kind = (e.code === undefined ? undefined : OPENAI_CODES[e.code]) ?? (e.type === undefined ? undefined : OPENAI_CODES[e.type]);
  // A body claiming a client error on a 5xx (or the reverse) is not trusted over the status class.
  if (kind !== undefined && (kind === 'invalid_request' || kind === 'context_length_exceeded' || kind === 'content_filtered') && status >= 500) {
    return undefined;
  }
  if (kind === 'invalid_request' && CONTEXT_LENGTH_TEXT.test(e.message ?? '')) return 'context_length_exceeded';
  if (kind === undefined && status < 500 && kindOfStatus(status) === 'invalid_request' && CONTEXT_LENGTH_TEXT.test(e.message ?? '')) {
    return 'context_length_exceeded';
  }
  return kind;
}

/**
 * One upstream HTTP error as a taxonomy error. `provider` names the wire dialect
 * ('openai' or 'anthropic'); the diagnostic keeps the upstream's type, code and message.
 * A request error keeps the field the upstream blames as its `param`.
 */
export function classifyStatus(status: number, body: unknown, headers: Record<string, string | string[] | undefined>, provider: string): InferenceError {
  const e = bodyError(body);
  const diagnostic = `${provider} upstream ${status}: ${e.type ?? ''} ${e.code ?? ''} ${e.message ?? ''}`.replace(/\s+/g, ' ').trim();
  const kind = kindOfBody(provider, e, status) ?? kindOfStatus(status);
  const aboutRequest = SHOW_UPSTREAM_MESSAGE.has(kind);
  let message = SAFE_MESSAGE[kind];
  if (aboutRequest && e.message !== undefined && e.message !== '') message = e.message;
  else if (kind === 'upstream_error') message = `${message} (status ${status})`;
  const ra = retryAfterMs(headers);
  const param = aboutRequest ? paramOf(provider, e) : undefined;
  return new InferenceError(kind, message, { diagnostic, ...(ra === undefined ? {} : { retryAfterMs: ra }), ...(param === undefined ? {} : { param }) });
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
      return new InferenceError('upstream_error', phase === 'body' ? 'the upstream connection broke mid-response' : 'could not reach the upstream provider', {
        diagnostic,
        cause: e,
      });
  }
}
