// The OpenAI Responses wire format, outbound: a finished generation as a response
// object, a running one as the Responses event stream, errors in its shape.
//
// Output items, in order: `reasoning` (when the engine separated reasoning text),
// `message` (one output_text part; logprobs on it when asked), then one
// `function_call` item per tool call. Status: `completed`; `incomplete` with
// `incomplete_details.reason` for a length or content-filter stop; `failed` with
// `error` when the request failed after the stream began.
//
// Stream invariants (what the OpenAI SDKs and agent frameworks rely on): every
// event has `type` and a `sequence_number` counting from 0; response.created then
// response.in_progress first; an item's output_item.added precedes its deltas and
// its output_item.done follows them; only one item is open at a time (a new one
// closes the previous); message items add and close their one content part;
// response.completed / incomplete / failed is the last event.

import { InferenceError, openAIErrorBody } from '../errors.js';
import { hexId } from '../ids.js';
import type { ChoiceResult, TokenChunk, TokenLogprob, ToolCallDelta, Usage } from '../types.js';
import type { ResponseItem, ResponsesEcho } from './responses.js';
import { type WireChatLogprob, wireChatLogprobs } from './openai.js';

export type ResponseStatus = 'in_progress' | 'completed' | 'incomplete' | 'failed';

export interface ResponseMeta {
  readonly id: string;
  readonly createdAt: number;
  model: string;
  readonly echo: ResponsesEcho;
}

export interface ResponsesWireUsage {
  input_tokens: number;
  input_tokens_details: { cached_tokens: number };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number };
  total_tokens: number;
}

export function responsesUsage(u: Usage): ResponsesWireUsage {
  return {
    input_tokens: u.promptTokens,
    input_tokens_details: { cached_tokens: u.cachedTokens ?? 0 },
    output_tokens: u.completionTokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: u.promptTokens + u.completionTokens,
  };
}

function statusOf(choice: ChoiceResult | undefined): { status: ResponseStatus; incomplete: { reason: string } | null } {
  const finish = choice?.finishReason;
  switch (finish) {
    case 'length':
      return { status: 'incomplete', incomplete: { reason: 'max_output_tokens' } };
    case 'content_filter':
      return { status: 'incomplete', incomplete: { reason: 'content_filter' } };
    case undefined:
    case 'stop':
    case 'tool_calls':
      return { status: 'completed', incomplete: null };
    default: {
      const never: never = finish;
      throw new InferenceError('internal', 'internal error', { diagnostic: `unknown finish reason ${String(never)}` });
    }
  }
}

/** The response object, in any state. */
export function responseObject(
  meta: ResponseMeta,
  status: ResponseStatus,
  output: readonly ResponseItem[],
  usage: Usage | null,
  extra: { error?: { code: string; message: string } | null; incomplete?: { reason: string } | null } = {},
): ResponseItem {
  return {
    id: meta.id,
    object: 'response',
    created_at: meta.createdAt,
    status,
    background: false,
    error: extra.error ?? null,
    incomplete_details: extra.incomplete ?? null,
    ...meta.echo,
    model: meta.model,
    output: [...output],
    service_tier: 'default',
    usage: usage === null ? null : responsesUsage(usage),
    type: 'response',
  };
}

function textPart(text: string, logprobs: readonly WireChatLogprob[] | undefined): ResponseItem {
  return { type: 'output_text', text, annotations: [], logprobs: logprobs === undefined ? [] : [...logprobs] };
}

/** The output items of a finished choice (non-streamed answers, and what a stream ends with). */
export function outputItems(choice: ChoiceResult, ids: { message: string; reasoning: string; call: (i: number) => string }): ResponseItem[] {
  const items: ResponseItem[] = [];
  if (choice.reasoning !== undefined && choice.reasoning !== '') {
    items.push({ id: ids.reasoning, type: 'reasoning', summary: [], content: [{ type: 'reasoning_text', text: choice.reasoning }] });
  }
  const calls = choice.toolCalls ?? [];
  if (choice.text !== '' || calls.length === 0) {
    const lp = choice.logprobs === undefined ? undefined : wireChatLogprobs(choice.logprobs);
    items.push({ id: ids.message, type: 'message', status: 'completed', role: 'assistant', content: [textPart(choice.text, lp)] });
  }
  calls.forEach((c, i) => {
    items.push({
      id: ids.call(i),
      type: 'function_call',
      status: 'completed',
      call_id: c.id === '' ? `call_${hexId()}` : c.id,
      name: c.function.name,
      arguments: c.function.arguments,
    });
  });
  return items;
}

