// The node-to-node listener on the advertise address, apart from the public
// Fastify server: HTTP/2 over mutual TLS when cluster.tls is set (the peer's
// certificate must chain to the cluster CA, or the handshake fails and nothing
// is read), else h2c (prior knowledge). Two routes:
// - POST /cluster/v1/run: a request another node routed to one of THIS node's
//   replicas. It runs on that local replica only (never forwarded again, so no
//   loops), streaming frames back (forwardCodec.ts); the peer closing the stream
//   aborts the work down to the engine.
// - POST /cluster/v1/admin: an admin write for the manager leader (clusterAdmin).
// With a shared secret configured every stream must carry it (timing-safe
// compare). Bodies are bounded; bad input answers an error frame, never a crash.
// Back-pressure (docs/flow-control.md): a run's stream is written only as fast as
// the peer reads it. When a write answers false (the peer stopped reading, HTTP/2
// flow control holds the stream) the run's Flow is paused until 'drain', so the
// local sequence leaves the batch; the peer pauses its side when its own client
// falls behind (forwardClient.ts).

import { timingSafeEqual } from 'node:crypto';
import http2, { type Http2SecureServer, type Http2Server, type ServerHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import type { ReplicaEntry } from '@inference/actors';
import { Cancellation, Flow, InferenceError, type RunContext, type Tracing, toInferenceError } from '@inference/core';
import { type Frame, decodeBody, encodeFrame, errorFrame } from './forwardCodec.js';
import { BufferedStream, type StreamBuffers } from '../streamBuffers.js';
import type { TlsReloader } from '../tlsFiles.js';

export const RUN_PATH = '/cluster/v1/run';
export const ADMIN_PATH = '/cluster/v1/admin';
export const SECRET_HEADER = 'x-inference-cluster-secret';

export interface ForwardServerOptions {
  readonly host: string;
  readonly port: number;
  readonly bodyLimitBytes: number;
  readonly secret?: string | undefined;
  /** Mutual TLS against the cluster CA (cluster.tls). */
  readonly tls?: TlsReloader | undefined;
  /** This node's own replica by id (undefined: not here, or not local). */
  readonly localReplica: (id: string) => Promise<ReplicaEntry | undefined>;
  /** Applies an admin write as the leader; resolves with the JSON answer. */
  readonly admin: (body: string) => Promise<unknown>;
  /** Tracing, when on: a forwarded run continues the caller's trace (docs/tracing.md). */
  readonly tracing?: Tracing | undefined;
  /** The process's accounting of what streamed responses hold (metrics). */
  readonly streams?: StreamBuffers | undefined;
}

/** A forwarded run's output stream: paused (its Flow) while the peer does not read. */
class RunWriter extends BufferedStream {
  readonly flow = new Flow();

  constructor(private readonly stream: ServerHttp2Stream, private readonly streams: StreamBuffers | undefined) {
    super();
    if (streams !== undefined) {
      streams.add(this);
      stream.once('close', () => { streams.remove(this); });
    }
  }

  get buffered(): number {
    return this.stream.destroyed ? 0 : this.stream.writableLength;
  }

  get congested(): boolean {
    return this.flow.paused;
  }

  write(data: string): void {
    if (this.stream.destroyed) return;
    if (!this.stream.write(data) && !this.flow.paused) {
      this.flow.pause();
      this.stream.once('drain', this.onDrain);
    }
    this.streams?.sample(this);
  }

  private readonly onDrain = (): void => {
    this.flow.resume();
  };
}

function secretOk(expected: string | undefined, headers: IncomingHttpHeaders): boolean {
  if (expected === undefined) return true;
  const got = headers[SECRET_HEADER];
  if (typeof got !== 'string') return false;
  const a = Buffer.from(got);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

function readBody(stream: ServerHttp2Stream, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    stream.on('data', (d: Buffer) => {
      size += d.length;
      if (size > limit) {
        reject(new InferenceError('invalid_request', `forwarded body is larger than ${limit} bytes`));
        stream.pause();
        return;
      }
      parts.push(d);
    });
    stream.on('end', () => { resolve(Buffer.concat(parts).toString('utf8')); });
    stream.on('error', reject);
    stream.on('aborted', () => { reject(new InferenceError('internal', 'peer went away')); });
  });
}

export class ForwardServer {
  private readonly server: Http2Server | Http2SecureServer;
  private readonly streams = new Set<ServerHttp2Stream>();
  private readonly sessions = new Set<http2.ServerHttp2Session>();

