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

/** One complete event's data (its data lines joined) and name; true to stop reading. */
export type EventHandler = (data: string, event: string | undefined) => boolean;

const NEWLINE = 0x0a;
const CR = 0x0d;
const COLON = 0x3a;

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
    const out: SseEvent[] = [];
    this.feed(chunk, (data, event) => {
      out.push({ event, data });
      return false;
    });
    return out;
  }

  /**
   * Feeds a chunk; `onEvent` gets each complete event's data and name in order, without an object
   * per event (the streamed hot path). It returns true to stop: what follows in this chunk is dropped.
   * Returns true when `onEvent` did.
   */
  feed(chunk: Uint8Array, onEvent: EventHandler): boolean {
    const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const last = bytes.lastIndexOf(NEWLINE);
    if (last < 0) {
      this.keep(bytes);
      return false;
    }
    // The kept partial line and this chunk up to its last newline are decoded as one (a character may straddle them).
    const tail = this.tail;
    const text = tail === undefined ? bytes.toString('utf8', 0, last + 1) : Buffer.concat([...tail, bytes.subarray(0, last + 1)]).toString('utf8');
    this.tail = undefined;
    this.tailBytes = 0;
    if (this.lines(text, onEvent)) return true;
    if (last + 1 < bytes.length) this.keep(bytes.subarray(last + 1));
    return false;
  }

  /** Whatever complete event is pending when the stream ends without a blank line. */
  end(): SseEvent[] {
    const out: SseEvent[] = [];
    const collect: EventHandler = (data, event) => {
      out.push({ event, data });
      return false;
    };
    // A last line without its newline still counts; then flush the pending event.
    if (this.tail !== undefined) this.lines(`${Buffer.concat(this.tail).toString('utf8')}\n`, collect);
    this.tail = undefined;
    this.tailBytes = 0;
    if (this.first !== undefined) this.dispatch(collect);
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

  /** Parses `text`, which ends with a newline, handing each complete event to `onEvent`; true when it asked to stop. */
  private lines(text: string, onEvent: EventHandler): boolean {
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl < 0) return false;
      const from = start;
      start = nl + 1;
      const end = nl > from && text.charCodeAt(nl - 1) === CR ? nl - 1 : nl;
      if (end === from) {
        if (this.dispatch(onEvent)) return true;
        continue;
      }
      // The usual line, `data: …`, without splitting it into field and value.
      if (text.startsWith('data: ', from)) {
        this.data(text.slice(from + 6, end));
        continue;
      }
      if (text.charCodeAt(from) === COLON) continue;
      const line = text.slice(from, end);
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'data') this.data(value);
      else if (field === 'event') this.event = value;
    }
  }

  private data(value: string): void {
    if (this.first === undefined) this.first = value;
    else (this.more ??= []).push(value);
  }

  /** The pending event (when it has data or a name) goes out; the next starts empty. True when `onEvent` asked to stop. */
  private dispatch(onEvent: EventHandler): boolean {
    const first = this.first;
    const event = this.event;
    const more = this.more;
    this.first = undefined;
    this.more = undefined;
    this.event = undefined;
    if (first === undefined && event === undefined) return false;
    return onEvent(first === undefined ? '' : more === undefined ? first : [first, ...more].join('\n'), event);
  }
}
