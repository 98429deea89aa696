// Request deadlines on one shared, coarse timer instead of a setTimeout per
// request. Most deadlines (a request's total timeout, an upstream call's) never
// fire: the work ends first and cancels them, so what matters is that adding
// and cancelling one is cheap. A deadline sits in the bucket of the tick at or
// after its due time; one timer, armed only while some deadline is pending,
// wakes at each tick boundary and fires every bucket that is due.
//
// Semantics: a deadline never fires before `ms` has passed, and fires within one
// tick (DEADLINE_TICK_MS) after, plus whatever the event loop is late. Cancelling
// removes the entry at once (swap-remove in its bucket), so cancelled deadlines
// hold no memory until their due time; a bucket emptied so stays (an empty array)
// until its tick is swept or nothing is pending any more, so that adding and
// cancelling touch no timer and no map entry in the common case. The timer is
// not cleared when the last deadline is cancelled: it wakes once more, finds
// nothing and stops. Time is `performance.now()`, monotonic.

/** The wheel's granularity: how late a deadline may fire, at most, on an idle event loop. */
export const DEADLINE_TICK_MS = 25;

export interface Deadline {
  /** Stops the deadline from firing; a no-op once it fired or was cancelled. */
  cancel(): void;
}

/** What a deadline may call instead of a function: an object that owns its callback (no closure per deadline). */
export interface DeadlineTarget {
  onDeadline(): void;
}

type DeadlineFn = (() => void) | DeadlineTarget;

class Entry implements Deadline {
  /** Position in its bucket; -1 once fired or cancelled. */
  index = -1;

  constructor(
    private readonly wheel: DeadlineWheel,
    readonly tick: number,
    public fn: DeadlineFn | undefined,
  ) {}

  cancel(): void {
    if (this.index >= 0) this.wheel.remove(this);
  }
}

const NEVER: Deadline = { cancel: () => undefined };

export class DeadlineWheel {
  private readonly buckets = new Map<number, Entry[]>();
  private pending = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** Every bucket up to this tick has fired. */
  private swept: number;

  constructor(private readonly tickMs = DEADLINE_TICK_MS) {
    this.swept = Math.floor(performance.now() / tickMs);
  }

  /** Deadlines not yet fired nor cancelled. */
  get size(): number {
    return this.pending;
  }

  /** Runs `fn` (or `fn.onDeadline()`) once, no sooner than `ms` from now, unless cancelled first (`Infinity`: never). */
  add(ms: number, fn: DeadlineFn): Deadline {
    if (!Number.isFinite(ms) && ms > 0) return NEVER;
    const now = performance.now();
    if (this.pending === 0) {
      // Idle until now: nothing before this moment is left to sweep, and a timer still
      // armed from before is replaced by one armed now (whichever timers are in use now).
      this.swept = Math.floor(now / this.tickMs);
      if (this.timer !== undefined) {
        clearTimeout(this.timer);
        this.timer = undefined;
      }
    }
    // The first tick boundary at or after the due time, and never one already swept.
    const tick = Math.max(Math.ceil((now + Math.max(0, ms)) / this.tickMs), this.swept + 1);
    const e = new Entry(this, tick, fn);
    let bucket = this.buckets.get(tick);
    if (bucket === undefined) {
      bucket = [];
      this.buckets.set(tick, bucket);
    }
    e.index = bucket.length;
    bucket.push(e);
    this.pending++;
    if (this.timer === undefined) this.arm(now);
    return e;
  }

  /** @internal */
  remove(e: Entry): void {
    const bucket = this.buckets.get(e.tick);
    if (bucket !== undefined) {
      const last = bucket.pop();
      if (last !== undefined && last !== e) {
        bucket[e.index] = last;
        last.index = e.index;
      }
    }
    e.index = -1;
    e.fn = undefined;
    // Nothing pending: the emptied buckets go at once (the timer finds nothing and stops).
    if (--this.pending === 0) this.buckets.clear();
  }

  private arm(now: number): void {
    const next = (Math.floor(now / this.tickMs) + 1) * this.tickMs;
    this.timer = setTimeout(this.sweep, Math.max(1, next - now));
    // Deadlines guard work that holds the process open itself (sockets, children).
    this.timer.unref?.();
  }

  private readonly sweep = (): void => {
    this.timer = undefined;
    const now = performance.now();
    const upTo = Math.floor(now / this.tickMs);
    let failure: Error | undefined;
    for (let t = this.swept + 1; t <= upTo && this.buckets.size > 0; t++) {
      const bucket = this.buckets.get(t);
      if (bucket === undefined) continue;
      this.buckets.delete(t);
      for (const e of bucket) {
        const fn = e.fn;
        e.fn = undefined;
        e.index = -1;
        this.pending--;
        try {
          if (typeof fn === 'function') fn();
          else fn?.onDeadline();
        } catch (err) {
          failure ??= err instanceof Error ? err : new Error(String(err));
        }
      }
    }
    this.swept = Math.max(this.swept, upTo);
    if (this.pending === 0) this.buckets.clear();
    else if (this.timer === undefined) this.arm(performance.now());
    // One deadline's failure does not keep the others from firing; the first is rethrown.
    if (failure !== undefined) throw failure;
  };
}

/** The process's shared wheel for request deadlines. */
export const deadlines = new DeadlineWheel();
