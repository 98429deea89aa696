// Coalesced socket writes for streamed responses. An upstream read or an engine
// step often yields several chunks in the same tick: they are appended to one
// string, which a single `res.write` sends on the next tick (one buffer, one
// syscall, instead of a write request per chunk gathered into a writev). The end
// of the stream sends whatever is pending with its own last bytes.
//
// Back-pressure (docs/flow-control.md): when `res.write` answers false (the
// client reads more slowly than the output comes), the request's flow is paused
// until 'drain', and the engine holds back that request only. A response that
// stays stuck longer than `stallMs` is destroyed: the request is then cancelled
// like one whose client went away.

import type { ServerResponse } from 'node:http';
import type { Flow } from '@inference/core';

function flush(w: CoalescedWriter): void {
  w.flush();
}

export interface WriterOptions {
  /** Paused while the socket's buffer is full, resumed on 'drain'. */
  readonly flow?: Flow;
  /** How long a full buffer may stay full before the response is destroyed (absent: forever). */
  readonly stallMs?: number;
}

export class CoalescedWriter {
  private pending = '';
  private waiting = false;
  private stall: NodeJS.Timeout | undefined;
  private readonly flow: Flow | undefined;
  private readonly stallMs: number | undefined;
  /** The 'drain'/'close' listener, made the first time the socket's buffer fills (most streams never need it). */
  private onDrain: (() => void) | undefined;

  // The options are copied, not kept: an idle stream holds as few objects as it can (docs/benchmarks.md, idle streams).
  constructor(private readonly res: ServerResponse, options: WriterOptions = {}) {
    this.flow = options.flow;
    this.stallMs = options.stallMs;
  }

  /** Whether the client's socket buffer is full (writes wait for 'drain'). */
  get congested(): boolean {
    return this.waiting;
  }

  write(data: string): void {
    if (data === '') return;
    if (this.pending === '') process.nextTick(flush, this);
    this.pending += data;
  }

  /** Sends what is pending (a no-op once the response is gone). */
  flush(): void {
    const data = this.pending;
    if (data === '') return;
    this.pending = '';
    if (this.res.destroyed) return;
    if (!this.res.write(data)) this.hold();
  }

  /** Ends the response with what is pending followed by `data`. */
  end(data: string): void {
    const all = this.pending + data;
    this.pending = '';
    this.release();
    this.res.end(all);
  }

  private hold(): void {
    if (this.waiting) return;
    this.waiting = true;
    this.flow?.pause();
    const onDrain = (this.onDrain ??= () => { this.release(); });
    this.res.once('drain', onDrain);
    this.res.once('close', onDrain);
    const stallMs = this.stallMs;
    if (stallMs !== undefined) {
      this.stall = setTimeout(() => { this.res.destroy(); }, stallMs);
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
    }
    this.flow?.resume();
  }
}
