// HTTP plumbing shared by provider adapters: a JSON POST on the session's pool
// whose body is read whole or chunk by chunk, cancelled by the client going or
// the total deadline, and non-2xx answers turned into taxonomy errors. Adapters
// add only their headers, paths and wire translation. A streamed answer is read
// only while the client keeps up (RunContext.flow).

import {
  type CancelSignal, type Deadline, type DeploymentSpec, type FlowSignal, InferenceError, type RunContext, type TraceSpan, deadlines,
} from '@inference/core';
import { type Dispatcher, util } from 'undici';
import type { RemoteSession } from '../session.js';
import { classifyStatus, classifyTransport } from '../upstreamErrors.js';
import { upstreamSpan } from '../upstreamTrace.js';

export type Json = Record<string, unknown>;

export interface CallOptions {
  readonly spec: DeploymentSpec;
  readonly session: RemoteSession;
  readonly ctx: RunContext;
}

/** The request's own abort reason (client gone, total deadline), if it fired. */
export function abortReason(signal: CancelSignal): InferenceError | undefined {
  if (!signal.aborted) return undefined;
  const r: unknown = signal.reason;
  return r instanceof InferenceError ? r : new InferenceError('internal', 'request aborted', { diagnostic: String(r) });
}

export function malformed(detail: string): InferenceError {
  return new InferenceError('upstream_error', 'the upstream provider sent a malformed response', { diagnostic: detail });
}

/** The error of a call that ran past the deployment's total timeout. */
function totalTimeout(totalMs: number): InferenceError {
  return new InferenceError('upstream_timeout', 'the upstream provider took too long', { diagnostic: `total timeout ${totalMs} ms` });
}

/** A streamed answer's body, chunk by chunk; returns true once it has all it needs (the rest is drained unread). */
export type ChunkReader = (bytes: Uint8Array) => boolean;

/**
 * After a streamed answer's reader has all it needs, how long the rest of the
 * response may take to end: then the connection is kept for the next call.
 * An upstream that keeps it open longer gets the connection closed.
 */
const DRAIN_GRACE_MS = 1000;

/**
 * One JSON POST upstream, on undici's dispatch API rather than `request()`: no
 * body stream object per call, and cancellation through the dispatch
 * controller instead of a signal handed to undici. (Measured on the mock
 * upstream: `request()` with a signal cost ~40 µs more per call and made each
 * young-generation GC ~5x longer.)
 *
 * A non-2xx answer is read whole and thrown as a taxonomy error. A 2xx answer's
 * body goes to `read` as it arrives when given (streams), and is otherwise
 * collected and returned as text. `signal` (the request's) aborts the call at any
 * stage, and the promise then rejects with its reason; so does the deployment's
 * total timeout, with upstream_timeout (one entry on the deadline wheel, held by
 * the call itself: no linked signal per call). Once the reader has enough, the
 * call resolves and the rest of the response is drained unread (DRAIN_GRACE_MS).
 *
 * The steps: build the request (`upstreamRequest`), dispatch it (`dispatch`), and
 * read the answer (`UpstreamCall`), whose status and failures are mapped to the
 * taxonomy by `statusError` and `transportError`.
 */
export function post(
  o: CallOptions, path: string, headers: Record<string, string>, body: Json, signal: CancelSignal, provider: string, read?: ChunkReader,
): Promise<string> {
  const traced = o.ctx.trace === undefined ? undefined : upstreamSpan(o.ctx.trace, o.spec, path, provider, headers);
  const request = upstreamRequest(o, path, traced === undefined ? headers : traced.headers, body);
  return new Promise<string>((resolve, reject) => {
    // Back-pressure of a streamed answer (docs/flow-control.md): the upstream read pauses with the client.
    const flow = read === undefined ? undefined : o.ctx.flow;
    const call = new UpstreamCall(signal, o.spec.remote.timeouts.totalMs, provider, read, flow, traced?.span, resolve, reject);
    if (call.begin()) dispatch(o.session, request, call);
  });
}

