// Per-deployment request, error and token counts over the last minute, in
// one-second buckets, for the status page's rates. Plain synchronous code over an
// explicit clock; memory is bounded by deployments × buckets, and a deployment
// with nothing in the window is forgotten.

export interface RateCounts {
  requests: number;
  errors: number;
  tokensIn: number;
  tokensOut: number;
}

export interface Rates {
  requestsPerSec: number;
  errorsPerSec: number;
  /** Prompt plus completion tokens. */
  tokensPerSec: number;
  outputTokensPerSec: number;
}

interface Bucket extends RateCounts {
  /** Whole second (ms / 1000, floored) this bucket counts. */
  second: number;
}

export class RateWindow {
  private readonly byDeployment = new Map<string, Bucket[]>();

  /**
   * @param seconds the window length
   * @param since when counting started (ms): until a full window has passed, rates
   *              divide by the time since then, so a young process shows real rates.
   */
  constructor(private readonly seconds = 60, private readonly since = 0) {}

  add(nowMs: number, deployment: string, c: Partial<RateCounts>): void {
    const second = Math.floor(nowMs / 1000);
    let ring = this.byDeployment.get(deployment);
    if (ring === undefined) {
      ring = [];
      this.byDeployment.set(deployment, ring);
    }
    const slot = second % this.seconds;
    let b = ring[slot];
    if (b?.second !== second) {
      b = { second, requests: 0, errors: 0, tokensIn: 0, tokensOut: 0 };
      ring[slot] = b;
    }
    b.requests += c.requests ?? 0;
    b.errors += c.errors ?? 0;
    b.tokensIn += c.tokensIn ?? 0;
    b.tokensOut += c.tokensOut ?? 0;
  }

  /** Rates per deployment over the window ending now; drops deployments with nothing in it. */
  rates(nowMs: number): Map<string, Rates> {
    const now = Math.floor(nowMs / 1000);
    const span = Math.max(1, Math.min(this.seconds, (nowMs - this.since) / 1000));
    const out = new Map<string, Rates>();
    for (const [deployment, ring] of this.byDeployment) {
      const sum: RateCounts = { requests: 0, errors: 0, tokensIn: 0, tokensOut: 0 };
      let live = false;
      for (const b of ring) {
        if (b === undefined || b.second <= now - this.seconds || b.second > now) continue;
        live = true;
        sum.requests += b.requests;
        sum.errors += b.errors;
        sum.tokensIn += b.tokensIn;
        sum.tokensOut += b.tokensOut;
      }
      if (!live) {
        this.byDeployment.delete(deployment);
        continue;
      }
      out.set(deployment, {
        requestsPerSec: sum.requests / span,
        errorsPerSec: sum.errors / span,
        tokensPerSec: (sum.tokensIn + sum.tokensOut) / span,
        outputTokensPerSec: sum.tokensOut / span,
      });
    }
    return out;
  }
}
