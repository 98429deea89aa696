// The rate limiter of one (provider, API key, model), as plain state over an
// injected clock. Three limits: requests per minute (an exact sliding window, so
// the upstream never sees more than `rpm` in any minute), tokens per minute (a
// bucket refilled continuously, charged with an estimate before a request and
// settled with the reported usage after) and concurrent requests. An upstream 429
// pauses the key until its retry-after and lowers the local rpm for a while.
// In a cluster a RateShare adds the other nodes' admissions to the rpm window, so
// the limit holds across nodes up to what the share has not synced yet.
// The window is a minute unless the deployment sets `remote.rateWindowMs`: rpm and
// tpm then count per that window (docs/config.md "Remote reliability").
// The rpm window holds only the admissions still inside it, in a ring that grows
// with traffic and shrinks after it: memory follows what was admitted, never the
// configured rpm (a deployment may set any rpm; docs/config.md "Remote reliability").

export interface LimiterConfig {
  readonly rpm?: number | undefined;
  readonly tpm?: number | undefined;
  readonly maxConcurrent: number;
}

export type LimitReason = 'rpm' | 'tpm' | 'concurrency' | 'cooldown';

/** Admitted, or refused with the limit that bit and when it may pass (undefined: when a request ends). */
export type Admission = { readonly ok: true } | { readonly ok: false; readonly reason: LimitReason; readonly waitMs: number | undefined };

/** Other nodes' admissions for the same limiter key (cluster mode). */
export interface RateShare {
  /** Requests the other nodes admitted for `key` in the `windowMs` before `now`, as far as known. */
  elsewhere(key: string, now: number, windowMs: number): number;
  /** This node admitted one request for `key` at `now`, counted in windows of `windowMs`. */
  admitted(key: string, now: number, windowMs: number): void;
}

/** The rate window when a deployment sets none (`remote.rateWindowMs`). */
export const RATE_WINDOW_MS = 60_000;

/** When the cluster's window is full, look again after this long (the others' counts only move at their sync). */
export const SHARED_RETRY_MS = 1_000;

/** How long a lowered rate lasts after the last upstream 429. */
export const PENALTY_MS = 60_000;
/** Pause after a 429 that carried no retry-after. */
export const DEFAULT_COOLDOWN_MS = 1_000;
const MIN_FACTOR = 0.125;

export class RateLimiter {
  /** Admission times inside the window, oldest first (see AdmissionWindow). */
  private readonly window = new AdmissionWindow();
  private tokens = 0;
  private tokensAt = 0;
  private inFlight = 0;
  private pausedUntil = 0;
  private factor = 1;
  private lastPenalty = Number.NEGATIVE_INFINITY;
  private share: { key: string; share: RateShare } | undefined;

  constructor(
    private config: LimiterConfig,
    readonly windowMs = RATE_WINDOW_MS,
    now = 0,
  ) {
    this.reconfigure(config, now);
  }

  reconfigure(config: LimiterConfig, now = 0): void {
    // A lower rpm keeps the most recent admissions it allows; none is kept without one.
    this.window.keepNewest(config.rpm ?? 0);
    if (config.tpm !== this.config.tpm || this.tokensAt === 0) {
      this.tokens = config.tpm ?? 0;
      this.tokensAt = now;
    }
    this.config = config;
  }

  /** Counts the other nodes' admissions against rpm from now on. */
  attachShare(key: string, share: RateShare): void {
    this.share = { key, share };
  }

  get active(): number {
    return this.inFlight;
  }

  /** The rpm in force now: the configured one, lowered after upstream 429s. */
  effectiveRpm(now: number): number | undefined {
    const rpm = this.config.rpm;
    if (rpm === undefined) return undefined;
    if (now - this.lastPenalty >= PENALTY_MS) this.factor = 1;
    return Math.max(1, Math.floor(rpm * this.factor));
  }

  /** Tokens available now (may be negative after usage beyond the estimate). */
  availableTokens(now: number): number {
    const tpm = this.config.tpm;
    if (tpm === undefined) return Number.POSITIVE_INFINITY;
    this.tokens = Math.min(tpm, this.tokens + ((now - this.tokensAt) * tpm) / this.windowMs);
    this.tokensAt = now;
    return this.tokens;
  }

