// Incremental Server-Sent Events parser: feed it byte chunks as they arrive, get
// back complete events. Handles events split across chunks, CRLF or LF line ends,
// multi-line data fields and comments. Holds at most one partial event.
//
// On the streamed hot path (every upstream chunk of every stream): bytes are
// decoded by node's StringDecoder (a UTF-8 character split across chunks is held
// back), measured several times cheaper per chunk than TextDecoder's streaming
// mode on Node 20, and an event's single data line is taken as is, not joined.

import { StringDecoder } from 'node:string_decoder';

export interface SseEvent {
  event: string | undefined;
  data: string;
}

const NEWLINE = new TextEncoder().encode('\n');

export class SseParser {
  private readonly decoder = new StringDecoder('utf8');
  private buf = '';
  /** The event's data lines: the first alone, the rest (rare: multi-line data) in `more`. */
  private first: string | undefined;
  private more: string[] | undefined;
  private event: string | undefined;
  /** Bound on a single event's size; a larger one is a protocol error upstream. */
  constructor(private readonly maxEventBytes = 8 * 1024 * 1024) {}

  push(chunk: Uint8Array): SseEvent[] {
    this.buf += this.decoder.write(chunk);
    const out: SseEvent[] = [];
    let start = 0;
    for (;;) {
      const nl = this.buf.indexOf('\n', start);
      if (nl < 0) break;
      let line = this.buf.slice(start, nl);
      start = nl + 1;
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line === '') {
        this.dispatch(out);
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'data') {
        if (this.first === undefined) this.first = value;
        else (this.more ??= []).push(value);
      } else if (field === 'event') {
        this.event = value;
      }
    }
    this.buf = start === 0 ? this.buf : this.buf.slice(start);
    if (this.buf.length > this.maxEventBytes) throw new Error(`SSE event larger than ${this.maxEventBytes} bytes`);
    return out;
  }

  /** Whatever complete event is pending when the stream ends without a blank line. */
  end(): SseEvent[] {
    // A last line without its newline still counts; then flush the pending event.
    const tail = this.decoder.end();
    if (tail !== '') this.buf += tail;
    const out = this.buf === '' ? [] : this.push(NEWLINE);
    if (this.first !== undefined) this.dispatch(out);
    this.event = undefined;
    return out;
  }

  /** The pending event (when it has data or a name) goes out; the next starts empty. */
  private dispatch(out: SseEvent[]): void {
    const first = this.first;
    if (first !== undefined || this.event !== undefined) {
      const data = first === undefined ? '' : this.more === undefined ? first : [first, ...this.more].join('\n');
      out.push({ event: this.event, data });
    }
    this.first = undefined;
    this.more = undefined;
    this.event = undefined;
  }
}
