// The response head of every streamed (server-sent events) answer, on HTTP/1.1 and HTTP/2 alike.
// Node keeps an HTTP/1.1 response's head for the response's life as the string it
// concatenated piece by piece: a tree of some 25 pieces (about 0.8 KiB) per open
// stream. Reading one character of it makes V8 flatten it in place into one string,
// which is what an idle stream then holds (docs/benchmarks.md, "Idle concurrent streams").

import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';

/** Writes the 200 head of an event stream; `extra` adds API-specific headers (e.g. Anthropic's `request-id`). */
export function writeSseHead(res: ServerResponse, requestId: string, extra: OutgoingHttpHeaders = {}): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    // HTTP/2 forbids connection-specific headers.
    ...(res.req.httpVersionMajor === 2 ? {} : { connection: 'keep-alive' }),
    ...extra,
    'x-request-id': requestId,
    'x-accel-buffering': 'no',
  });
  flattenHead(res);
}

/** The head Node stored (absent under HTTP/2, whose headers are not kept as a string), flattened in place. */
function flattenHead(res: ServerResponse): void {
  const head: unknown = (res as unknown as { _header?: unknown })._header;
  if (typeof head === 'string') head.charCodeAt(0);
}
