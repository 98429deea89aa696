// One remote request made reliable: the breaker of its endpoint may fail it fast,
// the limiter of its (provider, key, model) admits it (waiting or refusing per the
// deployment's onCapacityExhausted), and transient failures are retried on the same
// replica with exponential backoff and full jitter — only while nothing has reached
// the client, at most maxRetries times, and never past the total timeout. The
// limiter slot is held only while the upstream call runs, never during backoff.

import { type CancelSignal, type DeploymentSpec, type ErrorKind, InferenceError, type RunContext, toInferenceError } from '@inference/core';
import { type BackoffConfig, backoffDelay, isUpstreamFault, shouldRetry } from './backoff.js';
import type { CircuitBreaker } from './breaker.js';
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

export async function callReliably<T>(deps: ReliableDeps, ctx: RunContext, a: Attempt<T>): Promise<T> {
  const { spec, gate, breaker, clock } = deps;
  const start = clock.now();
  const totalMs = spec.remote.timeouts.totalMs;
  const maxWaitMs = spec.onCapacityExhausted === 'queue' ? spec.remote.queueTimeoutMs : 0;
  for (let retries = 0; ; retries++) {
    const d = breaker.tryAcquire(clock.now());
    if (!d.allow) {
      deps.onEvent?.({ type: 'breakerRejected' });
      ctx.trace?.event('circuit open');
      throw new InferenceError('circuit_open', 'the upstream provider is failing, try again later', {
        retryAfterMs: d.retryAfterMs, diagnostic: `circuit open for ${spec.endpoint ?? spec.name}`,
      });
    }
    // Admitted at once in the common case (undefined); otherwise queued or refused by the
    // gate (null untraced, else the span of the wait).
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
    let err: InferenceError;
    let actual: number | undefined;
    try {
      const result = await a.run();
      actual = a.usage(result);
      breaker.success(d.probe);
      return result;
    } catch (e) {
      err = toInferenceError(e);
      if (ctx.signal.aborted || err.kind === 'rate_limited') breaker.abandon(d.probe);
      else if (isUpstreamFault(err)) breaker.failure(d.probe, clock.now());
      else breaker.success(d.probe);
      if (err.kind === 'rate_limited' && !err.capacity) {
        gate.onUpstreamRateLimited(err.retryAfterMs);
        deps.onEvent?.({ type: 'upstreamRateLimited' });
      }
    } finally {
      gate.release(a.tokens, actual);
    }
    if (ctx.signal.aborted || !shouldRetry(err, retries, spec.remote.maxRetries, a.emitted())) throw err;
    const delay = backoffDelay(retries, deps.backoff, deps.random(), err.retryAfterMs);
    // An upstream that asks for a longer pause than this deployment may queue gets its answer passed on.
    if (err.kind === 'rate_limited' && err.retryAfterMs !== undefined && err.retryAfterMs > maxWaitMs) throw err;
    // A retry that could not start before the total deadline is not worth waiting for.
    if (clock.now() + delay - start >= totalMs) throw err;
    deps.onEvent?.({ type: 'retry', kind: err.kind });
    ctx.trace?.event('retry', { 'error.type': err.kind, 'inference.retry': retries + 1, 'inference.backoff_ms': Math.round(delay) });
    await sleep(clock, delay, ctx.signal);
  }
}