  /** Admits one request estimated at `tokens`, or says what holds it back. Admission charges every limit. */
  tryAcquire(now: number, tokens: number): Admission {
    if (now < this.pausedUntil) return { ok: false, reason: 'cooldown', waitMs: this.pausedUntil - now };
    if (this.inFlight >= this.config.maxConcurrent) return { ok: false, reason: 'concurrency', waitMs: undefined };
    const rpm = this.effectiveRpm(now);
    if (rpm !== undefined) {
      // The rpm-th most recent admission must have left the window.
      const inWindow = this.window.dropUntil(now - this.windowMs);
      if (inWindow >= rpm) return { ok: false, reason: 'rpm', waitMs: this.window.at(inWindow - rpm) + this.windowMs - now };
      const share = this.share;
      if (share !== undefined && inWindow + share.share.elsewhere(share.key, now, this.windowMs) >= rpm) {
        return { ok: false, reason: 'rpm', waitMs: SHARED_RETRY_MS };
      }
    }
    const tpm = this.config.tpm;
    if (tpm !== undefined) {
      // A request larger than the whole budget waits for a full bucket, then goes alone.
      const need = Math.min(tokens, tpm);
      const have = this.availableTokens(now);
      if (have < need) return { ok: false, reason: 'tpm', waitMs: Math.ceil(((need - have) * this.windowMs) / tpm) };
      this.tokens -= tokens;
    }
    if (rpm !== undefined) {
      this.window.push(now);
      this.share?.share.admitted(this.share.key, now, this.windowMs);
    }
    this.inFlight++;
    return { ok: true };
  }

  /** A request admitted with `estimated` tokens ended; `actual` is the usage the upstream reported. */
  release(now: number, estimated: number, actual?: number): void {
    if (this.inFlight > 0) this.inFlight--;
    if (actual !== undefined && this.config.tpm !== undefined) {
      this.availableTokens(now);
      this.tokens = Math.min(this.config.tpm, this.tokens - (actual - estimated));
    }
  }

  /** The upstream answered 429: pause until its retry-after, and halve the rate for a while. */
  onUpstreamRateLimited(now: number, retryAfterMs: number | undefined): void {
    this.pausedUntil = Math.max(this.pausedUntil, now + (retryAfterMs ?? DEFAULT_COOLDOWN_MS));
    if (now - this.lastPenalty >= PENALTY_MS) this.factor = 1;
    this.factor = Math.max(MIN_FACTOR, this.factor / 2);
    this.lastPenalty = now;
  }
}

/** A ring that grows and shrinks by doubling, below which it does not shrink. */
const MIN_RING = 16;

/**
 * Admission times in order, oldest first, from the last `dropUntil` on: a ring of
 * capacity a power of two, doubled when full and halved when a quarter full, so it
 * holds what the window holds and nothing sized by a configured limit.
 */
export class AdmissionWindow {
  private stamps = new Float64Array(MIN_RING);
  private head = 0;
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** The capacity held now (memory is 8 bytes per slot). */
  get capacity(): number {
    return this.stamps.length;
  }

  /** The i-th oldest time held (0: the oldest). */
  at(i: number): number {
    return this.stamps[(this.head + i) & (this.stamps.length - 1)] ?? Number.NEGATIVE_INFINITY;
  }

  push(t: number): void {
    if (this.count === this.stamps.length) this.resize(this.stamps.length * 2);
    this.stamps[(this.head + this.count) & (this.stamps.length - 1)] = t;
    this.count++;
  }

  /** Drops the times at or before `since`; returns how many are left. */
  dropUntil(since: number): number {
    const mask = this.stamps.length - 1;
    while (this.count > 0 && (this.stamps[this.head] ?? Number.NEGATIVE_INFINITY) <= since) {
      this.head = (this.head + 1) & mask;
      this.count--;
    }
    this.shrinkIfSparse();
    return this.count;
  }

  /** Keeps only the `n` most recent times. */
  keepNewest(n: number): void {
    const drop = Math.max(0, this.count - n);
    this.head = (this.head + drop) & (this.stamps.length - 1);
    this.count -= drop;
    this.shrinkIfSparse();
  }

  private shrinkIfSparse(): void {
    let cap = this.stamps.length;
    while (cap > MIN_RING && this.count <= cap / 4) cap /= 2;
    if (cap !== this.stamps.length) this.resize(cap);
  }

  private resize(cap: number): void {
    const next = new Float64Array(cap);
    for (let i = 0; i < this.count; i++) next[i] = this.at(i);
    this.stamps = next;
    this.head = 0;
  }
}
