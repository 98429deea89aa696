// HTTPS on the client listener (server.tls): the options Fastify's HTTP/2 secure
// server takes (ALPN h2 with HTTP/1.1 allowed), the context a reload swaps in
// (setSecureContext: new connections get it, open ones keep theirs), and, when
// client certificates are optional, the hook that refuses a request whose
// connection presented one that does not verify against the client CA.

import type { TLSSocket } from 'node:tls';
import type { FastifyInstance } from 'fastify';
import { InferenceError, openAIErrorBody } from '@inference/core';
import type { GatewayTls } from '../apiGatewayActor.js';

export interface SecureOptions {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
  requestCert: boolean;
  rejectUnauthorized: boolean;
  minVersion: 'TLSv1.2';
}

export function secureContextOf(tls: GatewayTls): { cert: Buffer; key: Buffer; ca?: Buffer } {
  const m = tls.reloader.current;
  return { cert: m.cert, key: m.key, ...(m.ca === undefined ? {} : { ca: m.ca }) };
}

export function httpsOptions(tls: GatewayTls): SecureOptions {
  const withCa = tls.reloader.current.ca !== undefined;
  return { ...secureContextOf(tls), requestCert: withCa, rejectUnauthorized: withCa && tls.requireClientCert, minVersion: 'TLSv1.2' };
}

/** requireClientCert: false: true when the connection presented a certificate that does not verify (none at all is fine). */
export function badClientCert(socket: TLSSocket | null): boolean {
  if (socket === null || socket.authorized) return false;
  return Object.keys(socket.getPeerCertificate()).length > 0;
}

/** requireClientCert: false: no certificate is fine, a certificate that does not verify is not. */
export function registerOptionalClientCert(app: FastifyInstance): void {
  app.addHook('onRequest', async (req, reply) => {
    if (!badClientCert(req.raw.socket as TLSSocket | null)) return;
    const e = new InferenceError('unauthorized', 'the client certificate is not signed by the configured client CA');
    return reply.code(e.status).type('application/json').send(openAIErrorBody(e));
  });
}
