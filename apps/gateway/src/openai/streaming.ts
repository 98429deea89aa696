// Renders one request's chunks as an OpenAI SSE stream. Headers go out with the
// first chunk, so a failure before any output still gets a proper HTTP status
// (and can be retried elsewhere). Invariants: role is in each choice's first
// delta; each choice gets exactly one finish_reason; the usage chunk (empty
// choices) only when asked; `data: [DONE]` ends a successful stream; an error
// after the first byte is a final `data: {"error":...}` event.

import type { ServerResponse } from 'node:http';
import {
  ChunkWriter, type DeltaOptions, type FinishReason, type InferenceError, SSE_DONE, type TokenChunk, type Tokens, openAIErrorBody,
} from '@inference/core';
import { CoalescedWriter } from '../http/coalesce.js';

export class OpenAIStream {
  private writer: ChunkWriter;
  private readonly roleSent: boolean[] = [];
  private readonly finished: boolean[] = [];
  /** Completions with logprobs: characters of each choice's text already sent (for `text_offset`). */
  private readonly sent: number[] = [];
  private started = false;
  private readonly out: CoalescedWriter;

  constructor(
    private readonly res: ServerResponse,
    private readonly requestId: string,
    private readonly kind: 'chat' | 'completion',
    private readonly id: string,
    model: string,
    private readonly includeUsage: boolean,
  ) {
    this.writer = new ChunkWriter(kind, id, Math.floor(Date.now() / 1000), model);
    this.out = new CoalescedWriter(res);
  }

  /** Before the first byte: the deployment that answers (a fallback may replace the requested one). */
  readonly setModel = (model: string): void => {
    if (!this.started) this.writer = new ChunkWriter(this.kind, this.id, Math.floor(Date.now() / 1000), model);
  };

  get headersSent(): boolean {
    return this.started;
  }

  private begin(): void {
    if (this.started) return;
    this.started = true;
    this.res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-request-id': this.requestId,
      'x-accel-buffering': 'no',
    });
  }

  readonly push = (c: TokenChunk): void => {
    if (this.res.destroyed) return;
    this.begin();
    const i = c.index;
    let out = '';
    const role = this.roleSent[i] !== true;
    const lp = c.logprobs;
    if (role || c.text !== '' || (c.toolCalls !== undefined && c.toolCalls.length > 0) || c.reasoningDelta !== undefined || lp !== undefined) {
      this.roleSent[i] = true;
      const d: DeltaOptions = c.text === '' && c.reasoningDelta !== undefined ? {} : { text: c.text };
      if (role) d.role = true;
      if (c.toolCalls !== undefined) d.toolCalls = c.toolCalls;
      if (c.reasoningDelta !== undefined) d.reasoning = c.reasoningDelta;
      if (lp !== undefined) {
        d.logprobs = lp;
        if (this.kind === 'completion') {
          d.textOffset = this.sent[i] ?? 0;
          this.sent[i] = d.textOffset + c.text.length;
        }
      }
      out += this.writer.delta(i, d);
    }
    if (c.finishReason !== undefined && this.finished[i] !== true) {
      this.finished[i] = true;
      out += this.writer.delta(i, { finishReason: c.finishReason });
    }
    this.out.write(out);
  };

  end(tokens: Tokens): void {
    if (this.res.destroyed) return;
    this.begin();
    let out = '';
    for (const c of tokens.choices) {
      if (this.roleSent[c.index] !== true) {
        this.roleSent[c.index] = true;
        out += this.writer.delta(c.index, { role: true, text: '' });
      }
      if (this.finished[c.index] !== true) {
        this.finished[c.index] = true;
        out += this.writer.delta(c.index, { finishReason: c.finishReason satisfies FinishReason });
      }
    }
    if (this.includeUsage) out += this.writer.usage(tokens.usage);
    out += SSE_DONE;
    this.out.end(out);
  }

  /** After the first byte: a final error event, then the stream ends. */
  fail(e: InferenceError): void {
    if (this.res.destroyed) return;
    this.out.end(`data: ${JSON.stringify(openAIErrorBody(e))}\n\n`);
  }
}