// --- Request building ---

/** The dispatch options of one JSON POST on the session's pool, with the deployment's first-byte and idle timeouts. */
function upstreamRequest(o: CallOptions, path: string, headers: Record<string, string>, body: Json): Dispatcher.DispatchOptions {
  const t = o.spec.remote.timeouts;
  return {
    path: `${o.session.basePath}${path}`,
    method: 'POST',
    headers,
    body: JSON.stringify(body),
    // A POST is sent on a connection busy with others only when marked so: HTTP/2 multiplexing (session.ts).
    // HTTP/1.1 connections still carry one request at a time (pipelining 1).
    idempotent: true,
    headersTimeout: t.firstByteMs,
    bodyTimeout: t.idleMs,
  };
}

// --- Dispatch ---

/** Hands the request to the pool; a synchronous refusal fails the call like a transport error. */
function dispatch(session: RemoteSession, request: Dispatcher.DispatchOptions, call: UpstreamCall): void {
  try {
    // undici's own callbacks, which its type marks deprecated in favour of the wrapped ones (see UpstreamCall).
    session.pool.dispatch(request, call);
  } catch (e) {
    call.fail(e);
  }
}

// --- Status and error mapping ---

/** A non-2xx answer, read whole, as its taxonomy error. */
function statusError(status: number, text: string, headers: Record<string, string | string[] | undefined>, provider: string): InferenceError {
  return classifyStatus(status, parseJson(text), headers, provider);
}

/** A failed call: the total timeout or the request's own abort reason when one fired, else the transport failure by the phase it broke in. */
function transportError(timedOut: InferenceError | undefined, signal: CancelSignal, e: unknown, status: number): InferenceError {
  return timedOut ?? abortReason(signal) ?? classifyTransport(e, status === 0 ? 'headers' : 'body');
}

// --- Body reading and streaming ---

type ResponseHeaders = Record<string, string | string[] | undefined>;

/**
 * One call's response, as undici's dispatch handler. A non-2xx answer, or any
 * answer when there is no reader, is collected whole; a streamed 2xx answer goes
 * to the reader chunk by chunk, paused while the client's flow is. The call
 * settles exactly once: on the answer's end, the reader having enough, a
 * failure, the request's abort or the total timeout; settling releases the flow
 * watch, the abort listener, the deadline and the span.
 *
 * It takes undici's own callbacks (onConnect, onHeaders, onData, onComplete,
 * onError), which undici's request calls directly: with the controller-style
 * ones (onRequestStart, onResponseStart, …) undici wraps every call in an
 * adapter and a controller, and parses the response headers into an object
 * for each answer, which only an error answer reads here (retry-after). Pausing
 * is onData's (or onHeaders') false; resuming calls the resume undici handed to onHeaders.
 */
class UpstreamCall {
  private abortUpstream: ((err?: Error) => void) | undefined;
  private aborted = false;
  private resumeUpstream: (() => void) | undefined;
  private settled = false;
  private status = 0;
  private responseHeaders: ResponseHeaders = {};
  /** Set when the body is collected whole rather than streamed to the reader. */
  private chunks: Uint8Array[] | undefined;
  private drain: Deadline | undefined;
  /** The total timeout, from the call's start until it settles. */
  private total: Deadline | undefined;
  private timedOut: InferenceError | undefined;
  /** Whether the upstream read is paused for the client's flow (onData then answers false). */
  private pausedByFlow = false;
  private unwatch: (() => void) | undefined;
  private readonly onAbort = (): void => {
    this.abort(this.signal.reason as Error);
    this.fail(this.signal.reason);
  };
  private readonly onTotal = (): void => {
    const err = (this.timedOut = totalTimeout(this.totalMs));
    this.abort(err);
    this.fail(err);
  };

  constructor(
    private readonly signal: CancelSignal,
    private readonly totalMs: number,
    private readonly provider: string,
    private readonly read: ChunkReader | undefined,
    private readonly flow: FlowSignal | undefined,
    private readonly span: TraceSpan | undefined,
    private readonly resolve: (text: string) => void,
    private readonly reject: (e: InferenceError) => void,
  ) {}

