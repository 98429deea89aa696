// Drain: what the HTTP edge does between "stop taking work" and "close". Once
// begun, /ready answers 503 at once (load balancers stop sending), every new
// request except the probes gets 503 `overloaded` with `connection: close`
// (HTTP/1.1 only: HTTP/2 forbids connection headers), and the requests already
// in flight (streams included) run to their end. `idle(ms)` resolves when none
// is left or the bound has passed. Once the server closes (`close()`), the probes
// get that 503 too: Fastify's own 503 while closing is off, so every answer is in
// the route's error shape (refusal.ts). See docs/config.md ("Shutdown",
// `server.drainTimeoutMs`).
//
// Invariant: `inFlight` counts responses accepted before the drain began and
// not yet closed; each is counted once and released once, on the raw
// response's 'close' (which fires for finished, failed and abandoned ones).

import type { ServerResponse } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { InferenceError } from '@inference/core';
import { pathOf, sendRefusal } from './refusal.js';

/** Routes that keep answering while draining (probes and scrapes). */
const PROBES = new Set(['/health', '/ready', '/metrics']);

export class Drain {
  private active = false;
  private shut = false;
  private count = 0;
  private readonly waiters = new Set<() => void>();

  get draining(): boolean {
    return this.active;
  }

  /** The server is closing: nothing is answered but the shutdown refusal. */
  get closing(): boolean {
    return this.shut;
  }

  get inFlight(): number {
    return this.count;
  }

  /** True for the paths that still answer while draining. */
  static isProbe(url: string): boolean {
    return PROBES.has(pathOf(url));
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

  /** The server closes: draining, and the probes are refused too. */
  close(): void {
    this.active = true;
    this.shut = true;
  }

  /** Whether a new request for `url` gets the shutdown refusal. */
  refuses(url: string): boolean {
    return this.shut || (this.active && !Drain.isProbe(url));
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

/**
 * The answer to a request `Drain.refuses`: 503 `overloaded` in the route's error
 * shape, with `connection: close` over HTTP/1.1 so the client takes its next
 * request elsewhere; never on HTTP/2, which forbids connection headers (Node would
 * drop it and print a warning).
 */
export function refuseShuttingDown(req: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (req.raw.httpVersionMajor !== 2) void reply.header('connection', 'close');
  return sendRefusal(req, reply, new InferenceError('overloaded', 'the server is shutting down'));
}
