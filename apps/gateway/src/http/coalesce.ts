// Coalesced socket writes for streamed responses. An upstream read or an engine
// step often yields several chunks in the same tick: they are appended to one
// string, which a single `res.write` sends on the next tick (one buffer, one
// syscall, instead of a write request per chunk gathered into a writev). The end
// of the stream sends whatever is pending with its own last bytes.

import type { ServerResponse } from 'node:http';

function flush(w: CoalescedWriter): void {
  w.flush();
}

export class CoalescedWriter {
  private pending = '';

  constructor(private readonly res: ServerResponse) {}

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
    if (!this.res.destroyed) this.res.write(data);
  }

  /** Ends the response with what is pending followed by `data`. */
  end(data: string): void {
    const all = this.pending + data;
    this.pending = '';
    this.res.end(all);
  }
}