/** A finished, non-streamed response. */
export function renderResponse(meta: ResponseMeta, choice: ChoiceResult | undefined, usage: Usage): ResponseItem {
  const output = choice === undefined ? [] : outputItems(choice, { message: `msg_${hexId()}`, reasoning: `rs_${hexId()}`, call: () => `fc_${hexId()}` });
  const { status, incomplete } = statusOf(choice);
  return responseObject(meta, status, output, usage, { incomplete });
}

/** The HTTP error body of the Responses API: OpenAI's envelope. */
export function responsesErrorBody(e: InferenceError): unknown {
  return openAIErrorBody(e);
}

type Open =
  | { kind: 'reasoning'; index: number; id: string; text: string }
  | { kind: 'message'; index: number; id: string; text: string; logprobs: WireChatLogprob[] | undefined }
  | { kind: 'call'; index: number; id: string; tool: number };

interface CallState {
  index: number;
  id: string;
  callId: string;
  name: string;
  args: string;
  done: boolean;
}

/**
 * Turns one choice's chunks into Responses events. Pure string production: the caller
 * owns the socket. Output items are collected as they close, so `finish` also yields the
 * final response object (for storage).
 */
export class ResponsesEventWriter {
  private seq = 0;
  private open: Open | undefined;
  private readonly items: ResponseItem[] = [];
  private readonly calls = new Map<number, CallState>();

  constructor(private readonly meta: ResponseMeta) {}

  private event(type: string, body: Record<string, unknown>): string {
    return `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: this.seq++, ...body })}\n\n`;
  }

  start(): string {
    const r = responseObject(this.meta, 'in_progress', [], null);
    return this.event('response.created', { response: r }) + this.event('response.in_progress', { response: r });
  }

  private close(): string {
    const o = this.open;
    if (o === undefined) return '';
    this.open = undefined;
    switch (o.kind) {
      case 'reasoning': {
        const item: ResponseItem = { id: o.id, type: 'reasoning', summary: [], content: [{ type: 'reasoning_text', text: o.text }] };
        this.items[o.index] = item;
        return this.event('response.reasoning_text.done', { item_id: o.id, output_index: o.index, content_index: 0, text: o.text })
          + this.event('response.output_item.done', { output_index: o.index, item });
      }
      case 'message': {
        const part = textPart(o.text, o.logprobs);
        const item: ResponseItem = { id: o.id, type: 'message', status: 'completed', role: 'assistant', content: [part] };
        this.items[o.index] = item;
        return this.event('response.output_text.done', { item_id: o.id, output_index: o.index, content_index: 0, text: o.text, logprobs: part.logprobs })
          + this.event('response.content_part.done', { item_id: o.id, output_index: o.index, content_index: 0, part })
          + this.event('response.output_item.done', { output_index: o.index, item });
      }
      case 'call': {
        const c = this.calls.get(o.tool);
        if (c === undefined) return '';
        return this.closeCall(c);
      }
      default: {
        const never: never = o;
        throw new InferenceError('internal', 'internal error', { diagnostic: `unknown open item ${JSON.stringify(never)}` });
      }
    }
  }

  private closeCall(c: CallState): string {
    if (c.done) return '';
    c.done = true;
    const item: ResponseItem = { id: c.id, type: 'function_call', status: 'completed', call_id: c.callId, name: c.name, arguments: c.args };
    this.items[c.index] = item;
    return this.event('response.function_call_arguments.done', { item_id: c.id, output_index: c.index, name: c.name, arguments: c.args })
      + this.event('response.output_item.done', { output_index: c.index, item });
  }

  private openMessage(): string {
    let out = this.close();
    const index = this.items.length;
    const id = `msg_${hexId()}`;
    this.items.length = index + 1;
    this.open = { kind: 'message', index, id, text: '', logprobs: undefined };
    out += this.event('response.output_item.added', {
      output_index: index,
      item: { id, type: 'message', status: 'in_progress', role: 'assistant', content: [] },
    });
    out += this.event('response.content_part.added', { item_id: id, output_index: index, content_index: 0, part: textPart('', undefined) });
    return out;
  }

