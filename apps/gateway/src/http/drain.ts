// Drain: what the HTTP edge does between "stop taking work" and "close". Once
// begun, /ready answers 503 at once (load balancers stop sending), every new
// request except the probes gets 503 `overloaded` with `connection: close`,
// and the requests already in flight (streams included) run to their end.
// `idle(ms)` resolves when none is left or the bound has passed. See
// docs/config.md (`server.drainTimeoutMs`).
//
// Invariant: `inFlight` counts responses accepted before the drain began and
// not yet closed; each is counted once and released once, on the raw
// response's 'close' (which fires for finished, failed and abandoned ones).

import type { ServerResponse } from 'node:http';

/** Routes that keep answering while draining (probes and scrapes). */
const PROBES = new Set(['/health', '/ready', '/metrics']);

export class Drain {
  private active = false;
  private count = 0;
  private readonly waiters = new Set<() => void>();

  get draining(): boolean {
    return this.active;
  }

  get inFlight(): number {
    return this.count;
  }

  /** True for the paths that still answer while draining. */
  static isProbe(url: string): boolean {
    // On every request: no array per call.
    const q = url.indexOf('?');
    return PROBES.has(q < 0 ? url : url.slice(0, q));
  }

  /**
   * Counts a response until it closes. One listener function serves every response
   * (no closure, once() wrapper or state object per request: docs/benchmarks.md,
   * "Idle concurrent streams"); 'close' fires once per response, so `on` is enough.
   */
  track(res: ServerResponse): void {
    this.count++;
    res.on('close', this.closed);
  }

  private readonly closed = (): void => {
    this.count--;
    if (this.count === 0) this.wake();
  };

  begin(): void {
    this.active = true;
  }

  /** Resolves true when nothing is in flight, false when `timeoutMs` passed first. */
  idle(timeoutMs: number): Promise<boolean> {
    if (this.count === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(done);
        resolve(this.count === 0);
      }, timeoutMs);
      this.waiters.add(done);
    });
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}
