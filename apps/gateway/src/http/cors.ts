// CORS for browser clients (server.cors.origins): a request whose Origin is
// listed (or any, with '*') gets Access-Control-Allow-Origin echoing it, so a
// browser lets the page read the answer, errors included; a preflight
// (OPTIONS with Access-Control-Request-Method) is answered here with 204 and
// the methods and headers the API takes, before authentication (browsers send
// preflights without credentials). An origin not listed gets no CORS headers,
// and its browser refuses the answer. Runs as the first onRequest hook; the lean
// front of the generate routes (fastLane.ts) applies the same CorsPolicy. An
// actual request's headers are set on the raw response, so event streams, which
// write their own head, carry them too.

import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';

export interface CorsConfig {
  /** Exact origins (scheme://host[:port]) or '*' for any. */
  readonly origins: readonly string[];
}

const METHODS = 'GET, POST, PUT, DELETE, OPTIONS';
const DEFAULT_HEADERS = 'authorization, content-type, x-api-key, x-request-id, anthropic-version, anthropic-beta';
const EXPOSED = 'x-request-id, request-id, retry-after';
const MAX_AGE_SECONDS = '600';
/** A request-headers list longer than this is not echoed (the default list is sent instead). */
const MAX_ECHO = 1024;

/** Which origins may call, and the headers an actual (not preflight) request gets; both HTTP fronts use it. */
export class CorsPolicy {
  private readonly any: boolean;
  private readonly listed: ReadonlySet<string>;

  constructor(cors: CorsConfig) {
    this.any = cors.origins.includes('*');
    this.listed = new Set(cors.origins);
  }

  allows(origin: string): boolean {
    return this.any || this.listed.has(origin);
  }

  /**
   * Sets an actual request's CORS headers on the raw response, so that every
   * answer carries them: those Fastify sends, and event streams, which write
   * their own head.
   */
  applyActual(res: ServerResponse, origin: unknown): void {
    res.setHeader('vary', 'origin');
    if (typeof origin !== 'string' || !this.allows(origin)) return;
    res.setHeader('access-control-allow-origin', origin);
    res.setHeader('access-control-expose-headers', EXPOSED);
  }
}

export function registerCors(app: FastifyInstance, cors: CorsConfig): void {
  const policy = new CorsPolicy(cors);
  app.addHook('onRequest', async (req, reply) => {
    const origin = req.headers.origin;
    const preflight = req.method === 'OPTIONS' && typeof origin === 'string' && typeof req.headers['access-control-request-method'] === 'string';
    if (!preflight) {
      policy.applyActual(reply.raw, origin);
      return;
    }
    void reply.header('vary', 'origin');
    // Not listed: no CORS headers, the browser refuses. The preflight still ends here (no route answers OPTIONS).
    if (!policy.allows(origin)) return reply.code(204).send();
    const asked = req.headers['access-control-request-headers'];
    const headers = typeof asked === 'string' && asked.length <= MAX_ECHO && /^[A-Za-z0-9_, -]*$/.test(asked) ? asked : DEFAULT_HEADERS;
    return reply.code(204)
      .header('access-control-allow-origin', origin)
      .header('access-control-allow-methods', METHODS)
      .header('access-control-allow-headers', headers)
      .header('access-control-max-age', MAX_AGE_SECONDS)
      .send();
  });
}
