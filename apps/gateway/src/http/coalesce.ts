// Coalesced socket writes for streamed responses. An upstream read or an engine
// step often yields several chunks in the same turn of the event loop: they are
// appended to one string, which a single `res.write` sends once the turn's
// promise jobs have run (setImmediate; one buffer, one syscall, instead of a
// write request per chunk gathered into a writev). The end of the stream sends
// whatever is pending with its own last bytes, so a stream whose last chunk and
// end come in the same turn (an upstream answer read in one piece) leaves in one
// write instead of two.
//
// Back-pressure (docs/flow-control.md): when `res.write` answers false (the
// client reads more slowly than the output comes), the request's flow is paused
// until 'drain', and the engine holds back that request only. A response that
// stays stuck longer than `stallMs` is destroyed: the request is then cancelled
// like one whose client went away.

import type { ServerResponse } from 'node:http';
import type { Flow } from '@inference/core';
import { BufferedStream, type StreamBuffers } from '@inference/runtime';

function flush(w: CoalescedWriter): void {
  w.flush();
}

/** The writer of a response registered with StreamBuffers, kept on the response for its 'close' listener. */
const WRITER = Symbol('coalescedWriter');
type WithWriter = ServerResponse & { [WRITER]?: CoalescedWriter };

/**
 * One 'close' listener for every registered response (EventEmitter calls it with the
 * response as `this`): no closure, once() wrapper or state object per stream.
 */
function closed(this: WithWriter): void {
  const w = this[WRITER];
  if (w !== undefined) w.options.buffers?.remove(w);
}

export interface WriterOptions {
  /** Paused while the socket's buffer is full, resumed on 'drain'. */
  readonly flow?: Flow;
  /** How long a full buffer may stay full before the response is destroyed (absent: forever). */
  readonly stallMs?: number;
  /** The gateway's accounting of what streamed responses hold (metrics). */
  readonly buffers?: StreamBuffers;
}

export class CoalescedWriter extends BufferedStream {
  private pending = '';
  private waiting = false;
  private stall: NodeJS.Timeout | undefined;
  /** The 'drain'/'close' listener, made the first time the socket's buffer fills (most streams never need it). */
  private onDrain: (() => void) | undefined;

  constructor(private readonly res: ServerResponse, readonly options: WriterOptions = {}) {
    super();
    const buffers = options.buffers;
    if (buffers !== undefined) {
      buffers.add(this);
      (res as WithWriter)[WRITER] = this;
      // 'close' fires once per response.
      res.on('close', closed);
    }
  }

  /** Whether the client's socket buffer is full (writes wait for 'drain'). */
  get congested(): boolean {
    return this.waiting;
  }

  /** Bytes written and not yet taken by the kernel (the response's and its socket's buffers) plus the pending chunk. */
  get buffered(): number {
    const held: unknown = this.res.destroyed ? 0 : this.res.writableLength;
    return (typeof held === 'number' ? held : 0) + Buffer.byteLength(this.pending);
  }

  write(data: string): void {
    if (data === '') return;
    if (this.pending === '') setImmediate(flush, this);
    this.pending += data;
  }

  /** Sends what is pending (a no-op once the response is gone). */
  flush(): void {
    const data = this.pending;
    if (data === '') return;
    this.pending = '';
    if (this.res.destroyed) return;
    if (!this.res.write(data)) this.hold();
    this.options.buffers?.sample(this);
  }

  /**
   * Ends the response with what is pending followed by `data`. A client that is
   * behind keeps the stall timer: the response is released once it is all written
   * ('finish'), or destroyed when that takes longer than stallMs.
   */
  end(data: string): void {
    const all = this.pending + data;
    this.pending = '';
    if (this.waiting && this.onDrain !== undefined) this.res.once('finish', this.onDrain);
    else this.release();
    this.res.end(all);
  }

  private hold(): void {
    if (this.waiting) return;
    this.waiting = true;
    this.options.flow?.pause();
    const onDrain = (this.onDrain ??= () => { this.release(); });
    this.res.once('drain', onDrain);
    this.res.once('close', onDrain);
    const stallMs = this.options.stallMs;
    if (stallMs !== undefined) {
      this.stall = setTimeout(() => {
        this.options.buffers?.stalled();
        this.res.destroy();
      }, stallMs);
      this.stall.unref();
    }
  }

  private release(): void {
    if (!this.waiting) return;
    this.waiting = false;
    clearTimeout(this.stall);
    this.stall = undefined;
    if (this.onDrain !== undefined) {
      this.res.off('drain', this.onDrain);
      this.res.off('close', this.onDrain);
      this.res.off('finish', this.onDrain);
    }
    this.options.flow?.resume();
  }
}
