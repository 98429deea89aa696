// The closed error taxonomy. Every failure that can reach a client is one of these
// kinds; each kind fixes its HTTP status, OpenAI type/code and retryability. The
// client-safe message is kept apart from the diagnostic, which never leaves logs.

export const ERROR_KINDS = [
  'invalid_request',
  'unauthorized',
  'forbidden',
  'budget_exceeded',
  'not_found',
  'rate_limited',
  'overloaded',
  'context_length_exceeded',
  'content_filtered',
  'upstream_error',
  'upstream_timeout',
  'circuit_open',
  'engine_unavailable',
  'internal',
] as const;

export type ErrorKind = (typeof ERROR_KINDS)[number];

export interface ErrorKindInfo {
  readonly status: number;
  /** OpenAI `error.type`. */
  readonly type: string;
  /** OpenAI `error.code`. */
  readonly code: string;
  /** Whether trying again (elsewhere or later) may succeed. */
  readonly retryable: boolean;
  /** Anthropic `error.type`. */
  readonly anthropicType: string;
}

export const ERROR_TABLE: Readonly<Record<ErrorKind, ErrorKindInfo>> = {
  invalid_request: { status: 400, type: 'invalid_request_error', code: 'invalid_request', retryable: false, anthropicType: 'invalid_request_error' },
  unauthorized: { status: 401, type: 'authentication_error', code: 'invalid_api_key', retryable: false, anthropicType: 'authentication_error' },
  forbidden: { status: 403, type: 'permission_error', code: 'forbidden', retryable: false, anthropicType: 'permission_error' },
  budget_exceeded: { status: 429, type: 'insufficient_quota', code: 'budget_exceeded', retryable: false, anthropicType: 'rate_limit_error' },
  not_found: { status: 404, type: 'invalid_request_error', code: 'model_not_found', retryable: false, anthropicType: 'not_found_error' },
  rate_limited: { status: 429, type: 'rate_limit_error', code: 'rate_limit_exceeded', retryable: true, anthropicType: 'rate_limit_error' },
  overloaded: { status: 503, type: 'server_error', code: 'overloaded', retryable: true, anthropicType: 'overloaded_error' },
  context_length_exceeded: {
    status: 400, type: 'invalid_request_error', code: 'context_length_exceeded', retryable: false, anthropicType: 'invalid_request_error',
  },
  content_filtered: { status: 400, type: 'invalid_request_error', code: 'content_filter', retryable: false, anthropicType: 'invalid_request_error' },
  upstream_error: { status: 502, type: 'server_error', code: 'upstream_error', retryable: true, anthropicType: 'api_error' },
  upstream_timeout: { status: 504, type: 'server_error', code: 'upstream_timeout', retryable: true, anthropicType: 'timeout_error' },
  circuit_open: { status: 503, type: 'server_error', code: 'circuit_open', retryable: true, anthropicType: 'overloaded_error' },
  engine_unavailable: { status: 503, type: 'server_error', code: 'engine_unavailable', retryable: true, anthropicType: 'overloaded_error' },
  internal: { status: 500, type: 'server_error', code: 'internal_error', retryable: false, anthropicType: 'api_error' },
};

export interface InferenceErrorOptions {
  /** The request field at fault (OpenAI `error.param`). */
  readonly param?: string | null;
  /** Diagnostic detail for logs; never sent to clients. */
  readonly diagnostic?: string;
  /** Milliseconds after which trying again makes sense (sets `retry-after`). */
  readonly retryAfterMs?: number;
  readonly cause?: unknown;
  /** Set when the failure came from a local engine context (supervision decides on it). */
  readonly fault?: EngineFaultKind;
  /**
   * Set when the runtime itself refused the work for lack of capacity (a full queue,
   * a rate limiter that would make it wait) rather than an upstream failing; the
   * deployment's `onCapacityExhausted` decides what happens next.
   */
  readonly capacity?: boolean;
}

/** Failures a native engine context signals; the supervisor's decider maps them. */
export type EngineFaultKind = 'ContextPoisoned' | 'OutOfMemory' | 'Unrecoverable';

export class InferenceError extends Error {
  readonly kind: ErrorKind;
  readonly param: string | null;
  readonly diagnostic: string | undefined;
  readonly retryAfterMs: number | undefined;
  readonly fault: EngineFaultKind | undefined;
  readonly capacity: boolean;

  constructor(kind: ErrorKind, clientMessage: string, options: InferenceErrorOptions = {}) {
    super(clientMessage, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'InferenceError';
    this.kind = kind;
    this.param = options.param ?? null;
    this.diagnostic = options.diagnostic;
    this.retryAfterMs = options.retryAfterMs;
    this.fault = options.fault;
    this.capacity = options.capacity ?? false;
  }

  get info(): ErrorKindInfo {
    return ERROR_TABLE[this.kind];
  }

  get status(): number {
    return ERROR_TABLE[this.kind].status;
  }

  get retryable(): boolean {
    return ERROR_TABLE[this.kind].retryable;
  }
}

export function isInferenceError(e: unknown): e is InferenceError {
  return e instanceof InferenceError;
}

/** Any thrown value as a taxonomy error; unknown failures become `internal`. */
export function toInferenceError(e: unknown): InferenceError {
  if (e instanceof InferenceError) return e;
  if (e instanceof Error && e.name === 'AbortError') {
    return new InferenceError('internal', 'request aborted', { diagnostic: e.message, cause: e });
  }
  const diagnostic = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return new InferenceError('internal', 'internal error', { diagnostic, cause: e });
}

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string };
}

export function openAIErrorBody(e: InferenceError): OpenAIErrorBody {
  const info = ERROR_TABLE[e.kind];
  return { error: { message: e.message, type: info.type, param: e.param, code: info.code } };
}

export interface AnthropicErrorBody {
  type: 'error';
  error: { type: string; message: string };
}

export function anthropicErrorBody(e: InferenceError): AnthropicErrorBody {
  return { type: 'error', error: { type: ERROR_TABLE[e.kind].anthropicType, message: e.message } };
}

/** Seconds for a `retry-after` header, rounded up, at least 1. */
export function retryAfterSeconds(e: InferenceError): number | undefined {
  if (e.retryAfterMs === undefined) return undefined;
  return Math.max(1, Math.ceil(e.retryAfterMs / 1000));
}
