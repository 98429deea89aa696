// The waiting room in front of one RateLimiter: requests the limiter cannot admit
// now wait here in FIFO order, up to `maxQueue` of them and each up to its own
// deadline; then they fail with a capacity error carrying retry-after. One timer
// per gate (for the head's wait or the nearest deadline), cleared when idle. A
// waiter whose request is aborted leaves at once.

import { type CancelSignal, InferenceError } from '@inference/core';
import { type Admission, type LimitReason, type LimiterConfig, RATE_WINDOW_MS, RateLimiter } from './rateLimiter.js';

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const SYSTEM_CLOCK: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => { clearTimeout(h as ReturnType<typeof setTimeout>); },
};

export interface AcquireOptions {
  readonly tokens: number;
  readonly signal: CancelSignal;
  /** How long the request may wait; 0 refuses at once when it cannot go now. */
  readonly maxWaitMs: number;
  readonly maxQueue: number;
  /** Names the deployment in the client-safe message. */
  readonly deployment: string;
  /** Told which limit refused the request, when it is refused for capacity. */
  readonly onRefused?: ((reason: RefusalReason) => void) | undefined;
}

/** The limit that refused a request; `queue` when the waiting room was full. */
export type RefusalReason = LimitReason | 'queue';

interface Waiter {
  readonly tokens: number;
  readonly deadline: number;
  readonly deployment: string;
  readonly resolve: () => void;
  readonly reject: (e: InferenceError) => void;
  readonly signal: CancelSignal;
  readonly onAbort: () => void;
  readonly onRefused: ((reason: RefusalReason) => void) | undefined;
  last: Admission | undefined;
}

function reasonOf(a: Admission | undefined): LimitReason {
  return a === undefined || a.ok ? 'concurrency' : a.reason;
}

/** The capacity error for a request that cannot (or can no longer) wait. */
export function capacityError(deployment: string, a: Admission | undefined, queueFull: boolean): InferenceError {
  const reason = reasonOf(a);
  const retryAfterMs = Math.max(1000, Math.ceil(a !== undefined && !a.ok && a.waitMs !== undefined ? a.waitMs : 1000));
  const diagnostic = `limiter: ${reason}${queueFull ? ', queue full' : ''}`;
  if (reason === 'concurrency') {
    return new InferenceError('overloaded', `deployment '${deployment}' is at capacity, try again`, { retryAfterMs, diagnostic, capacity: true });
  }
  return new InferenceError('rate_limited', `deployment '${deployment}' is over its rate limit, try again later`, { retryAfterMs, diagnostic, capacity: true });
}

export class LimiterGate {
  readonly limiter: RateLimiter;
  private readonly waiters: Waiter[] = [];
  private timer: unknown;
  private timerAt = Number.POSITIVE_INFINITY;

  constructor(config: LimiterConfig, private readonly clock: Clock = SYSTEM_CLOCK, windowMs = RATE_WINDOW_MS) {
    this.limiter = new RateLimiter(config, windowMs, clock.now());
  }

  get waiting(): number {
    return this.waiters.length;
  }

  /** Admits at once when nobody waits and the limits allow (the caller must `release`); false: call `acquire`. */
  admitNow(tokens: number, signal: CancelSignal): boolean {
    return !signal.aborted && this.waiters.length === 0 && this.limiter.tryAcquire(this.clock.now(), tokens).ok;
  }

  /** Resolves once admitted (the caller must `release`), or rejects with a capacity error or the abort reason. */
  acquire(o: AcquireOptions): Promise<void> {
    const now = this.clock.now();
    if (o.signal.aborted) return Promise.reject(abortError(o.signal));
    if (this.waiters.length === 0) {
      const a = this.limiter.tryAcquire(now, o.tokens);
      if (a.ok) return Promise.resolve();
      if (o.maxWaitMs <= 0 || o.maxQueue <= 0 || (a.waitMs !== undefined && a.waitMs > o.maxWaitMs)) {
        o.onRefused?.(a.reason);
        return Promise.reject(capacityError(o.deployment, a, false));
      }
    } else if (o.maxWaitMs <= 0 || this.waiters.length >= o.maxQueue) {
      const full = this.waiters.length >= o.maxQueue;
      const last = this.waiters[0]?.last;
      o.onRefused?.(full ? 'queue' : reasonOf(last));
      return Promise.reject(capacityError(o.deployment, last, full));
    }
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = {
        tokens: o.tokens,
        deadline: now + o.maxWaitMs,
        deployment: o.deployment,
        resolve,
        reject,
        signal: o.signal,
        onRefused: o.onRefused,
        onAbort: () => {
          const i = this.waiters.indexOf(w);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(abortError(o.signal));
          this.pump();
        },
        last: undefined,
      };
      o.signal.addEventListener('abort', w.onAbort, { once: true });
      this.waiters.push(w);
      this.pump();
    });
  }

  release(estimated: number, actual?: number): void {
    this.limiter.release(this.clock.now(), estimated, actual);
    this.pump();
  }

  onUpstreamRateLimited(retryAfterMs: number | undefined): void {
    this.limiter.onUpstreamRateLimited(this.clock.now(), retryAfterMs);
  }

  /** Admits waiters from the head while the limiter allows, expires the overdue, re-arms the timer. */
  private pump(): void {
    const now = this.clock.now();
    for (;;) {
      const head = this.waiters[0];
      if (head === undefined) break;
      const a = this.limiter.tryAcquire(now, head.tokens);
      head.last = a;
      if (!a.ok) break;
      this.waiters.shift();
      head.signal.removeEventListener('abort', head.onAbort);
      head.resolve();
    }
    // Whoever's deadline passed (or cannot be met by the head's wait) leaves with retry-after.
    const head = this.waiters[0];
    const headReady = head?.last !== undefined && !head.last.ok && head.last.waitMs !== undefined ? now + head.last.waitMs : Number.POSITIVE_INFINITY;
    for (let i = 0; i < this.waiters.length;) {
      const w = this.waiters[i];
      if (w === undefined) break;
      if (w.deadline <= now || (headReady > w.deadline && head?.last?.ok === false && head.last.reason !== 'concurrency')) {
        this.waiters.splice(i, 1);
        w.signal.removeEventListener('abort', w.onAbort);
        w.onRefused?.(reasonOf(head?.last));
        w.reject(capacityError(w.deployment, head?.last, false));
      } else {
        i++;
      }
    }
    this.arm(now);
  }

  private arm(now: number): void {
    let at = Number.POSITIVE_INFINITY;
    const head = this.waiters[0];
    if (head?.last !== undefined && !head.last.ok && head.last.waitMs !== undefined) at = now + head.last.waitMs;
    for (const w of this.waiters) at = Math.min(at, w.deadline);
    if (at === this.timerAt) return;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = at;
    if (at === Number.POSITIVE_INFINITY) return;
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Number.POSITIVE_INFINITY;
      this.pump();
    }, Math.max(1, at - now));
  }
}

function abortError(signal: CancelSignal): InferenceError {
  const r: unknown = signal.reason;
  return r instanceof InferenceError ? r : new InferenceError('internal', 'request aborted', { diagnostic: String(r) });
}
