// CORS for browser clients (server.cors.origins): a request whose Origin is
// listed (or any, with '*') gets Access-Control-Allow-Origin echoing it, so a
// browser lets the page read the answer, errors included; a preflight
// (OPTIONS with Access-Control-Request-Method) is answered here with 204 and
// the methods and headers the API takes, before authentication (browsers send
// preflights without credentials). An origin not listed gets no CORS headers,
// and its browser refuses the answer. Runs as the first onRequest hook.

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

export function registerCors(app: FastifyInstance, cors: CorsConfig): void {
  const any = cors.origins.includes('*');
  const listed = new Set(cors.origins);
  app.addHook('onRequest', async (req, reply) => {
    void reply.header('vary', 'origin');
    const origin = req.headers.origin;
    if (typeof origin !== 'string') return;
    const preflight = req.method === 'OPTIONS' && typeof req.headers['access-control-request-method'] === 'string';
    if (!any && !listed.has(origin)) {
      // No CORS headers: the browser refuses. A preflight still ends here (no route answers OPTIONS).
      if (preflight) return reply.code(204).send();
      return;
    }
    void reply.header('access-control-allow-origin', origin);
    if (!preflight) {
      void reply.header('access-control-expose-headers', EXPOSED);
      return;
    }
    const asked = req.headers['access-control-request-headers'];
    const headers = typeof asked === 'string' && asked.length <= MAX_ECHO && /^[A-Za-z0-9_, -]*$/.test(asked) ? asked : DEFAULT_HEADERS;
    return reply.code(204)
      .header('access-control-allow-methods', METHODS)
      .header('access-control-allow-headers', headers)
      .header('access-control-max-age', MAX_AGE_SECONDS)
      .send();
  });
}
