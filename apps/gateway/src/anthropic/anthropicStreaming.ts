// Renders one request's chunks as an Anthropic Messages SSE stream. As with the
// OpenAI stream, headers (with `request-id` and `x-request-id`) go out with the
// first chunk, so a failure before any output still gets a proper HTTP status in
// Anthropic's error shape. After the first byte, a failure is a final
// `event: error`. The event sequence itself is AnthropicEventWriter's.

import type { ServerResponse } from 'node:http';
import { AnthropicEventWriter, type InferenceError, type TokenChunk, type Tokens, anthropicErrorEvent } from '@inference/core';
import { CoalescedWriter, type WriterOptions } from '../http/coalesce.js';
import { writeSseHead } from '../http/sseHeaders.js';

export class AnthropicStream {
  private writer: AnthropicEventWriter;
  private started = false;
  private readonly out: CoalescedWriter;

  constructor(
    private readonly res: ServerResponse,
    private readonly requestId: string,
    private readonly id: string,
    model: string,
    options: WriterOptions = {},
  ) {
    this.writer = new AnthropicEventWriter(id, model);
    this.out = new CoalescedWriter(res, options);
  }

  /** The deployment that serves (a fallback may differ from the one asked for), before the first byte. */
  readonly setModel = (model: string): void => {
    if (!this.started) this.writer = new AnthropicEventWriter(this.id, model);
  };

  get headersSent(): boolean {
    return this.started;
  }

  private begin(): string {
    if (this.started) return '';
    this.started = true;
    writeSseHead(this.res, this.requestId, { 'request-id': this.requestId });
    return this.writer.start();
  }

  readonly push = (c: TokenChunk): void => {
    if (this.res.destroyed) return;
    const out = this.begin() + this.writer.push(c);
    this.out.write(out);
  };

  end(tokens: Tokens): void {
    if (this.res.destroyed) return;
    this.out.end(this.begin() + this.writer.finish(tokens.choices[0], tokens.usage));
  }

  /** After the first byte: a final error event, then the stream ends. */
  fail(e: InferenceError): void {
    if (this.res.destroyed) return;
    this.out.end(anthropicErrorEvent(e));
  }
}