  private constructor(private readonly options: ForwardServerOptions) {
    const tls = options.tls;
    if (tls === undefined) {
      this.server = http2.createServer({ maxSessionMemory: 64 });
    } else {
      const secure = http2.createSecureServer({ maxSessionMemory: 64, ...tls.current, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' });
      tls.onChange((m) => { secure.setSecureContext({ ...m }); });
      // A peer without a valid certificate fails the handshake; nothing to answer.
      secure.on('tlsClientError', () => undefined);
      this.server = secure;
    }
    this.server.on('stream', (stream, headers) => {
      this.streams.add(stream);
      stream.on('close', () => this.streams.delete(stream));
      stream.on('error', () => undefined);
      void this.handle(stream, headers);
    });
    this.server.on('sessionError', () => undefined);
    this.server.on('session', (session) => {
      this.sessions.add(session);
      session.on('close', () => this.sessions.delete(session));
    });
  }

  static async listen(options: ForwardServerOptions): Promise<ForwardServer> {
    const s = new ForwardServer(options);
    await new Promise<void>((resolve, reject) => {
      s.server.once('error', reject);
      s.server.listen(options.port, options.host, () => {
        s.server.off('error', reject);
        resolve();
      });
    });
    return s;
  }

  private async handle(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): Promise<void> {
    const send = (status: number, frame: Frame): void => {
      if (stream.destroyed || stream.closed) return;
      if (!stream.headersSent) stream.respond({ ':status': status, 'content-type': 'application/x-ndjson' });
      stream.end(encodeFrame(frame));
    };
    try {
      if (!secretOk(this.options.secret, headers)) throw new InferenceError('unauthorized', 'cluster secret missing or wrong');
      if (headers[':method'] !== 'POST') throw new InferenceError('not_found', 'no such route');
      const path = headers[':path'];
      const body = await readBody(stream, this.options.bodyLimitBytes);
      if (path === ADMIN_PATH) {
        const answer = await this.options.admin(body);
        if (stream.destroyed) return;
        stream.respond({ ':status': 200, 'content-type': 'application/json' });
        stream.end(JSON.stringify(answer));
        return;
      }
      if (path !== RUN_PATH) throw new InferenceError('not_found', 'no such route');
      const rid = headers['x-request-id'];
      await this.run(stream, body, typeof rid === 'string' ? rid.slice(0, 128) : 'forwarded', headers);
    } catch (e) {
      const err = toInferenceError(e);
      send(err.status, errorFrame(err));
    }
  }

  private async run(stream: ServerHttp2Stream, text: string, requestId: string, headers: IncomingHttpHeaders): Promise<void> {
    const body = decodeBody(text);
    const replica = await this.options.localReplica(body.replica);
    if (replica === undefined || replica.state !== 'serving' || !replica.runner.healthy()) {
      throw new InferenceError('engine_unavailable', `replica '${body.replica}' is not serving on this node`, { retryAfterMs: 1000 });
    }
    const abort = new Cancellation();
    const onClose = (): void => {
      abort.abort(new InferenceError('internal', 'peer cancelled the request'));
    };
    stream.on('close', onClose);
    const span = this.options.tracing?.start('forwarded run', headers, {
      'inference.replica.id': body.replica,
      'inference.request.id': requestId,
      'inference.deployment': replica.deployment,
    });
    const out = new RunWriter(stream, this.options.streams);
    const ctx: RunContext = span === undefined ? { requestId, signal: abort, flow: out.flow } : { requestId, signal: abort, flow: out.flow, trace: span };
    stream.respond({ ':status': 200, 'content-type': 'application/x-ndjson' });
    try {
      if (body.kind === 'embed') {
        const result = await replica.runner.embed(body.req, ctx);
        if (!stream.destroyed) stream.end(encodeFrame({ embedded: result }));
        return;
      }
      const tokens = await replica.runner.generate(body.req, ctx, (chunk) => {
        out.write(encodeFrame({ chunk }));
      });
      if (!stream.destroyed) stream.end(encodeFrame({ done: tokens }));
    } catch (e) {
      span?.fail(e);
      throw e;
    } finally {
      span?.end();
      stream.off('close', onClose);
    }
  }

  /** Streams open now (forwarded requests and admin calls from peers). */
  active(): number {
    return this.streams.size;
  }

  async close(): Promise<void> {
    for (const s of this.streams) s.close(http2.constants.NGHTTP2_CANCEL);
    // Peers keep their sessions open; close() would wait for them.
    for (const s of this.sessions) s.destroy();
    await new Promise<void>((resolve) => {
      this.server.close(() => { resolve(); });
    });
  }
}
