// Starting and stopping a mock upstream: a node:http server (HTTP/1.1, keep-alive) or, in
// TLS mode, node:http2's secure server with HTTP/1.1 fallback so an ALPN client gets real
// HTTP/2. Both transports feed the same Pipeline. close() destroys every open connection
// (hung requests included) so a test never waits on the mock.

import { readFile } from 'node:fs/promises';
import http, { IncomingMessage, ServerResponse } from 'node:http';
import http2, { type Http2ServerRequest, type Http2ServerResponse, type Http2Session } from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import type { Behavior } from './behavior.js';
import { handleControl } from './control.js';
import type { ResponseLike } from './exchange.js';
import { MOCK_CERT_PATH, MOCK_KEY_PATH } from './fixtures.js';
import { Pipeline, type PipelineOptions, type RequestLike } from './pipeline.js';
import type { MockStats } from './stats.js';

export interface MockUpstreamOptions {
  /** TCP port; 0 (the default) picks a free one. */
  port?: number;
  /** Interface to bind; default 127.0.0.1. */
  host?: string;
  /** HTTPS with HTTP/2 (ALPN h2, HTTP/1.1 fallback) using the fixture certificate. */
  tls?: boolean;
  /** Behaviors queued at start, consumed one per API request (FIFO). */
  defaultScript?: Behavior[];
  /** Behavior once the script is empty; default `{}` (answer normally). */
  defaultBehavior?: Behavior;
  /** When set, requests need `Authorization: Bearer <key>` (OpenAI) / `x-api-key: <key>` (Anthropic). */
  apiKey?: string;
  /** The mock's own limit: more than `rpm` requests in a sliding window get 429 + retry-after. */
  rpm?: number;
  /** Window of the rpm limiter; default 60 000 ms. */
  rpmWindowMs?: number;
  /** Models listed by GET /v1/models. */
  models?: string[];
  /** Arrival timestamps kept in stats (the newest); default 200 000. */
  maxArrivals?: number;
}

export interface MockUpstream {
  /** Base URL for SDK clients, ending with `/v1`. */
  readonly url: string;
  /** Scheme, host and port, without a path. */
  readonly origin: string;
  readonly port: number;
  /** Replaces the queue of scripted behaviors (consumed one per API request, FIFO). */
  setScript(behaviors: Behavior[]): void;
  /** The behavior applied once the script is empty. */
  setDefault(behavior: Behavior): void;
  /** Changes (or, with undefined, removes) the accepted API key, effective immediately. */
  setApiKey(key: string | undefined): void;
  /** Changes (or, with undefined, removes) the rpm limit; the window starts empty. */
  setRpm(rpm: number | undefined): void;
  /** Scripted behaviors not yet consumed. */
  scriptRemaining(): number;
  stats(): MockStats;
  resetStats(): void;
  /** resetStats() plus an empty script, the default behavior back to `{}`, a fresh rpm window. */
  reset(): void;
  /** Stops listening and destroys open connections; idempotent. */
  close(): Promise<void>;
}

function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::' || host === '') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

function listen(server: http.Server | http2.Http2SecureServer, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => {
      reject(error);
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Starts a mock upstream; resolves once it is listening. */
export async function startMockUpstream(opts: MockUpstreamOptions = {}): Promise<MockUpstream> {
  const pipeline = new Pipeline(opts satisfies PipelineOptions);
  const host = opts.host ?? '127.0.0.1';

  const dispatch = (req: RequestLike, res: ResponseLike, kill: () => void): void => {
    const url = req.url ?? '/';
    const query = url.indexOf('?');
    const path = query === -1 ? url : url.slice(0, query);
    if (path.startsWith('/_mock/')) handleControl(pipeline, req, res, path);
    else pipeline.handle(req, res, path, kill);
  };
  const onHttp1 = (req: IncomingMessage, res: ServerResponse): void => {
    dispatch(req, res, () => {
      // Flush what was queued (headers, the last event), then close: the client sees a
      // truncated body, not a clean end.
      res.flushHeaders();
      req.socket.destroySoon();
    });
  };

  const sockets = new Set<Socket>();
  const sessions = new Set<Http2Session>();
  let server: http.Server | http2.Http2SecureServer;
  if (opts.tls === true) {
    const [key, cert] = await Promise.all([readFile(MOCK_KEY_PATH), readFile(MOCK_CERT_PATH)]);
    type AnyRequest = Http2ServerRequest | IncomingMessage;
    const secure = http2.createSecureServer({ key, cert, allowHTTP1: true }, (req: AnyRequest, res: Http2ServerResponse | ServerResponse) => {
      if (res instanceof http2.Http2ServerResponse && req instanceof http2.Http2ServerRequest) {
        dispatch(req, res, () => {
          res.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
        });
      } else if (req instanceof IncomingMessage && res instanceof ServerResponse) {
        onHttp1(req, res);
      }
    });
    secure.on('session', (session: Http2Session) => {
      sessions.add(session);
      session.once('close', () => sessions.delete(session));
    });
    secure.on('secureConnection', (socket: Socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    });
    server = secure;
  } else {
    server = http.createServer(onHttp1);
  }
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  const port = await listen(server, opts.port ?? 0, host);
  const origin = `${opts.tls === true ? 'https' : 'http'}://${urlHost(host)}:${port}`;
  let closing: Promise<void> | undefined;

  return {
    url: `${origin}/v1`,
    origin,
    port,
    setScript: (behaviors) => {
      pipeline.setScript(behaviors);
    },
    setDefault: (behavior) => {
      pipeline.setDefault(behavior);
    },
    setApiKey: (key) => {
      pipeline.setApiKey(key);
    },
    setRpm: (rpm) => {
      pipeline.setRpm(rpm);
    },
    scriptRemaining: () => pipeline.scriptRemaining,
    stats: () => pipeline.stats.snapshot(),
    resetStats: () => {
      pipeline.stats.reset();
    },
    reset: () => {
      pipeline.reset();
    },
    close: () => {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((error) => {
          if (error !== undefined) reject(error);
          else resolve();
        });
        for (const session of sessions) session.destroy();
        for (const socket of sockets) socket.destroy();
      });
      return closing;
    },
  };
}
