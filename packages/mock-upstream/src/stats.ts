// What the mock saw: counts per path and HTTP version, concurrency, rate-limit rejections,
// arrival times, and the last request's headers and body. Recording is a few increments
// per request (headers are kept by reference and copied only when a snapshot is taken);
// snapshots are plain JSON-safe copies. Only API requests are recorded, never /_mock/*.

import type { IncomingHttpHeaders } from 'node:http';

export interface MockStats {
  /** API requests received (including rejected and unknown-path ones). */
  readonly requests: number;
  readonly byPath: Record<string, number>;
  /** Requests whose response has not finished or been abandoned yet. */
  readonly inFlight: number;
  readonly maxInFlight: number;
  /** Requests rejected by the mock's own `rpm` limiter. */
  readonly rateLimited: number;
  /** Arrival time (ms since epoch) of each request, oldest first (the newest `maxArrivals`). */
  readonly arrivals: number[];
  /** The last request's headers, lower-case names, HTTP/2 pseudo-headers left out. */
  readonly lastHeaders: Record<string, string>;
  /** The last request's parsed JSON body (the raw text when it was not JSON). */
  readonly lastBody: unknown;
  /** Requests per HTTP version: `'1.1'`, `'2.0'`. */
  readonly httpVersions: Record<string, number>;
}

export class StatsRecorder {
  private requests = 0;
  private byPath = new Map<string, number>();
  private inFlight = 0;
  private maxInFlight = 0;
  private rateLimited = 0;
  private arrivals: number[] = [];
  private lastHeaders: IncomingHttpHeaders = {};
  private lastBody: unknown = undefined;
  private httpVersions = new Map<string, number>();

  constructor(private readonly maxArrivals: number) {}

  /** A request arrived; pair with `leave()` when its response closes. */
  arrive(path: string, httpVersion: string, now: number): void {
    this.requests++;
    this.byPath.set(path, (this.byPath.get(path) ?? 0) + 1);
    this.httpVersions.set(httpVersion, (this.httpVersions.get(httpVersion) ?? 0) + 1);
    this.inFlight++;
    if (this.inFlight > this.maxInFlight) this.maxInFlight = this.inFlight;
    // Drop the older half when full: amortised O(1), memory bounded.
    if (this.arrivals.length >= this.maxArrivals) this.arrivals.splice(0, Math.max(1, this.arrivals.length >> 1));
    this.arrivals.push(now);
  }

  leave(): void {
    this.inFlight--;
  }

  received(headers: IncomingHttpHeaders, body: unknown): void {
    this.lastHeaders = headers;
    this.lastBody = body;
  }

  rejectedByLimiter(): void {
    this.rateLimited++;
  }

  /** Forgets everything but the requests still open (they will still `leave()`). */
  reset(): void {
    this.requests = 0;
    this.byPath = new Map();
    this.maxInFlight = this.inFlight;
    this.rateLimited = 0;
    this.arrivals = [];
    this.lastHeaders = {};
    this.lastBody = undefined;
    this.httpVersions = new Map();
  }

  snapshot(): MockStats {
    const lastHeaders: Record<string, string> = {};
    for (const [name, value] of Object.entries(this.lastHeaders)) {
      if (value === undefined || name.startsWith(':')) continue;
      lastHeaders[name] = Array.isArray(value) ? value.join(', ') : value;
    }
    return {
      requests: this.requests,
      byPath: Object.fromEntries(this.byPath),
      inFlight: this.inFlight,
      maxInFlight: this.maxInFlight,
      rateLimited: this.rateLimited,
      arrivals: this.arrivals.slice(),
      lastHeaders,
      lastBody: this.lastBody,
      httpVersions: Object.fromEntries(this.httpVersions),
    };
  }
}
