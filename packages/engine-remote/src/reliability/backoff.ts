// Retry decisions for one upstream call, as pure functions: which failures are
// worth another try on the same replica, and how long to wait first. Backoff is
// exponential with full jitter (a uniform draw in [0, min(cap, base * 2^attempt)]),
// so synchronized clients spread out; an upstream's retry-after is a floor.

import type { InferenceError } from '@inference/core';

export interface BackoffConfig {
  readonly baseMs: number;
  readonly capMs: number;
}

export const DEFAULT_BACKOFF: BackoffConfig = { baseMs: 100, capMs: 10_000 };

/** Wait before retry number `attempt` (0 = the first retry). `random` is in [0, 1). */
export function backoffDelay(attempt: number, config: BackoffConfig, random: number, retryAfterMs?: number): number {
  const ceiling = Math.min(config.capMs, config.baseMs * 2 ** Math.min(attempt, 30));
  const jitter = Math.floor(random * ceiling);
  return retryAfterMs === undefined ? jitter : Math.max(jitter, Math.ceil(retryAfterMs));
}

/**
 * Whether a failed call may be sent again on the same replica: only before anything
 * reached the client, only within the retry budget, only for transient kinds
 * (429, 5xx, 529, connect errors, timeouts) — never for request, auth or
 * content-filter errors, whose answer would not change.
 */
export function shouldRetry(e: InferenceError, retriesDone: number, maxRetries: number, emitted: boolean): boolean {
  if (emitted || retriesDone >= maxRetries) return false;
  switch (e.kind) {
    case 'rate_limited':
    case 'overloaded':
    case 'upstream_error':
    case 'upstream_timeout':
      return !e.capacity;
    case 'invalid_request':
    case 'unauthorized':
    case 'forbidden':
    case 'budget_exceeded':
    case 'not_found':
    case 'context_length_exceeded':
    case 'content_filtered':
    case 'circuit_open':
    case 'engine_unavailable':
    case 'internal':
      return false;
    default: {
      const never: never = e.kind;
      throw new Error(`unknown error kind ${String(never)}`);
    }
  }
}

/** Whether a failure says the upstream itself is unhealthy (counts toward the breaker). */
export function isUpstreamFault(e: InferenceError): boolean {
  if (e.capacity) return false;
  return e.kind === 'upstream_error' || e.kind === 'upstream_timeout' || e.kind === 'overloaded';
}
