// The Anthropic Messages wire format, outbound: a finished generation as a message
// object, a running one as Anthropic's SSE events, and errors in Anthropic's shape.
//
// Stream invariants (what the Anthropic SDKs rely on): one message_start first;
// content blocks are numbered from 0 in the order they start, and only one is open
// at a time (a new block closes the previous one); ping follows the first block's
// start; message_delta carries the stop reason and the whole usage (input tokens
// included: engines only know them at the end); message_stop ends a successful
// stream; an error after the first byte is a final `event: error`.

import { InferenceError, anthropicErrorBody } from '../errors.js';
import type { ChoiceResult, FinishReason, TokenChunk, ToolCall, Usage } from '../types.js';

export type AnthropicStopReason = 'end_turn' | 'max_tokens' | 'stop_sequence' | 'tool_use' | 'refusal';

export function anthropicStopReason(finish: FinishReason, stopSequence: string | undefined): AnthropicStopReason {
  switch (finish) {
    case 'stop':
      return stopSequence === undefined ? 'end_turn' : 'stop_sequence';
    case 'length':
      return 'max_tokens';
    case 'tool_calls':
      return 'tool_use';
    case 'content_filter':
      return 'refusal';
    default: {
      const never: never = finish;
      throw new InferenceError('internal', 'internal error', { diagnostic: `unknown finish reason ${String(never)}` });
    }
  }
}

export interface AnthropicWireUsage {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number | null;
  cache_read_input_tokens: number | null;
}

/** Anthropic counts cached prompt tokens apart from `input_tokens`; internally they are included. */
export function anthropicUsage(u: Usage): AnthropicWireUsage {
  const read = u.cachedTokens ?? 0;
  const write = u.cacheWriteTokens ?? 0;
  return {
    input_tokens: Math.max(0, u.promptTokens - read - write),
    output_tokens: u.completionTokens,
    cache_creation_input_tokens: u.cacheWriteTokens ?? null,
    cache_read_input_tokens: u.cachedTokens ?? null,
  };
}

/** A tool call's arguments as the object Anthropic's `input` must be. */
export function toolInput(call: ToolCall): Record<string, unknown> {
  const text = call.function.arguments.trim();
  if (text === '') return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    v = undefined;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new InferenceError('upstream_error', 'the model produced tool arguments that are not a JSON object', {
      diagnostic: `tool ${call.function.name}: ${text.length} chars`,
    });
  }
  return v as Record<string, unknown>;
}

type ContentBlock = { type: 'text'; text: string } | { type: 'tool_use'; id: string; name: string; input: Record<string, unknown> };

export function renderAnthropicMessage(id: string, model: string, choice: ChoiceResult, usage: Usage): unknown {
  const content: ContentBlock[] = [];
  if (choice.text !== '') content.push({ type: 'text', text: choice.text });
  for (const call of choice.toolCalls ?? []) content.push({ type: 'tool_use', id: call.id, name: call.function.name, input: toolInput(call) });
  if (content.length === 0) content.push({ type: 'text', text: '' });
  return {
    id,
    type: 'message',
    role: 'assistant',
    model,
    content,
    stop_reason: anthropicStopReason(choice.finishReason, choice.stopSequence),
    stop_sequence: choice.stopSequence ?? null,
    usage: anthropicUsage(usage),
  };
}

function event(name: string, data: unknown): string {
  return `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** The HTTP status of an error on the Anthropic surface: Anthropic sends overloads as 529. */
export function anthropicStatus(e: InferenceError): number {
  return e.info.anthropicType === 'overloaded_error' ? 529 : e.status;
}

export function anthropicErrorEvent(e: InferenceError): string {
  return event('error', anthropicErrorBody(e));
}

type OpenBlock = { kind: 'text' } | { kind: 'tool'; tool: number };

/**
 * Turns one choice's chunks into Anthropic events. Pure string production: the
 * caller owns the socket. Chunks of other choices than 0 are ignored (Messages has
 * no `n`; the parser pins it to 1).
 */
export class AnthropicEventWriter {
  private blocks = 0;
  private open: OpenBlock | undefined;
  private readonly toolBlock = new Map<number, number>();
  private pinged = false;

  constructor(
    private readonly id: string,
    private readonly model: string,
  ) {}

  start(): string {
    const message = {
      id: this.id, type: 'message', role: 'assistant', model: this.model, content: [], stop_reason: null, stop_sequence: null,
      usage: { input_tokens: 0, output_tokens: 0, cache_creation_input_tokens: null, cache_read_input_tokens: null },
    };
    return event('message_start', { type: 'message_start', message });
  }

  private close(): string {
    if (this.open === undefined) return '';
    this.open = undefined;
    return event('content_block_stop', { type: 'content_block_stop', index: this.blocks - 1 });
  }

  private begin(block: OpenBlock, content: unknown): string {
    let out = this.close();
    this.open = block;
    out += event('content_block_start', { type: 'content_block_start', index: this.blocks++, content_block: content });
    if (!this.pinged) {
      this.pinged = true;
      out += event('ping', { type: 'ping' });
    }
    return out;
  }

  push(c: TokenChunk): string {
    if (c.index !== 0) return '';
    let out = '';
    if (c.text !== '') {
      if (this.open?.kind !== 'text') out += this.begin({ kind: 'text' }, { type: 'text', text: '' });
      out += event('content_block_delta', { type: 'content_block_delta', index: this.blocks - 1, delta: { type: 'text_delta', text: c.text } });
    }
    for (const d of c.toolCalls ?? []) {
      let index = this.toolBlock.get(d.index);
      if (index === undefined) {
        index = this.blocks;
        this.toolBlock.set(d.index, index);
        const id = d.id ?? `toolu_${this.id.replace(/^msg_/, '')}_${d.index}`;
        out += this.begin({ kind: 'tool', tool: d.index }, { type: 'tool_use', id, name: d.name ?? '', input: {} });
      }
      // A delta for a block already closed (an upstream interleaving parallel calls)
      // still goes out under that block's index, which clients accumulate by.
      if (d.argumentsDelta !== '') {
        out += event('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: d.argumentsDelta } });
      }
    }
    return out;
  }

  /** Closes the open block and ends the message with its stop reason and usage. */
  finish(choice: ChoiceResult | undefined, usage: Usage): string {
    let out = '';
    if (this.blocks === 0) out += this.begin({ kind: 'text' }, { type: 'text', text: '' });
    out += this.close();
    const stopReason = choice === undefined ? 'end_turn' : anthropicStopReason(choice.finishReason, choice.stopSequence);
    out += event('message_delta', {
      type: 'message_delta',
      delta: { stop_reason: stopReason, stop_sequence: choice?.stopSequence ?? null },
      usage: anthropicUsage(usage),
    });
    out += event('message_stop', { type: 'message_stop' });
    return out;
  }
}
