// One request/response in flight, and the only code that writes a response to the wire.
// It applies the delivery-side faults of a Behavior: latency before headers, hang, an
// injected error, pacing between SSE events, and cutting the connection after N events.
// Invariants: nothing is written after the client went away (every timer is cleared on
// 'close'), and the fault-free path writes headers and body with one writeHead + end.

import type { OutgoingHttpHeaders } from 'node:http';
import { injectedStatus, type Behavior } from './behavior.js';
import { renderError, type ErrorDetail, type Provider } from './errors.js';
import type { Rendered } from './render.js';

/** What both `http.ServerResponse` and `http2.Http2ServerResponse` offer. */
export interface ResponseLike {
  writeHead(statusCode: number, headers: OutgoingHttpHeaders): unknown;
  write(chunk: string, callback?: () => void): boolean;
  end(chunk: string): unknown;
  once(event: 'close', listener: () => void): unknown;
}

export interface RetryHint {
  readonly seconds?: number | undefined;
  readonly ms?: number | undefined;
}

const JSON_TYPE = 'application/json';
const SSE_TYPE = 'text/event-stream; charset=utf-8';

export class Exchange {
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly requestIdHeader: string;

  constructor(
    private readonly res: ResponseLike,
    /** Drops the connection (HTTP/1.1: the socket; HTTP/2: the stream) after flushing. */
    private readonly kill: () => void,
    readonly provider: Provider,
    readonly requestId: string,
    onClose: () => void,
  ) {
    this.requestIdHeader = provider === 'anthropic' ? 'request-id' : 'x-request-id';
    res.once('close', () => {
      this.closed = true;
      if (this.timer !== undefined) clearTimeout(this.timer);
      this.timer = undefined;
      onClose();
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Runs `fn` after `ms` unless the client has gone by then. */
  after(ms: number, fn: () => void): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.closed) fn();
    }, ms);
  }

  sendJson(status: number, body: string, retry?: RetryHint): void {
    if (this.closed) return;
    const headers: OutgoingHttpHeaders = {
      'content-type': JSON_TYPE,
      'content-length': Buffer.byteLength(body),
      [this.requestIdHeader]: this.requestId,
    };
    if (retry?.seconds !== undefined) headers['retry-after'] = String(retry.seconds);
    if (retry?.ms !== undefined) headers['retry-after-ms'] = String(retry.ms);
    this.res.writeHead(status, headers);
    this.res.end(body);
  }

  sendError(status: number, detail: ErrorDetail, retry?: RetryHint): void {
    this.sendJson(status, renderError(this.provider, status, detail, this.requestId), retry);
  }

  /**
   * Answers under `behavior`: waits `latencyMs`, then hangs, or sends the injected error,
   * or sends what `produce` renders (400 when it throws the given input error type).
   */
  run(behavior: Behavior, produce: () => Rendered, onProduceError: (error: unknown) => void): void {
    const latency = behavior.latencyMs ?? 0;
    const go = (): void => {
      if (behavior.hang === true) return;
      const status = injectedStatus(behavior);
      if (status !== undefined) {
        const detail = { errorType: behavior.errorType, message: behavior.errorMessage, param: behavior.errorParam };
        this.sendError(status, detail, { seconds: behavior.retryAfterSeconds, ms: behavior.retryAfterMs });
        return;
      }
      let rendered: Rendered;
      try {
        rendered = produce();
      } catch (error) {
        onProduceError(error);
        return;
      }
      this.deliver(rendered, behavior);
    };
    if (latency > 0) this.after(latency, go);
    else go();
  }

  private deliver(rendered: Rendered, behavior: Behavior): void {
    const cutAfter = behavior.disconnectAfterChunks;
    switch (rendered.kind) {
      case 'json':
        if (cutAfter === undefined) {
          this.sendJson(200, rendered.body);
          return;
        }
        this.res.writeHead(200, { 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(rendered.body), [this.requestIdHeader]: this.requestId });
        this.res.write(rendered.body.slice(0, rendered.body.length >> 1), () => {
          this.kill();
        });
        return;
      case 'sse':
        this.stream(rendered.events, behavior.chunkDelayMs ?? 0, cutAfter, behavior.burstChunks ?? 1);
        return;
      default: {
        const never: never = rendered;
        throw new Error(`unknown rendering ${JSON.stringify(never)}`);
      }
    }
  }

  private stream(events: readonly string[], delayMs: number, cutAfter: number | undefined, burst: number): void {
    const headers = { 'content-type': SSE_TYPE, 'cache-control': 'no-cache', [this.requestIdHeader]: this.requestId };
    if (delayMs === 0 && cutAfter === undefined) {
      const body = events.join('');
      this.res.writeHead(200, { ...headers, 'content-length': Buffer.byteLength(body) });
      this.res.end(body);
      return;
    }
    this.res.writeHead(200, headers);
    let next = 0;
    const step = (): void => {
      while (!this.closed) {
        if (next >= events.length) {
          this.res.end('');
          return;
        }
        if (cutAfter === 0) {
          this.kill();
          return;
        }
        const event = events[next] ?? '';
        next++;
        if (cutAfter !== undefined && next >= cutAfter && next < events.length) {
          // Cut only once this event is flushed, so the client sees exactly N events.
          this.res.write(event, () => {
            this.kill();
          });
          return;
        }
        this.res.write(event);
        if (delayMs > 0 && next < events.length && next >= burst) {
          this.after(delayMs, step);
          return;
        }
      }
    };
    step();
  }
}
