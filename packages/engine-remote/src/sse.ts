// Incremental Server-Sent Events parser: feed it byte chunks as they arrive, get
// back complete events. Handles events split across chunks, CRLF or LF line ends,
// multi-line data fields and comments. Holds at most one partial event.
//
// On the streamed hot path (every upstream chunk of every stream): only complete
// lines are decoded, by Buffer.toString (a newline byte never sits inside a UTF-8
// sequence, so a character split across chunks waits with its line), and an
// event's single data line is taken as is, not joined. Between events an idle
// stream's parser holds no bytes and no decoder: a TextDecoder per stream kept a
// native converter alive for the stream's whole life (docs/benchmarks.md, idle streams).

export interface SseEvent {
  event: string | undefined;
  data: string;
}

const NEWLINE = 0x0a;

export class SseParser {
  /** Bytes after the last newline seen (a partial line), in arrival order; absent when none. */
  private tail: Buffer[] | undefined;
  private tailBytes = 0;
  /** The event's data lines: the first alone, the rest (rare: multi-line data) in `more`. */
  private first: string | undefined;
  private more: string[] | undefined;
  private event: string | undefined;
  /** Bound on a single event's size; a larger one is a protocol error upstream. */
  constructor(private readonly maxEventBytes = 8 * 1024 * 1024) {}

  push(chunk: Uint8Array): SseEvent[] {
    const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const last = bytes.lastIndexOf(NEWLINE);
    if (last < 0) {
      this.keep(bytes);
      return [];
    }
    // The kept partial line and this chunk up to its last newline are decoded as one (a character may straddle them).
    const tail = this.tail;
    const text = tail === undefined ? bytes.toString('utf8', 0, last + 1) : Buffer.concat([...tail, bytes.subarray(0, last + 1)]).toString('utf8');
    this.tail = undefined;
    this.tailBytes = 0;
    const out: SseEvent[] = [];
    this.lines(text, out);
    if (last + 1 < bytes.length) this.keep(bytes.subarray(last + 1));
    return out;
  }

  /** Whatever complete event is pending when the stream ends without a blank line. */
  end(): SseEvent[] {
    const out: SseEvent[] = [];
    // A last line without its newline still counts; then flush the pending event.
    if (this.tail !== undefined) this.lines(`${Buffer.concat(this.tail).toString('utf8')}\n`, out);
    this.tail = undefined;
    this.tailBytes = 0;
    if (this.first !== undefined) this.dispatch(out);
    this.event = undefined;
    return out;
  }

  /** A partial line, copied (the chunk's memory is the caller's). */
  private keep(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.tailBytes += bytes.length;
    if (this.tailBytes > this.maxEventBytes) throw new Error(`SSE event larger than ${this.maxEventBytes} bytes`);
    (this.tail ??= []).push(Buffer.from(bytes));
  }

  /** Parses `text`, which ends with a newline, into `out`. */
  private lines(text: string, out: SseEvent[]): void {
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl < 0) break;
      let line = text.slice(start, nl);
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
