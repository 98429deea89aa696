// Incremental Server-Sent Events parser: feed it byte chunks as they arrive, get
// back complete events. Handles events split across chunks, CRLF or LF line ends,
// multi-line data fields and comments. Holds at most one partial event.

export interface SseEvent {
  event: string | undefined;
  data: string;
}

const NEWLINE = new TextEncoder().encode('\n');

export class SseParser {
  private readonly decoder = new TextDecoder();
  private buf = '';
  private data: string[] = [];
  private event: string | undefined;
  /** Bound on a single event's size; a larger one is a protocol error upstream. */
  constructor(private readonly maxEventBytes = 8 * 1024 * 1024) {}

  push(chunk: Uint8Array): SseEvent[] {
    this.buf += this.decoder.decode(chunk, { stream: true });
    const out: SseEvent[] = [];
    let start = 0;
    for (;;) {
      const nl = this.buf.indexOf('\n', start);
      if (nl < 0) break;
      let line = this.buf.slice(start, nl);
      start = nl + 1;
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line === '') {
        if (this.data.length > 0 || this.event !== undefined) out.push({ event: this.event, data: this.data.join('\n') });
        this.data = [];
        this.event = undefined;
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'data') this.data.push(value);
      else if (field === 'event') this.event = value;
    }
    this.buf = start === 0 ? this.buf : this.buf.slice(start);
    if (this.buf.length > this.maxEventBytes) throw new Error(`SSE event larger than ${this.maxEventBytes} bytes`);
    return out;
  }

  /** Whatever complete event is pending when the stream ends without a blank line. */
  end(): SseEvent[] {
    // A last line without its newline still counts; then flush the pending event.
    const out = this.buf === '' ? [] : this.push(NEWLINE);
    if (this.data.length > 0) out.push({ event: this.event, data: this.data.join('\n') });
    this.data = [];
    this.event = undefined;
    return out;
  }
}
