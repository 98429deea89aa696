// The mock's own request-rate limit: at most `limit` admitted requests in any sliding
// window of `windowMs`. A ring of the last `limit` admission times is the whole state:
// a request is admitted iff the oldest of them has left the window, so memory is
// O(limit) and each decision O(1). Rejected requests do not occupy the window (a client
// that backs off recovers on schedule). Time is passed in, so the logic is tested
// without clocks.

export class SlidingWindowLimiter {
  private readonly stamps: Float64Array;
  /** Slot of the oldest admission (the next to be overwritten). */
  private oldest = 0;

  constructor(
    readonly limit: number,
    readonly windowMs = 60_000,
  ) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`rate limit must be an integer >= 1, got ${limit}`);
    if (!(windowMs > 0)) throw new RangeError(`window must be > 0 ms, got ${windowMs}`);
    this.stamps = new Float64Array(limit).fill(Number.NEGATIVE_INFINITY);
  }

  /** 0 when admitted (and recorded); otherwise the ms until a slot frees up. */
  tryAcquire(now: number): number {
    const oldest = this.stamps[this.oldest] ?? Number.NEGATIVE_INFINITY;
    const wait = oldest + this.windowMs - now;
    if (wait > 0) return wait;
    this.stamps[this.oldest] = now;
    this.oldest = (this.oldest + 1) % this.limit;
    return 0;
  }
}
