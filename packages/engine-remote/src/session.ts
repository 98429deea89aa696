// A remote session: one pooled HTTP client per replica (HTTP/2 when the upstream
// offers it over TLS, keep-alive HTTP/1.1 otherwise) and the credentials it sends.
// An HTTP/2 connection carries up to H2_STREAMS requests at once; an HTTP/1.1 one
// carries one (no pipelining: a streamed answer would hold up those behind it).
// Credentials are read when the session opens, so a rebuilt session (after a 401)
// picks up a rotated key.

import type { TLSSocket } from 'node:tls';
import { Client, Pool, buildConnector } from 'undici';
import type { DeploymentSpec } from '@inference/core';

export interface Credentials {
  /** The API key, or undefined for upstreams that need none. */
  readonly apiKey: string | undefined;
}

/** Supplies credentials; the gateway's config module reads the environment. */
export type CredentialSource = (spec: DeploymentSpec) => Credentials;

export interface RemoteSession {
  readonly pool: Pool;
  /** Path prefix of the endpoint (e.g. '/v1'). */
  readonly basePath: string;
  readonly credentials: Credentials;
  readonly generation: number;
}

export interface SessionOptions {
  /** Extra TLS options (e.g. a test CA). */
  readonly tls?: { ca?: string | Buffer };
}

/**
 * Requests one HTTP/2 connection carries at once (a common SETTINGS_MAX_CONCURRENT_STREAMS
 * of providers). Without it each request takes a connection (and a TLS session) of
 * its own, and a replica holds no more open streams than its pool has connections.
 */
export const H2_STREAMS = 100;

export function openSession(spec: DeploymentSpec, credentials: CredentialSource, generation: number, options: SessionOptions = {}): RemoteSession {
  const endpoint = new URL(spec.endpoint ?? 'http://127.0.0.1');
  const tls: buildConnector.BuildOptions = { timeout: spec.remote.timeouts.connectMs, allowH2: true };
  if (options.tls?.ca !== undefined) tls.ca = options.tls.ca;
  const connector = buildConnector(tls);
  const pool = new Pool(endpoint.origin, {
    allowH2: true,
    connections: Math.max(1, Math.min(spec.remote.maxConcurrent, 256)),
    pipelining: 1,
    keepAliveTimeout: 30_000,
    // Each connection's concurrency follows the protocol its TLS handshake chose.
    factory: (origin, opts) => {
      const client: Client = new Client(origin, {
        ...opts,
        connect: (info, done) => {
          connector(info, (err, socket) => {
            if (err !== null) {
              done(err, null);
              return;
            }
            client.pipelining = (socket as Partial<TLSSocket>).alpnProtocol === 'h2' ? H2_STREAMS : 1;
            done(null, socket);
          });
        },
      });
      return client;
    },
  });
  return { pool, basePath: endpoint.pathname.replace(/\/+$/, ''), credentials: credentials(spec), generation };
}

export async function closeSession(s: RemoteSession): Promise<void> {
  await s.pool.close().catch(() => s.pool.destroy());
}
