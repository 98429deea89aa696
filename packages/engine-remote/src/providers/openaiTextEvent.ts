// The common streamed chat event, read without JSON.parse. Nearly every event of
// an OpenAI-compatible chat stream carries only a piece of text for choice 0:
//   {"id":"…","object":"chat.completion.chunk",…,"choices":[{"index":0,"delta":{"content":"…"},
//    "logprobs":null,"finish_reason":null}]}
// (llama.cpp's server writes the choice as {"finish_reason":null,"index":0,"delta":{…}}, choices first).
// Parsing it whole builds an object graph per event only to read one string out
// of it (about 2 µs an event, the largest per-event cost of a streamed request:
// docs/benchmarks.md, remote path). Anything else (another choice, a
// finish_reason, tool calls, reasoning, logprobs, usage or error objects,
// whitespace, unusual keys or escapes) is left to the caller's full parse.
//
// Two reads, both exact:
// - `textOfPlainChatEvent`: one anchored regular expression over the whole event.
//   The top-level keys around `choices` must hold scalars (strings, numbers,
//   true/false/null), which changes nothing the caller reads: a scalar `usage` or
//   `error` is ignored by the full parse as well, and a second `choices` key makes
//   the event go the full way. Events longer than MAX_CHARS go the full way too:
//   the expression's backtracking overflows (a RangeError) on text of some megabytes.
// - `PlainTextEvents`, one per stream: the events of one stream differ only in
//   their text (same id, model, created, key order). Once an event matched the
//   expression, the bytes before its text's JSON string and after it are kept; a
//   later event that starts and ends with exactly those bytes, with one valid JSON
//   string between them, is that same event with another string: no match is run.
//   Whatever does not fit is matched again (and what is kept follows it). The first
//   text of a stream also carries the role: what is kept leaves it out, since the
//   events after it carry none.
// Both also give the text's JSON string as the upstream wrote it, when that is
// exactly JSON.stringify of the text: the client's stream then writes those bytes
// instead of encoding the text again (TokenChunk's TEXT_JSON).

const STRING = String.raw`"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"`;
const NUMBER = String.raw`-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?`;
const SCALAR = String.raw`(?:${STRING}|${NUMBER}|null|true|false)`;
const KEY = String.raw`"(?!choices")[A-Za-z0-9_]+"`;
const DELTA = String.raw`"delta":\{(?:"role":"assistant",)?"content":(${STRING})\}`;
/** OpenAI's order (logprobs may be absent), or llama.cpp's: the text is group 1 or group 2. */
const CHOICE = String.raw`(?:"index":0,${DELTA}(?:,"logprobs":null)?,"finish_reason":null|"finish_reason":null,"index":0,${DELTA})`;
const TEXT_EVENT = new RegExp(String.raw`^\{(?:${KEY}:${SCALAR},)*"choices":\[\{${CHOICE}\}\](?:,${KEY}:${SCALAR})*\}$`);

/** Far above any token's event (those are a few hundred characters), far below where the match would overflow. */
const MAX_CHARS = 64 * 1024;

const ROLE = '"role":"assistant",';

/**
 * In an event the expression matched: where its delta's members start (past `"delta":{`), and whether the role
 * comes first there. The delta is the event's only object value (the top-level keys hold scalars), and
 * `"delta":{` cannot sit inside a JSON string (its quotes would be escaped).
 */
function deltaMembers(data: string): number {
  return data.indexOf('"delta":{') + 9;
}

function roleAt(data: string, at: number): boolean {
  return data.startsWith(ROLE, at);
}