  private reasoning(delta: string): string {
    let out = '';
    if (this.open?.kind !== 'reasoning') {
      out += this.close();
      const index = this.items.length;
      const id = `rs_${hexId()}`;
      this.items.length = index + 1;
      this.open = { kind: 'reasoning', index, id, text: '' };
      out += this.event('response.output_item.added', { output_index: index, item: { id, type: 'reasoning', summary: [] } });
    }
    const o = this.open;
    if (o.kind !== 'reasoning') return out;
    o.text += delta;
    return out + this.event('response.reasoning_text.delta', { item_id: o.id, output_index: o.index, content_index: 0, delta });
  }

  private text(delta: string, lp: readonly TokenLogprob[] | undefined): string {
    let out = '';
    if (this.open?.kind !== 'message') out += this.openMessage();
    const o = this.open;
    if (o?.kind !== 'message') return out;
    o.text += delta;
    let wire: WireChatLogprob[] = [];
    if (lp !== undefined) {
      wire = wireChatLogprobs(lp);
      o.logprobs = o.logprobs === undefined ? wire : o.logprobs.concat(wire);
    }
    return out + this.event('response.output_text.delta', { item_id: o.id, output_index: o.index, content_index: 0, delta, logprobs: wire });
  }

  private toolDelta(d: ToolCallDelta): string {
    let out = '';
    let c = this.calls.get(d.index);
    if (c === undefined) {
      out += this.close();
      const index = this.items.length;
      this.items.length = index + 1;
      c = { index, id: `fc_${hexId()}`, callId: d.id ?? `call_${hexId()}`, name: d.name ?? '', args: '', done: false };
      this.calls.set(d.index, c);
      this.open = { kind: 'call', index, id: c.id, tool: d.index };
      out += this.event('response.output_item.added', {
        output_index: index,
        item: { id: c.id, type: 'function_call', status: 'in_progress', call_id: c.callId, name: c.name, arguments: '' },
      });
    }
    if (d.argumentsDelta !== '') {
      c.args += d.argumentsDelta;
      out += this.event('response.function_call_arguments.delta', { item_id: c.id, output_index: c.index, delta: d.argumentsDelta });
    }
    return out;
  }

  push(c: TokenChunk): string {
    if (c.index !== 0) return '';
    let out = '';
    if (c.reasoningDelta !== undefined && c.reasoningDelta !== '') out += this.reasoning(c.reasoningDelta);
    if (c.text !== '' || (c.logprobs !== undefined && c.logprobs.length > 0)) out += this.text(c.text, c.logprobs);
    if (c.toolCalls !== undefined) for (const d of c.toolCalls) out += this.toolDelta(d);
    return out;
  }

  /** Closes what is open and ends the stream; `response` is the final object (to store). */
  finish(choice: ChoiceResult | undefined, usage: Usage): { events: string; response: ResponseItem } {
    let out = '';
    const hasCalls = (choice?.toolCalls?.length ?? 0) > 0 || this.calls.size > 0;
    if (this.items.length === 0 && this.open === undefined && !hasCalls) out += this.openMessage();
    // Calls the engine reported only in its result (none streamed) still become items.
    (choice?.toolCalls ?? []).forEach((call, i) => {
      if (this.calls.has(i)) return;
      const d: ToolCallDelta = { index: i, name: call.function.name, argumentsDelta: call.function.arguments };
      if (call.id !== '') d.id = call.id;
      out += this.toolDelta(d);
    });
    out += this.close();
    for (const c of this.calls.values()) out += this.closeCall(c);
    const { status, incomplete } = statusOf(choice);
    const response = responseObject(this.meta, status, this.items.filter((i) => i !== undefined), usage, { incomplete });
    out += this.event(status === 'completed' ? 'response.completed' : 'response.incomplete', { response });
    return { events: out, response };
  }

  /** After the first byte: the response failed; what was output so far stays in it. */
  fail(e: InferenceError): string {
    const body = openAIErrorBody(e) as { error: { code: string | null; message: string } };
    const response = responseObject(this.meta, 'failed', this.items.filter((i) => i !== undefined), null, {
      error: { code: body.error.code ?? 'server_error', message: body.error.message },
    });
    return this.event('response.failed', { response });
  }
}
