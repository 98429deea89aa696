// A remote session: one pooled HTTP client per replica (HTTP/2 when the upstream
// offers it over TLS, keep-alive HTTP/1.1 otherwise) and the credentials it sends.
// Credentials are read when the session opens, so a rebuilt session (after a 401)
// picks up a rotated key.

import { Pool } from 'undici';
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

export function openSession(spec: DeploymentSpec, credentials: CredentialSource, generation: number, options: SessionOptions = {}): RemoteSession {
  const endpoint = new URL(spec.endpoint ?? 'http://127.0.0.1');
  const connect: Record<string, unknown> = { timeout: spec.remote.timeouts.connectMs };
  if (options.tls?.ca !== undefined) connect.ca = options.tls.ca;
  const pool = new Pool(endpoint.origin, {
    allowH2: true,
    connections: Math.max(1, Math.min(spec.remote.maxConcurrent, 256)),
    pipelining: 1,
    keepAliveTimeout: 30_000,
    connect,
  });
  return { pool, basePath: endpoint.pathname.replace(/\/+$/, ''), credentials: credentials(spec), generation };
}

export async function closeSession(s: RemoteSession): Promise<void> {
  await s.pool.close().catch(() => s.pool.destroy());
}
