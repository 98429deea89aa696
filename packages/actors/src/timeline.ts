// The status page's charts: per deployment, the last 15 minutes of requests,
// tokens, errors and time to first token in 5-second buckets (a ring per
// deployment). TTFT percentiles come from a small log-scale histogram per bucket,
// so a bucket has a fixed size whatever the traffic. Memory is bounded by
// MAX_DEPLOYMENTS × BUCKETS × (counters + TTFT_BINS); a removed deployment's ring
// is dropped. Plain synchronous code over an explicit clock.

export const BUCKET_MS = 5000;
/** 15 minutes of 5-second buckets. */
export const BUCKETS = 180;
/** Past this, the deployment updated least recently is forgotten. */
export const MAX_DEPLOYMENTS = 256;

/** Upper bounds (ms) of the TTFT bins: 1 ms to about 65 s, each ×√2 the last; one more bin holds the rest. */
export const TTFT_BOUNDS: readonly number[] = Array.from({ length: 33 }, (_, i) => Math.round(2 ** (i / 2) * 1000) / 1000);
const TTFT_BINS = TTFT_BOUNDS.length + 1;

export interface TimelineSample {
  readonly requests?: number;
  readonly errors?: number;
  readonly tokensIn?: number;
  readonly tokensOut?: number;
  readonly ttftMs?: number | undefined;
}

/** One deployment's charts, oldest bucket first; per-second rates, TTFT in ms (null: no first token in that bucket). */
export interface TimelineSeries {
  /** Epoch ms at which the first bucket starts. */
  readonly start: number;
  readonly bucketMs: number;
  readonly requestsPerSec: number[];
  readonly tokensPerSec: number[];
  readonly errorsPerSec: number[];
  readonly ttftP50Ms: (number | null)[];
  readonly ttftP99Ms: (number | null)[];
}

interface Ring {
  /** Bucket index (ms / BUCKET_MS, floored) each slot holds; -1 for never used. */
  readonly index: Float64Array;
  readonly requests: Float64Array;
  readonly errors: Float64Array;
  readonly tokens: Float64Array;
  /** BUCKETS × TTFT_BINS counts. */
  readonly ttft: Uint32Array;
  lastUpdate: number;
}

function newRing(): Ring {
  return {
    index: new Float64Array(BUCKETS).fill(-1),
    requests: new Float64Array(BUCKETS),
    errors: new Float64Array(BUCKETS),
    tokens: new Float64Array(BUCKETS),
    ttft: new Uint32Array(BUCKETS * TTFT_BINS),
    lastUpdate: 0,
  };
}

/** The bin of a TTFT: the first bound at or above it (binary search). */
export function ttftBin(ms: number): number {
  let lo = 0;
  let hi = TTFT_BOUNDS.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((TTFT_BOUNDS[mid] ?? Infinity) >= ms) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** The q-quantile of one bucket's histogram, as the upper bound of its bin (the last bin reports the largest bound). */
function quantile(counts: Uint32Array, offset: number, q: number): number | null {
  let total = 0;
  for (let i = 0; i < TTFT_BINS; i++) total += counts[offset + i] ?? 0;
  if (total === 0) return null;
  const rank = Math.ceil(q * total);
  let seen = 0;
  for (let i = 0; i < TTFT_BINS; i++) {
    seen += counts[offset + i] ?? 0;
    if (seen >= rank) return TTFT_BOUNDS[Math.min(i, TTFT_BOUNDS.length - 1)] ?? null;
  }
  return null;
}

export class Timeline {
  private readonly rings = new Map<string, Ring>();

  get size(): number {
    return this.rings.size;
  }

  add(nowMs: number, deployment: string, s: TimelineSample): void {
    let ring = this.rings.get(deployment);
    if (ring === undefined) {
      if (this.rings.size >= MAX_DEPLOYMENTS) this.evictOldest();
      ring = newRing();
      this.rings.set(deployment, ring);
    }
    ring.lastUpdate = nowMs;
    const index = Math.floor(nowMs / BUCKET_MS);
    const slot = index % BUCKETS;
    if (ring.index[slot] !== index) {
      ring.index[slot] = index;
      ring.requests[slot] = 0;
      ring.errors[slot] = 0;
      ring.tokens[slot] = 0;
      ring.ttft.fill(0, slot * TTFT_BINS, (slot + 1) * TTFT_BINS);
    }
    ring.requests[slot] = (ring.requests[slot] ?? 0) + (s.requests ?? 0);
    ring.errors[slot] = (ring.errors[slot] ?? 0) + (s.errors ?? 0);
    ring.tokens[slot] = (ring.tokens[slot] ?? 0) + (s.tokensIn ?? 0) + (s.tokensOut ?? 0);
    if (s.ttftMs !== undefined && Number.isFinite(s.ttftMs)) {
      const at = slot * TTFT_BINS + ttftBin(s.ttftMs);
      ring.ttft[at] = (ring.ttft[at] ?? 0) + 1;
    }
  }

  remove(deployment: string): void {
    this.rings.delete(deployment);
  }

  /** Forgets every deployment not in `live`. */
  retain(live: ReadonlySet<string>): void {
    for (const name of this.rings.keys()) if (!live.has(name)) this.rings.delete(name);
  }

  deployments(): string[] {
    return [...this.rings.keys()];
  }

  /** The last BUCKETS buckets up to the one holding `nowMs` (the current one is partial). */
  series(nowMs: number, deployment: string): TimelineSeries | undefined {
    const ring = this.rings.get(deployment);
    if (ring === undefined) return undefined;
    const last = Math.floor(nowMs / BUCKET_MS);
    const first = last - BUCKETS + 1;
    const perSec = 1000 / BUCKET_MS;
    const out: TimelineSeries = {
      start: first * BUCKET_MS,
      bucketMs: BUCKET_MS,
      requestsPerSec: [],
      tokensPerSec: [],
      errorsPerSec: [],
      ttftP50Ms: [],
      ttftP99Ms: [],
    };
    for (let index = first; index <= last; index++) {
      const slot = ((index % BUCKETS) + BUCKETS) % BUCKETS;
      if (ring.index[slot] !== index) {
        out.requestsPerSec.push(0);
        out.tokensPerSec.push(0);
        out.errorsPerSec.push(0);
        out.ttftP50Ms.push(null);
        out.ttftP99Ms.push(null);
        continue;
      }
      out.requestsPerSec.push((ring.requests[slot] ?? 0) * perSec);
      out.tokensPerSec.push((ring.tokens[slot] ?? 0) * perSec);
      out.errorsPerSec.push((ring.errors[slot] ?? 0) * perSec);
      out.ttftP50Ms.push(quantile(ring.ttft, slot * TTFT_BINS, 0.5));
      out.ttftP99Ms.push(quantile(ring.ttft, slot * TTFT_BINS, 0.99));
    }
    return out;
  }

  private evictOldest(): void {
    let oldest: string | undefined;
    let when = Infinity;
    for (const [name, r] of this.rings) {
      if (r.lastUpdate < when) {
        when = r.lastUpdate;
        oldest = name;
      }
    }
    if (oldest !== undefined) this.rings.delete(oldest);
  }
}
