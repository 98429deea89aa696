// Renders one request's chunks as a Responses API event stream. As with the other
// streams, headers go out with the first bytes, so a failure before any output still
// gets a proper HTTP status in the OpenAI error shape (and can be retried
// elsewhere). The stream opens with response.created / response.in_progress
// together with the first output; after that a failure is a final
// response.failed. The event sequence itself is ResponsesEventWriter's.

import type { ServerResponse } from 'node:http';
import {
  type InferenceError, type ResponseItem, type ResponseMeta, ResponsesEventWriter, type TokenChunk, type Tokens,
} from '@inference/core';
import { CoalescedWriter, type WriterOptions } from '../http/coalesce.js';
import { writeSseHead } from '../http/sseHeaders.js';

export class ResponsesStream {
  private readonly writer: ResponsesEventWriter;
  private started = false;
  private readonly out: CoalescedWriter;

  constructor(
    private readonly res: ServerResponse,
    private readonly requestId: string,
    private readonly meta: ResponseMeta,
    options: WriterOptions = {},
  ) {
    this.writer = new ResponsesEventWriter(meta);
    this.out = new CoalescedWriter(res, options);
  }

  /** The deployment that serves (a fallback may differ from the one asked for), before the first byte. */
  readonly setModel = (model: string): void => {
    if (!this.started) this.meta.model = model;
  };

  get headersSent(): boolean {
    return this.started;
  }

  private begin(): string {
    if (this.started) return '';
    this.started = true;
    writeSseHead(this.res, this.requestId);
    return this.writer.start();
  }

  readonly push = (c: TokenChunk): void => {
    if (this.res.destroyed) return;
    this.out.write(this.begin() + this.writer.push(c));
  };

  /** Ends the stream; returns the final response object (for storage). */
  end(tokens: Tokens): ResponseItem {
    const head = this.res.destroyed ? '' : this.begin();
    const { events, response } = this.writer.finish(tokens.choices[0], tokens.usage);
    if (!this.res.destroyed) this.out.end(head + events);
    return response;
  }

  /** After the first byte: a final response.failed event, then the stream ends. */
  fail(e: InferenceError): void {
    if (this.res.destroyed) return;
    this.out.end(this.writer.fail(e));
  }
}
