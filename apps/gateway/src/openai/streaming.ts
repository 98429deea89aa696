// Renders one request's chunks as an OpenAI SSE stream. Headers go out with the
// first chunk, so a failure before any output still gets a proper HTTP status
// (and can be retried elsewhere). Invariants: role is in each choice's first
// delta; each choice gets exactly one finish_reason; the usage chunk (empty
// choices) only when asked; `data: [DONE]` ends a successful stream; an error
// after the first byte is a final `data: {"error":...}` event.

import type { ServerResponse } from 'node:http';
import {
  ChunkWriter, type DeltaOptions, type FinishReason, type InferenceError, SSE_DONE, TEXT_JSON, type TokenChunk, type Tokens, openAIErrorBody,
} from '@inference/core';
import { CoalescedWriter, type WriterOptions } from '../http/coalesce.js';
import { writeSseHead } from '../http/sseHeaders.js';

/** Per choice: its role went out, its finish_reason went out. */
const ROLE_SENT = 1;
const FINISHED = 2;

export class OpenAIStream {
  /** Made with the headers, for the deployment that answers (setModel may change it before). */
  private writer: ChunkWriter | undefined;
  /** ROLE_SENT | FINISHED of choice 0 (a field: most streams have one choice), and of the others when there are. */
  private first = 0;
  private others: number[] | undefined;
  /** Completions with logprobs: characters of each choice's text already sent (for `text_offset`); made on first use. */
  private sent: number[] | undefined;
  /** Made with the headers (the first write): a request that fails before any output never has one. */
  private out: CoalescedWriter | undefined;

  constructor(
    private readonly res: ServerResponse,
    private readonly requestId: string,
    private readonly kind: 'chat' | 'completion',
    private readonly id: string,
    private model: string,
    private readonly includeUsage: boolean,
    private readonly flow: WriterOptions = {},
  ) {}

  /** Before the first byte: the deployment that answers (a fallback may replace the requested one). */
  readonly setModel = (model: string): void => {
    if (this.out === undefined) this.model = model;
  };

  private state(i: number): number {
    return i === 0 ? this.first : (this.others?.[i] ?? 0);
  }

  private setState(i: number, v: number): void {
    if (i === 0) this.first = v;
    else (this.others ??= [])[i] = v;
  }

  get headersSent(): boolean {
    return this.out !== undefined;
  }

  /** Sends the headers once, with the socket writer and the chunk renderer made then; returns the renderer. */
  private begin(): ChunkWriter {
    if (this.writer !== undefined) return this.writer;
    const out = new CoalescedWriter(this.res, this.flow);
    const writer = new ChunkWriter(this.kind, this.id, Math.floor(Date.now() / 1000), this.model);
    this.out = out;
    this.writer = writer;
    writeSseHead(this.res, this.requestId);
    return writer;
  }

  readonly push = (c: TokenChunk): void => {
    if (this.res.destroyed) return;
    const writer = this.begin();
    const i = c.index;
    let out = '';
    const state = this.state(i);
    const role = (state & ROLE_SENT) === 0;
    const lp = c.logprobs;
    const json = c[TEXT_JSON];
    if (json !== undefined && c.toolCalls === undefined && c.reasoningDelta === undefined && lp === undefined) {
      // Text alone, already encoded by the provider: its bytes go out as they came (TEXT_JSON).
      this.setState(i, state | ROLE_SENT);
      out += writer.text(i, json, role);
    } else if (role || c.text !== '' || (c.toolCalls !== undefined && c.toolCalls.length > 0) || c.reasoningDelta !== undefined || lp !== undefined) {
      this.setState(i, state | ROLE_SENT);
      const d: DeltaOptions = c.text === '' && c.reasoningDelta !== undefined ? {} : { text: c.text };
      if (role) d.role = true;
      if (c.toolCalls !== undefined) d.toolCalls = c.toolCalls;
      if (c.reasoningDelta !== undefined) d.reasoning = c.reasoningDelta;
      if (lp !== undefined) {
        d.logprobs = lp;
        if (this.kind === 'completion') {
          const sent = (this.sent ??= []);
          d.textOffset = sent[i] ?? 0;
          sent[i] = d.textOffset + c.text.length;
        }
      }
      out += writer.delta(i, d);
    }
    if (c.finishReason !== undefined && (this.state(i) & FINISHED) === 0) {
      this.setState(i, this.state(i) | FINISHED);
      out += writer.delta(i, { finishReason: c.finishReason });
    }
    this.out?.write(out);
  };

  end(tokens: Tokens): void {
    if (this.res.destroyed) return;
    const writer = this.begin();
    let out = '';
    for (const c of tokens.choices) {
      const state = this.state(c.index);
      if ((state & ROLE_SENT) === 0) out += writer.delta(c.index, { role: true, text: '' });
      if ((state & FINISHED) === 0) out += writer.delta(c.index, { finishReason: c.finishReason satisfies FinishReason });
      this.setState(c.index, ROLE_SENT | FINISHED);
    }
    if (this.includeUsage) out += writer.usage(tokens.usage);
    out += SSE_DONE;
    this.out?.end(out);
  }

  /** After the first byte: a final error event, then the stream ends. */
  fail(e: InferenceError): void {
    if (this.res.destroyed) return;
    this.begin();
    this.out?.end(`data: ${JSON.stringify(openAIErrorBody(e))}\n\n`);
  }
}
