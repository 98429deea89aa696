// The per-request log of the lean front (fastLane.ts), in the shape Fastify's
// logger writes for every other route: an "incoming request" line when the
// request is taken and a "request completed" line (or "request aborted", when the
// client went away first) when its response closes, both keyed by the request id.
// No header is logged, so no key can reach the log (docs/security.md).

import type { IncomingMessage, ServerResponse } from 'node:http';

/** What the lane needs of a logger (pino's, as Fastify's `app.log` is). */
export interface LaneLog {
  info(obj: object, msg: string): void;
}

export function logExchange(log: LaneLog, reqId: string, req: IncomingMessage, res: ServerResponse): void {
  const t0 = performance.now();
  const socket = req.socket as IncomingMessage['socket'] | null;
  log.info({
    reqId,
    req: { method: req.method, url: req.url, host: req.headers.host, remoteAddress: socket?.remoteAddress, remotePort: socket?.remotePort },
  }, 'incoming request');
  res.once('close', () => {
    const msg = res.writableFinished ? 'request completed' : 'request aborted';
    log.info({ reqId, res: { statusCode: res.statusCode }, responseTime: performance.now() - t0 }, msg);
  });
}
