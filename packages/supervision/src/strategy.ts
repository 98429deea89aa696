// Supervision strategies: one-for-one restarts within a budget (at most N within a
// sliding window), and deciders that map a failure to Restart / Resume / Stop /
// Escalate. Pure logic, unit-tested without actors or timers.

import { type EngineFaultKind, InferenceError } from '@inference/core';

export type Decision = 'Restart' | 'Resume' | 'Stop' | 'Escalate';
export type Decider = (error: unknown) => Decision;

/** Counts restarts in a sliding window; `tryRestart` false means the budget is spent. */
export class RestartWindow {
  private readonly times: number[] = [];

  constructor(
    readonly maxRestarts: number,
    readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  tryRestart(): boolean {
    const t = this.now();
    while (this.times.length > 0 && (this.times[0] ?? 0) <= t - this.windowMs) this.times.shift();
    if (this.times.length >= this.maxRestarts) return false;
    this.times.push(t);
    return true;
  }

  /** Restarts counted in the current window. */
  get recent(): number {
    const t = this.now();
    return this.times.filter((x) => x > t - this.windowMs).length;
  }
}

export interface OneForOne {
  readonly maxRestarts: number;
  readonly windowMs: number;
  readonly decider: Decider;
}

function faultOf(e: unknown): EngineFaultKind | undefined {
  return e instanceof InferenceError ? e.fault : undefined;
}

/** docs/architecture.md (Supervision): ContextPoisoned -> Restart, OutOfMemory -> Resume, Unrecoverable -> Stop, else Escalate. */
export const localEngineDecider: Decider = (e) => {
  const fault = faultOf(e);
  switch (fault) {
    case 'ContextPoisoned':
      return 'Restart';
    case 'OutOfMemory':
      return 'Resume';
    case 'Unrecoverable':
      return 'Stop';
    case undefined:
      return 'Escalate';
    default: {
      const never: never = fault;
      return never;
    }
  }
};

/**
 * Remote sessions: an upstream 401 means the session's credentials are stale, so
 * the session is rebuilt (credentials re-read) and the request retried once.
 * Request-level failures (rate limits, 5xx, bad requests) leave the session be.
 */
export const remoteSessionDecider: Decider = (e) => {
  if (e instanceof InferenceError) {
    if (e.kind === 'unauthorized') return 'Restart';
    return 'Resume';
  }
  return 'Escalate';
};

export const DEFAULT_STRATEGY = { maxRestarts: 3, windowMs: 60_000 } as const;