/** Where an event's text's JSON string lies (from its opening to past its closing quote); undefined when the event is not plain text. */
function match(data: string): [number, number] | undefined {
  // Two substrings the expression needs, looked for first: most events without them (a finish_reason, usage) are
  // refused by two fast searches instead of a failed match.
  if (data.length > MAX_CHARS || !data.includes('"content":"') || !data.includes('"finish_reason":null')) return undefined;
  const m = TEXT_EVENT.exec(data);
  const quoted = m === null ? undefined : m[1] ?? m[2];
  if (quoted === undefined) return undefined;
  // Where the text starts: the delta's members, past the role if any and past `"content":`.
  let at = deltaMembers(data);
  if (roleAt(data, at)) at += ROLE.length;
  at += 10;
  return [at, at + quoted.length];
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Whether data[from, to) is one JSON string token (quotes included), and whether it holds a backslash:
 * 0 not a string, 1 a string without escapes, 2 a string with valid escapes.
 */
function stringToken(data: string, from: number, to: number): 0 | 1 | 2 {
  if (to - from < 2 || data.charCodeAt(from) !== QUOTE || data.charCodeAt(to - 1) !== QUOTE) return 0;
  let escaped: 0 | 1 | 2 = 1;
  for (let i = from + 1; i < to - 1; i++) {
    const c = data.charCodeAt(i);
    if (c === QUOTE || c < 0x20) return 0;
    if (c !== BACKSLASH) continue;
    escaped = 2;
    const e = data.charCodeAt(++i);
    if (e === 0x75 /* u */) {
      if (i + 4 >= to - 1 || !/^[0-9a-fA-F]{4}$/.test(data.slice(i + 1, i + 5))) return 0;
      i += 4;
    } else if (!(e === QUOTE || e === BACKSLASH || e === 0x2f || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) || i >= to - 1) {
      return 0;
    }
  }
  return escaped;
}

/** The JSON string of a text as sent, when it is exactly JSON.stringify(text); undefined otherwise. */
function exactJson(quoted: string, text: string, kind: 1 | 2): string | undefined {
  // Without a backslash the JSON string is its own value, and exactly what JSON.stringify gives back (no quote,
  // no control character; a decoded UTF-8 text holds no lone surrogate).
  return kind === 1 || JSON.stringify(text) === quoted ? quoted : undefined;
}

/** The text of a JSON string token of kind 1 or 2 (see `stringToken`); escapes are decoded by JSON.parse (the string alone). */
function valueOf(quoted: string, kind: 1 | 2): string {
  return kind === 1 ? quoted.slice(1, -1) : (JSON.parse(quoted) as string);
}

/**
 * The text of a chat stream event that carries only text for choice 0 (see
 * above); undefined for any other event, which the caller must parse in full.
 */
export function textOfPlainChatEvent(data: string): string | undefined {
  const at = match(data);
  if (at === undefined) return undefined;
  const kind = stringToken(data, at[0], at[1]);
  return kind === 0 ? undefined : valueOf(data.slice(at[0], at[1]), kind);
}

/**
 * One stream's reader of plain text events (see above): `read` returns what the full parse would read, or
 * undefined; after a read, `json` holds the text's JSON string as sent when it is exactly JSON.stringify of
 * the text (no object per event).
 */
export class PlainTextEvents {
  /** The last matched event's bytes before its text's JSON string, and after it; empty before the first match. */
  private before = '';
  private after = '';
  json: string | undefined;

  read(data: string): string | undefined {
    const before = this.before;
    const after = this.after;
    const end = data.length - after.length;
    // Compared as slices: String.prototype.startsWith/endsWith take far longer on V8 (measured: 160..700 ns against 50).
    if (before !== '' && end > before.length && data.slice(0, before.length) === before && data.slice(end) === after) {
      const kind = stringToken(data, before.length, end);
      if (kind !== 0) return this.text(data.slice(before.length, end), kind);
    }
    this.json = undefined;
    const at = match(data);
    if (at === undefined) return undefined;
    const kind = stringToken(data, at[0], at[1]);
    if (kind === 0) return undefined;
    // Kept as copies: a slice of `data` would keep the whole chunk it was decoded from alive. The role comes
    // with the first text only: kept without it, so that the events after it (the same bytes but for the role
    // and the text) take the comparison above, not another match. Without `"role":"assistant",` the delta is
    // still one the expression accepts (the role is optional there), so whatever passes the comparison is an
    // event the expression would match.
    const d = deltaMembers(data);
    const head = roleAt(data, d) ? data.slice(0, d) + data.slice(d + ROLE.length, at[0]) : data.slice(0, at[0]);
    this.before = JSON.parse(JSON.stringify(head)) as string;
    this.after = JSON.parse(JSON.stringify(data.slice(at[1]))) as string;
    return this.text(data.slice(at[0], at[1]), kind);
  }

  private text(quoted: string, kind: 1 | 2): string {
    const text = valueOf(quoted, kind);
    this.json = exactJson(quoted, text, kind);
    return text;
  }
}
