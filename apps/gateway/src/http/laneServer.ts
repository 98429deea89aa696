// The server the gateway listens on when the lean front is on: the one Fastify
// would make for the same options (node:http, or HTTP/2 over TLS with HTTP/1.1
// allowed; the same keep-alive, request, connection and HTTP/2 session timeouts,
// read from Fastify's normalised options), its listener the lean front's
// (fastLane.ts), which hands every request it does not take to Fastify's.
// Fastify calls the factory once per address it binds.

import { type Server, createServer } from 'node:http';
import { type Http2SecureServer, createSecureServer } from 'node:http2';
import type { FastLane, Listener } from './fastLane.js';
import type { SecureOptions } from './gatewayTls.js';

export type LaneServer = Server | Http2SecureServer;

function timeout(opts: Record<string, unknown>, key: string, fallback: number): number {
  const v = opts[key];
  return typeof v === 'number' ? v : fallback;
}

/** A Fastify serverFactory: (Fastify's listener, Fastify's options) => the server. */
export function laneServerFactory(lane: FastLane, tls: SecureOptions | undefined): (fastify: Listener, opts: Record<string, unknown>) => LaneServer {
  return (fastify, opts) => {
    const listener = lane.listener(fastify);
    if (tls === undefined) {
      const server = createServer(listener);
      server.keepAliveTimeout = timeout(opts, 'keepAliveTimeout', 72_000);
      server.requestTimeout = timeout(opts, 'requestTimeout', 0);
      const perSocket = timeout(opts, 'maxRequestsPerSocket', 0);
      if (perSocket > 0) server.maxRequestsPerSocket = perSocket;
      server.setTimeout(timeout(opts, 'connectionTimeout', 0));
      return server;
    }
    // The compat API gives HTTP/2 requests the HTTP/1 surface the lane and Fastify read.
    const server = createSecureServer({ allowHTTP1: true, ...tls }, listener as unknown as Parameters<typeof createSecureServer>[1]);
    const sessionMs = timeout(opts, 'http2SessionTimeout', 72_000);
    server.on('session', (session) => {
      session.setTimeout(sessionMs, () => { session.close(); });
    });
    server.setTimeout(timeout(opts, 'connectionTimeout', 0));
    return server;
  };
}
