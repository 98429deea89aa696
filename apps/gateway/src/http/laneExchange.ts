// One request on the lean front of the generate routes (fastLane.ts): what the
// request path reads of it (RequestHead: id, headers, method, url; the principal
// is looked up by this object, auth.ts) and how its answer is sent when it is not
// streamed (AnswerFront). The headers match what Fastify sends for the same
// answer: `x-request-id`, `content-type: application/json; charset=utf-8`,
// `content-length`, `retry-after` when the error has one, and `connection: close`
// after a body that could not be read (HTTP/1 only: HTTP/2 has no such header).
// CORS headers are already on the response (cors.ts).

import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { type InferenceError, openAIErrorBody, retryAfterSeconds } from '@inference/core';
import type { AnswerFront } from '../openai/generate.js';
import type { RequestHead } from './requestHead.js';

const JSON_TYPE = 'application/json; charset=utf-8';

export class LaneExchange implements RequestHead, AnswerFront {
  readonly headers: IncomingHttpHeaders;
  readonly method: string;
  readonly url: string;

  constructor(
    readonly id: string,
    private readonly req: IncomingMessage,
    readonly res: ServerResponse,
  ) {
    this.headers = req.headers;
    this.method = 'POST';
    this.url = req.url ?? '';
  }

  get head(): RequestHead {
    return this;
  }

  /** The error in the OpenAI envelope; `close` ends the connection after it (the body may not have been read). */
  error(e: InferenceError, status = e.status, close = false): void {
    const res = this.res;
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const headers: OutgoingHttpHeaders = { 'x-request-id': this.id };
    if (close && this.req.httpVersionMajor !== 2) headers.connection = 'close';
    const ra = retryAfterSeconds(e);
    if (ra !== undefined) headers['retry-after'] = String(ra);
    this.send(status, headers, JSON.stringify(openAIErrorBody(e)));
  }

  json(body: unknown): void {
    this.send(200, { 'x-request-id': this.id }, JSON.stringify(body));
  }

  /** Nothing to do: the stream writes to the raw response, which no framework holds. */
  hijack(): void {
    return undefined;
  }

  private send(status: number, headers: OutgoingHttpHeaders, text: string): void {
    headers['content-type'] = JSON_TYPE;
    headers['content-length'] = Buffer.byteLength(text);
    this.res.writeHead(status, headers);
    this.res.end(text);
  }
}
