// A replica on another node as a ModelRunner: each request is one HTTP/2 stream
// to the owner node's forwarding listener (forwardServer.ts), over one h2c
// session per peer kept open between requests. Chunks stream back as they are
// produced; aborting the request's signal cancels the stream (RST_STREAM), which
// aborts the work on the owner. A peer that cannot be reached, or answers
// garbage, marks this replica unhealthy for a while so routing skips it, and the
// failure is `engine_unavailable` (retryable: the request path tries another
// replica before any output). Back-pressure (docs/flow-control.md): while the
// request's Flow is paused (its client is behind) the stream is not read, so HTTP/2
// flow control holds the owner's writes, and the owner pauses the sequence.

import http2, { type ClientHttp2Session } from 'node:http2';
import {
  type ChunkSink, type EmbeddingRequest, type EmbeddingResult, type GenerateRequest, InferenceError, type ModelRunner, type ReplicaLoad, type RunContext,
  type Tokens,
  toInferenceError,
} from '@inference/core';
import { type ForwardBody, type Frame, decodeFrame, frameError } from './forwardCodec.js';
import { RUN_PATH, SECRET_HEADER } from './forwardServer.js';
import type { TlsReloader } from '../tlsFiles.js';

/** How long a replica whose node could not be reached is skipped by routing. */
export const UNHEALTHY_MS = 3000;
const CONNECT_TIMEOUT_MS = 2000;

/** One session per peer address (h2c, or HTTP/2 over mutual TLS), re-opened after it closes or fails. */
export class PeerPool {
  private readonly sessions = new Map<string, ClientHttp2Session>();
  private closed = false;

  constructor(
    readonly secret: string | undefined,
    /** Mutual TLS to peers (cluster.tls): their certificate is checked against the cluster CA, ours is shown. */
    private readonly tls?: TlsReloader,
  ) {}

  session(address: string): ClientHttp2Session {
    if (this.closed) throw new InferenceError('engine_unavailable', 'this node is shutting down', { retryAfterMs: 1000 });
    const have = this.sessions.get(address);
    if (have !== undefined && !have.closed && !have.destroyed) return have;
    const m = this.tls?.current;
    const s = m === undefined ? http2.connect(`http://${address}`) : http2.connect(`https://${address}`, { ...m, minVersion: 'TLSv1.2' });
    s.on('error', () => undefined);
    s.on('close', () => {
      if (this.sessions.get(address) === s) this.sessions.delete(address);
    });
    // A peer that accepts nothing (host gone without a reset) must not hold requests.
    const timer = setTimeout(() => {
      if (!s.connecting) return;
      s.destroy(new Error(`connect to ${address} timed out`));
    }, CONNECT_TIMEOUT_MS);
    s.once('connect', () => { clearTimeout(timer); });
    s.once('close', () => { clearTimeout(timer); });
    s.unref();
    this.sessions.set(address, s);
    return s;
  }

  /**
   * Drops a peer's session (it left the cluster, or moved). Streams already on it
   * finish: a member entry also vanishes for a moment while its node re-establishes
   * its lease after an etcd outage, and the requests in flight to it must not fail
   * for that. A peer that is really gone fails them by itself (socket closed).
   */
  forget(address: string): void {
    const s = this.sessions.get(address);
    this.sessions.delete(address);
    if (s !== undefined && !s.closed && !s.destroyed) s.close();
  }

  close(): void {
    this.closed = true;
    for (const s of this.sessions.values()) s.destroy();
    this.sessions.clear();
  }
}

function unreachable(node: string, why: string): InferenceError {
  return new InferenceError('engine_unavailable', 'a replica on another node could not be reached', { diagnostic: `node ${node}: ${why}`, retryAfterMs: 1000 });
}

export class ForwardingRunner implements ModelRunner {
  private inflight = 0;
  private unhealthyUntil = 0;

  constructor(
    readonly id: string,
    readonly deployment: string,
    /** The owner node and the replica's id there. */
    readonly node: string,
    private readonly remoteId: string,
    private address: string,
    private readonly peers: PeerPool,
    /** The owner's last published load (capacity for status; outstanding adds to ours). */
    private published: ReplicaLoad = { outstanding: 0, queued: 0, capacity: 0 },
  ) {}

  update(address: string, load: ReplicaLoad | undefined): void {
    if (address !== this.address) this.unhealthyUntil = 0;
    this.address = address;
    if (load !== undefined) this.published = load;
  }

