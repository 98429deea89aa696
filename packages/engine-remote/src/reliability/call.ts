// One remote request made reliable: the breaker of its endpoint may fail it fast,
// the limiter of its (provider, key, model) admits it (waiting or refusing per the
// deployment's onCapacityExhausted), and transient failures are retried on the same
// replica with exponential backoff and full jitter — only while nothing has reached
// the client, at most maxRetries times, and never past the total timeout. The
// limiter slot is held only while the upstream call runs, never during backoff.

import { type CancelSignal, type DeploymentSpec, type ErrorKind, InferenceError, type RunContext, toInferenceError } from '@inference/core';
import { type BackoffConfig, backoffDelay, isUpstreamFault, shouldRetry } from './backoff.js';
import type { BreakerDecision, CircuitBreaker } from './breaker.js';
import type { Clock, LimiterGate, RefusalReason } from './gate.js';

/** What the reliability layer tells the metrics about. */
export type RemoteEvent =
  | { readonly type: 'retry'; readonly kind: ErrorKind }
  | { readonly type: 'limited'; readonly reason: RefusalReason }
  | { readonly type: 'upstreamRateLimited' }
  | { readonly type: 'breakerRejected' };

export interface ReliableDeps {
  readonly spec: DeploymentSpec;
  readonly gate: LimiterGate;
  readonly breaker: CircuitBreaker;
  readonly clock: Clock;
  readonly backoff: BackoffConfig;
  readonly random: () => number;
  readonly onEvent?: ((e: RemoteEvent) => void) | undefined;
}

export interface Attempt<T> {
  /** Estimated tokens (prompt + completion) charged to the tpm budget before the call. */
  readonly tokens: number;
  readonly run: () => Promise<T>;
  /** Tokens the upstream reported for a finished call, to settle the estimate. */
  readonly usage: (result: T) => number | undefined;
  /** Whether anything reached the client (then no retry). */
  readonly emitted: () => boolean;
}

function sleep(clock: Clock, ms: number, signal: CancelSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clock.clearTimeout(handle);
      reject(toInferenceError(signal.reason));
    };
    const handle = clock.setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Runs the attempt reliably (see above). The common case (breaker closed, the limiter admits at once)
 * costs one promise derived from the attempt's, with no suspended async function; a refusal, a wait
 * for the limiter or a retry goes the full way (`reliably`).
 */
export function callReliably<T>(deps: ReliableDeps, ctx: RunContext, a: Attempt<T>): Promise<T> {
  const start = deps.clock.now();
  const d = deps.breaker.tryAcquire(start);
  if (!d.allow || !deps.gate.admitNow(a.tokens, ctx.signal)) return reliably(deps, ctx, a, start, 0, d);
  const probe = d.probe;
  return a.run().then(
    (result) => succeeded(deps, a, probe, result),
    (e: unknown) => {
      const delay = afterFailure(deps, ctx, a, probe, e, 0, start);
      return sleep(deps.clock, delay, ctx.signal).then(() => reliably(deps, ctx, a, start, 1, undefined));
    },
  );
}

/** The attempt's result, with the breaker and the limiter told. */
function succeeded<T>(deps: ReliableDeps, a: Attempt<T>, probe: boolean, result: T): T {
  let actual: number | undefined;
  try {
    actual = a.usage(result);
    deps.breaker.success(probe);
  } finally {
    deps.gate.release(a.tokens, actual);
  }
  return result;
}

/**
 * After a failed attempt: the breaker and the limiter told, and either the error thrown (no retry)
 * or the backoff before the next attempt returned (the retry counted and traced).
 */
function afterFailure<T>(deps: ReliableDeps, ctx: RunContext, a: Attempt<T>, probe: boolean, e: unknown, retries: number, start: number): number {
  const { spec, gate, breaker, clock } = deps;
  const err = toInferenceError(e);
  try {
    if (ctx.signal.aborted || err.kind === 'rate_limited') breaker.abandon(probe);
    else if (isUpstreamFault(err)) breaker.failure(probe, clock.now());
    else breaker.success(probe);
    if (err.kind === 'rate_limited' && !err.capacity) {
      gate.onUpstreamRateLimited(err.retryAfterMs);
      deps.onEvent?.({ type: 'upstreamRateLimited' });
    }
  } finally {
    gate.release(a.tokens, undefined);
  }
  if (ctx.signal.aborted || !shouldRetry(err, retries, spec.remote.maxRetries, a.emitted())) throw err;
  const delay = backoffDelay(retries, deps.backoff, deps.random(), err.retryAfterMs);
  const maxWaitMs = spec.onCapacityExhausted === 'queue' ? spec.remote.queueTimeoutMs : 0;
  // An upstream that asks for a longer pause than this deployment may queue gets its answer passed on.
  if (err.kind === 'rate_limited' && err.retryAfterMs !== undefined && err.retryAfterMs > maxWaitMs) throw err;
  // A retry that could not start before the total deadline is not worth waiting for.
  if (clock.now() + delay - start >= spec.remote.timeouts.totalMs) throw err;
  deps.onEvent?.({ type: 'retry', kind: err.kind });
  ctx.trace?.event('retry', { 'error.type': err.kind, 'inference.retry': retries + 1, 'inference.backoff_ms': Math.round(delay) });
  return delay;
}

/** The full way, from attempt `retries` on; `first` is the breaker's decision for it when already taken. */
async function reliably<T>(
  deps: ReliableDeps, ctx: RunContext, a: Attempt<T>, start: number, retries: number, first: BreakerDecision | undefined,
): Promise<T> {
  const { spec, gate, breaker, clock } = deps;
  const maxWaitMs = spec.onCapacityExhausted === 'queue' ? spec.remote.queueTimeoutMs : 0;
  for (let d = first ?? breaker.tryAcquire(clock.now()); ; retries++, d = breaker.tryAcquire(clock.now())) {
    if (!d.allow) {
      deps.onEvent?.({ type: 'breakerRejected' });
      ctx.trace?.event('circuit open');
      throw new InferenceError('circuit_open', 'the upstream provider is failing, try again later', {
        retryAfterMs: d.retryAfterMs, diagnostic: `circuit open for ${spec.endpoint ?? spec.name}`,
      });
    }
    // Admitted at once (undefined); otherwise queued or refused by the gate (null untraced, else the span of the wait).
    const wait = gate.admitNow(a.tokens, ctx.signal) ? undefined : ctx.trace?.child('rate limit wait', { 'inference.tokens.estimate': a.tokens }) ?? null;
    try {
      if (wait !== undefined) await gate.acquire({
        tokens: a.tokens, signal: ctx.signal, maxWaitMs, maxQueue: spec.remote.maxQueue, deployment: spec.name,
        onRefused: (reason) => deps.onEvent?.({ type: 'limited', reason }),
      });
    } catch (e) {
      breaker.abandon(d.probe);
      wait?.fail(e);
      throw toInferenceError(e);
    } finally {
      wait?.end();
    }
    let result: T;
    try {
      result = await a.run();
    } catch (e) {
      await sleep(clock, afterFailure(deps, ctx, a, d.probe, e, retries, start), ctx.signal);
      continue;
    }
    return succeeded(deps, a, d.probe, result);
  }
}
