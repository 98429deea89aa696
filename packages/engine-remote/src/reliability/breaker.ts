// The circuit breaker of one (provider, endpoint): a plain state machine over an
// injected clock, no timers. Closed counts consecutive failures and opens at the
// threshold; open fast-fails until `openMs` has passed; then half-open lets exactly
// one probe through, whose success closes the circuit and whose failure opens it
// again for another `openMs`. Invariant: at most one probe is in flight.

export type BreakerState = 'closed' | 'open' | 'half_open';

export const BREAKER_STATES: readonly BreakerState[] = ['closed', 'open', 'half_open'];

export interface BreakerConfig {
  readonly failureThreshold: number;
  readonly openMs: number;
}

/** What a caller may do now: go, go as the single probe, or fail fast for `retryAfterMs`. */
export type BreakerDecision = { readonly allow: true; readonly probe: boolean } | { readonly allow: false; readonly retryAfterMs: number };

export class CircuitBreaker {
  private stateNow: BreakerState = 'closed';
  private failures = 0;
  private openedAt = 0;
  private probing = false;

  constructor(
    private config: BreakerConfig,
    private readonly onChange?: (from: BreakerState, to: BreakerState) => void,
  ) {}

  /** A deployment update may change the thresholds; the state is kept. */
  reconfigure(config: BreakerConfig): void {
    this.config = config;
  }

  state(now: number): BreakerState {
    if (this.stateNow === 'open' && now - this.openedAt >= this.config.openMs) this.move('half_open');
    return this.stateNow;
  }

  consecutiveFailures(): number {
    return this.failures;
  }

  /** Asks to send one request; a probe must be followed by `success` or `failure` (or `abandon`). */
  tryAcquire(now: number): BreakerDecision {
    const s = this.state(now);
    switch (s) {
      case 'closed':
        return { allow: true, probe: false };
      case 'open':
        return { allow: false, retryAfterMs: Math.max(1, this.openedAt + this.config.openMs - now) };
      case 'half_open':
        if (this.probing) return { allow: false, retryAfterMs: Math.max(1, Math.min(this.config.openMs, 1000)) };
        this.probing = true;
        return { allow: true, probe: true };
      default: {
        const never: never = s;
        throw new Error(`unknown breaker state ${String(never)}`);
      }
    }
  }

  success(probe: boolean): void {
    if (probe) this.probing = false;
    this.failures = 0;
    if (this.stateNow !== 'closed' && (probe || this.stateNow === 'half_open')) this.move('closed');
  }

  failure(probe: boolean, now: number): void {
    if (probe) this.probing = false;
    this.failures++;
    if (probe || this.stateNow === 'half_open' || (this.stateNow === 'closed' && this.failures >= this.config.failureThreshold)) {
      this.openedAt = now;
      this.move('open');
    }
  }

  /** The request ended without telling about the upstream (client left, not an upstream fault). */
  abandon(probe: boolean): void {
    if (probe) this.probing = false;
  }

  private move(to: BreakerState): void {
    const from = this.stateNow;
    if (from === to) return;
    this.stateNow = to;
    this.onChange?.(from, to);
  }
}
