// Cancellation on the request path. Every request carries one signal (client gone,
// deadline) and each upstream call one more; on Node 20 an AbortController with a
// listener costs about 10 µs and its weak-listener bookkeeping adds GC work, which
// at a few thousand requests a second was a tenth of the gateway's CPU. A
// Cancellation is a plain object with the same surface the request path uses
// (`aborted`, `reason`, add/removeEventListener('abort')), so an AbortSignal
// still fits wherever a CancelSignal is asked for, and undici accepts it as its
// `signal` option.

import { deadlines } from './deadlines.js';

export type AbortListener = () => void;

/** What the request path reads from a cancellation: an AbortSignal fits too. */
export interface CancelSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', listener: AbortListener, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: AbortListener): void;
}

/** A one-shot cancellation: `abort(reason)` runs each listener once, in order. */
export class Cancellation implements CancelSignal {
  aborted = false;
  reason: unknown = undefined;
  private listeners: AbortListener[] | undefined;

  addEventListener(type: 'abort', listener: AbortListener): void {
    if (type !== 'abort' || this.aborted) return;
    (this.listeners ??= []).push(listener);
  }

  removeEventListener(type: 'abort', listener: AbortListener): void {
    const list = this.listeners;
    if (type !== 'abort' || list === undefined) return;
    const i = list.indexOf(listener);
    if (i >= 0) list.splice(i, 1);
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const list = this.listeners;
    this.listeners = undefined;
    if (list === undefined) return;
    // One listener's failure does not keep the others from running; the first is rethrown.
    let failure: Error | undefined;
    for (const l of list) {
      try {
        l();
      } catch (e) {
        failure ??= e instanceof Error ? e : new Error(String(e));
      }
    }
    if (failure !== undefined) throw failure;
  }
}

/**
 * A child of `parent` that also aborts after `ms` with `onTimeout()`'s reason, on
 * the shared deadline wheel (deadlines.ts: never early, at most one tick late).
 * `done()` cancels the deadline and detaches from the parent; call it when the work ends.
 */
export function linkedCancellation(parent: CancelSignal, ms: number, onTimeout: () => unknown): { signal: CancelSignal; done: () => void } {
  const c = new Cancellation();
  const onParent = (): void => { c.abort(parent.reason); };
  const deadline = deadlines.add(ms, () => { c.abort(onTimeout()); });
  if (parent.aborted) onParent();
  else parent.addEventListener('abort', onParent, { once: true });
  return {
    signal: c,
    done: () => {
      deadline.cancel();
      parent.removeEventListener('abort', onParent);
    },
  };
}