  /** Watches the flow and the abort signal; false when the request is already aborted (the call has then failed). */
  begin(): boolean {
    this.unwatch = this.flow?.onChange((paused) => { this.flowChanged(paused); });
    if (this.signal.aborted) {
      this.fail(this.signal.reason);
      return false;
    }
    this.signal.addEventListener('abort', this.onAbort);
    this.total = deadlines.add(this.totalMs, this.onTotal);
    return true;
  }

  fail(e: unknown): void {
    this.settle(transportError(this.timedOut, this.signal, e, this.status));
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abortUpstream = abort;
    if (this.settled) this.abort((this.timedOut ?? this.signal.reason as Error | undefined) ?? new InferenceError('internal', 'request ended'));
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    this.resumeUpstream = resume;
    if (statusCode < 200) return true;
    this.status = statusCode;
    // Only an error answer reads its headers (retry-after): a stream does not keep them for its whole life.
    if (statusCode >= 300) {
      this.responseHeaders = util.parseHeaders(rawHeaders);
      this.chunks = [];
    } else if (this.read === undefined) {
      this.chunks = [];
    }
    return !this.pausedByFlow;
  }

  onData(bytes: Buffer): boolean {
    if (this.settled) return true;
    if (this.chunks !== undefined) this.chunks.push(bytes);
    else this.stream(bytes);
    return !this.pausedByFlow;
  }

  onComplete(): void {
    this.drain?.cancel();
    if (this.settled) return;
    const text = this.chunks === undefined ? '' : Buffer.concat(this.chunks).toString('utf8');
    if (this.status >= 200 && this.status < 300) this.settle(undefined, text);
    else this.settle(statusError(this.status, text, this.responseHeaders, this.provider));
  }

  onError(e: Error): void {
    this.drain?.cancel();
    this.fail(e);
  }

  /** Aborts the upstream request once (before it is connected, onConnect does it). */
  private abort(reason: Error): void {
    const abort = this.abortUpstream;
    if (abort === undefined || this.aborted) return;
    this.aborted = true;
    abort(reason);
  }

  /** One chunk of a streamed answer to the reader; once it has enough, the call resolves and the rest drains. */
  private stream(bytes: Uint8Array): void {
    // The client reads slowly: stop reading the upstream until it catches up (onData answers false).
    if (this.flow?.paused === true) this.pausedByFlow = true;
    let enough: boolean;
    try {
      enough = this.read?.(bytes) ?? false;
    } catch (e) {
      const err = classifyTransport(e, 'body');
      this.settle(err);
      this.abort(err);
      return;
    }
    if (enough) {
      this.settle(undefined);
      this.drain = deadlines.add(DRAIN_GRACE_MS, () => { this.abort(new InferenceError('internal', 'upstream kept the response open after its end')); });
    }
  }

  private flowChanged(paused: boolean): void {
    if (this.abortUpstream === undefined || this.settled) return;
    if (paused) {
      this.pausedByFlow = true;
    } else if (this.pausedByFlow) {
      this.pausedByFlow = false;
      this.resumeUpstream?.();
    }
  }

  private settle(error: InferenceError | undefined, text?: string): void {
    if (this.settled) return;
    this.settled = true;
    this.unwatch?.();
    // What is left of the response is drained unread, whatever the client does.
    if (this.pausedByFlow) {
      this.pausedByFlow = false;
      this.resumeUpstream?.();
    }
    this.signal.removeEventListener('abort', this.onAbort);
    this.total?.cancel();
    if (this.span !== undefined) {
      if (this.status !== 0) this.span.set({ 'http.response.status_code': this.status });
      if (error !== undefined) this.span.fail(error);
      this.span.end();
    }
    if (error === undefined) this.resolve(text ?? '');
    else this.reject(error);
  }
}

/** The parsed text, or undefined when it is not JSON. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
