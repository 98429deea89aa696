// A minimal server-sent-events reader for tests: splits a complete SSE body into events
// (`event:` name and joined `data:` lines). Exported so tests of clients and gateways can
// assert on the exact event sequence the mock (or whatever sits in front of it) produced.

export interface SseEvent {
  /** The `event:` field, or undefined when the event has none (OpenAI streams). */
  readonly event: string | undefined;
  /** The `data:` lines joined with newlines. */
  readonly data: string;
}

/** Parses a whole SSE body. Comment lines and events without data are skipped. */
export function parseSse(text: string): SseEvent[] {
  const events: SseEvent[] = [];
  for (const block of text.replace(/\r\n?/g, '\n').split('\n\n')) {
    let event: string | undefined;
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':') || line.length === 0) continue;
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
    if (data.length > 0) events.push({ event, data: data.join('\n') });
  }
  return events;
}

/** The JSON payloads of an OpenAI-style stream, and whether it ended with `data: [DONE]`. */
export function parseOpenAiStream(text: string): { chunks: unknown[]; done: boolean } {
  const chunks: unknown[] = [];
  let done = false;
  for (const { data } of parseSse(text)) {
    if (data === '[DONE]') done = true;
    else chunks.push(JSON.parse(data));
  }
  return { chunks, done };
}