  generate(req: GenerateRequest, ctx: RunContext, sink: ChunkSink): Promise<Tokens> {
    return this.call({ replica: this.remoteId, kind: 'generate', req }, ctx, sink).then((f) => {
      if (!('done' in f)) throw unreachable(this.node, 'expected a done frame');
      return f.done;
    });
  }

  embed(req: EmbeddingRequest, ctx: RunContext): Promise<EmbeddingResult> {
    return this.call({ replica: this.remoteId, kind: 'embed', req }, ctx, () => undefined).then((f) => {
      if (!('embedded' in f)) throw unreachable(this.node, 'expected an embedded frame');
      return f.embedded;
    });
  }

  load(): ReplicaLoad {
    return { outstanding: this.inflight, queued: 0, capacity: this.published.capacity };
  }

  healthy(): boolean {
    return Date.now() >= this.unhealthyUntil;
  }

  stop(): Promise<void> {
    return Promise.resolve();
  }

  private markUnhealthy(): void {
    this.unhealthyUntil = Date.now() + UNHEALTHY_MS;
  }

  /** Runs one stream; resolves with the final frame (done/embedded), rejects with a taxonomy error. */
  private call(body: ForwardBody, ctx: RunContext, sink: ChunkSink): Promise<Frame> {
    if (ctx.signal.aborted) return Promise.reject(toInferenceError(ctx.signal.reason));
    this.inflight++;
    return new Promise<Frame>((resolve, reject) => {
      let settled = false;
      let answered = false;
      let buf = '';
      // The forwarded hop's client span, when traced; the owner node continues the trace under it.
      const hop = ctx.trace?.child(
        `forward ${this.node}`,
        { 'inference.node': this.node, 'inference.replica.id': this.remoteId, 'inference.deployment': this.deployment },
        'client',
      );
      let unwatch: (() => void) | undefined;
      const finish = (f: Frame | InferenceError): void => {
        if (settled) return;
        settled = true;
        unwatch?.();
        this.inflight--;
        if (hop !== undefined) {
          if (f instanceof InferenceError) hop.fail(f);
          hop.end();
        }
        ctx.signal.removeEventListener('abort', onAbort);
        if (f instanceof InferenceError) reject(f);
        else resolve(f);
      };
      const fail = (why: string): void => {
        // Nothing came back: the node is unreachable; skip it until it proves otherwise.
        if (!answered) this.markUnhealthy();
        finish(unreachable(this.node, why));
      };
      let session: ClientHttp2Session;
      try {
        session = this.peers.session(this.address);
      } catch (e) {
        finish(toInferenceError(e));
        return;
      }
      const headers: http2.OutgoingHttpHeaders = { ':method': 'POST', ':path': RUN_PATH, 'content-type': 'application/json', 'x-request-id': ctx.requestId };
      if (this.peers.secret !== undefined) headers[SECRET_HEADER] = this.peers.secret;
      if (hop !== undefined) {
        const tc: Record<string, string> = {};
        hop.inject(tc);
        Object.assign(headers, tc);
      }
      let stream: http2.ClientHttp2Stream;
      try {
        stream = session.request(headers);
      } catch (e) {
        fail(e instanceof Error ? e.message : String(e));
        return;
      }
      const onAbort = (): void => {
        stream.close(http2.constants.NGHTTP2_CANCEL);
        finish(toInferenceError(ctx.signal.reason));
      };
      ctx.signal.addEventListener('abort', onAbort, { once: true });
      const flow = ctx.flow;
      if (flow !== undefined) {
        unwatch = flow.onChange((paused) => {
          if (paused) stream.pause();
          else stream.resume();
        });
        if (flow.paused) stream.pause();
      }
      stream.setEncoding('utf8');
      stream.on('response', () => { answered = true; });
      stream.on('data', (d: string) => {
        buf += d;
        for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line === '') continue;
          let f: Frame;
          try {
            f = decodeFrame(line);
          } catch (e) {
            this.markUnhealthy();
            stream.close(http2.constants.NGHTTP2_CANCEL);
            finish(toInferenceError(e));
            return;
          }
          if ('chunk' in f) {
            if (!settled) sink(f.chunk);
          } else if ('error' in f) {
            finish(frameError(f.error));
          } else {
            finish(f);
          }
        }
      });
      stream.on('error', (e: Error) => { fail(e.message); });
      stream.on('close', () => { fail(answered ? 'stream ended before the answer' : 'stream closed'); });
      stream.end(JSON.stringify(body));
    });
  }
}
