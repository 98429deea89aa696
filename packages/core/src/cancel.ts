// Cancellation on the request path. Every request carries one signal (client gone,
// deadline) and each upstream call one more; on Node 20 an AbortController with a
// listener costs about 10 µs and its weak-listener bookkeeping adds GC work, which
// at a few thousand requests a second was a tenth of the gateway's CPU. A
// Cancellation is a plain object with the same surface the request path uses
// (`aborted`, `reason`, add/removeEventListener('abort')), so an AbortSignal
// still fits wherever a CancelSignal is asked for, and undici accepts it as its
// `signal` option.

import { type Deadline, type DeadlineTarget, deadlines } from './deadlines.js';

export type AbortListener = () => void;

/** A listener object (as EventTarget takes too): an owner that listens needs no closure of its own. */
export interface AbortListenerObject {
  handleEvent(): void;
}

type Listener = AbortListener | AbortListenerObject;

/** What the request path reads from a cancellation: an AbortSignal fits too. */
export interface CancelSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', listener: AbortListener | AbortListenerObject, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: AbortListener | AbortListenerObject): void;
}

/**
 * A one-shot cancellation: `abort(reason)` runs each listener once, in order. Most
 * have one listener or none: the first is kept in a field, an array is made only
 * for a second (an idle stream holds several of these: docs/benchmarks.md).
 */
export class Cancellation implements CancelSignal {
  aborted = false;
  reason: unknown = undefined;
  private first: Listener | undefined;
  private rest: Listener[] | undefined;

  addEventListener(type: 'abort', listener: Listener): void {
    if (type !== 'abort' || this.aborted) return;
    if (this.first === undefined && (this.rest === undefined || this.rest.length === 0)) this.first = listener;
    // An array literal holds just its element (a push onto [] would reserve 17 slots).
    else if (this.rest === undefined) this.rest = [listener];
    else this.rest.push(listener);
  }

  removeEventListener(type: 'abort', listener: Listener): void {
    if (type !== 'abort') return;
    if (this.first === listener) {
      this.first = undefined;
      return;
    }
    const list = this.rest;
    if (list === undefined) return;
    const i = list.indexOf(listener);
    if (i >= 0) list.splice(i, 1);
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const { first, rest } = this;
    this.first = undefined;
    this.rest = undefined;
    // One listener's failure does not keep the others from running; the first is rethrown.
    let failure: Error | undefined;
    const run = (l: Listener): void => {
      try {
        if (typeof l === 'function') l();
        else l.handleEvent();
      } catch (e) {
        failure ??= e instanceof Error ? e : new Error(String(e));
      }
    };
    if (first !== undefined) run(first);
    if (rest !== undefined) for (const l of rest) run(l);
    if (failure !== undefined) throw failure;
  }
}

/**
 * linkedCancellation's result: the child cancellation itself. It is its parent's
 * listener and its deadline's target: besides itself only `done` (which callers take
 * apart from it) is made, and no result object, context or listener closure.
 */
class LinkedCancellation extends Cancellation implements DeadlineTarget, AbortListenerObject {
  private readonly deadline: Deadline;

  constructor(private readonly parent: CancelSignal, ms: number, private readonly onTimeout: () => unknown) {
    super();
    this.deadline = deadlines.add(ms, this);
    if (parent.aborted) this.handleEvent();
    else parent.addEventListener('abort', this, { once: true });
  }

  get signal(): CancelSignal {
    return this;
  }

  /** @internal The parent aborted (it calls this object as its listener). */
  handleEvent(): void {
    this.abort(this.parent.reason);
  }

  /** Cancels the deadline and detaches from the parent. */
  readonly done = (): void => {
    this.deadline.cancel();
    this.parent.removeEventListener('abort', this);
  };

  /** @internal The deadline passed. */
  onDeadline(): void {
    this.abort(this.onTimeout());
  }
}

/**
 * A child of `parent` that also aborts after `ms` with `onTimeout()`'s reason, on
 * the shared deadline wheel (deadlines.ts: never early, at most one tick late).
 * `done()` cancels the deadline and detaches from the parent; call it when the work ends.
 */
export function linkedCancellation(parent: CancelSignal, ms: number, onTimeout: () => unknown): { signal: CancelSignal; done: () => void } {
  return new LinkedCancellation(parent, ms, onTimeout);
}
