// The response head of every streamed (server-sent events) answer, on HTTP/1.1 and HTTP/2 alike.

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
}
