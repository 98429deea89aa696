// The common streamed chat event, read without JSON.parse. Nearly every event of
// an OpenAI-compatible chat stream carries only a piece of text for choice 0:
//   {"id":"…","object":"chat.completion.chunk",…,"choices":[{"index":0,"delta":{"content":"…"},
//    "logprobs":null,"finish_reason":null}]}
// Parsing it whole builds an object graph per event only to read one string out
// of it (about 2 µs an event, the largest per-event cost of a streamed request:
// docs/benchmarks.md, remote path). This matches that exact compact shape with one
// anchored regular expression and returns the text; anything else (another
// choice, a finish_reason, tool calls, reasoning, logprobs, usage or error
// objects, whitespace, unusual keys or escapes) returns undefined and the caller
// parses the event in full. The top-level keys around `choices` must hold
// scalars (strings, numbers, true/false/null), which changes nothing the caller
// reads: a scalar `usage` or `error` is ignored by the full parse as well, and a
// second `choices` key makes the event go the full way. Events longer than
// MAX_CHARS go the full way too: the regular expression's backtracking stack
// overflows (a RangeError) on text of some megabytes, which an upstream may send.

const STRING = String.raw`"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"`;
const SCALAR = String.raw`(?:${STRING}|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|null|true|false)`;
const KEY = String.raw`"(?!choices")[A-Za-z0-9_]+"`;
const TEXT_EVENT = new RegExp(
  String.raw`^\{(?:${KEY}:${SCALAR},)*"choices":\[\{"index":0,"delta":\{(?:"role":"assistant",)?"content":(${STRING})\}` +
    String.raw`(?:,"logprobs":null)?,"finish_reason":null\}\](?:,${KEY}:${SCALAR})*\}$`,
);

/** Far above any token's event (those are a few hundred characters), far below where the match would overflow. */
const MAX_CHARS = 64 * 1024;

/**
 * The text of a chat stream event that carries only text for choice 0 (see
 * above); undefined for any other event, which the caller must parse in full.
 */
export function textOfPlainChatEvent(data: string): string | undefined {
  if (data.length > MAX_CHARS) return undefined;
  const m = TEXT_EVENT.exec(data);
  if (m === null) return undefined;
  const quoted = m[1] as string;
  // Without a backslash the JSON string is its own value; escapes are decoded by JSON.parse (the string alone).
  return quoted.includes('\\') ? (JSON.parse(quoted) as string) : quoted.slice(1, -1);
}
