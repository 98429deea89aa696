// The Anthropic provider: POST /messages with x-api-key and anthropic-version, and
// the answer (JSON, or the Messages SSE events parsed incrementally) translated
// into chunks and Tokens. Content blocks map to one choice: text blocks to text,
// tool_use blocks to tool calls numbered in block order (their streamed
// `input_json_delta`s become argument deltas). Thinking and other block kinds are
// not part of the internal model and are skipped. An `event: error` mid-stream is
// classified like the HTTP status Anthropic gives that error type.

import {
  type ChunkSink, type EmbeddingResult, type FinishReason, type GenerateRequest, InferenceError, type TokenChunk,
  type ToolCall, type ToolCallDelta, type Tokens, type Usage,
} from '@inference/core';
import { SseParser } from '../sse.js';
import { classifyStatus } from '../upstreamErrors.js';
import { buildMessagesBody } from './anthropicRequest.js';
import { type CallOptions, type ChunkReader, type Json, malformed, parseJson, post } from './http.js';

export const ANTHROPIC_VERSION = '2023-06-01';

/** HTTP statuses Anthropic documents for each error type (mid-stream errors carry only the type). */
const ERROR_TYPE_STATUS: Readonly<Record<string, number>> = {
  invalid_request_error: 400,
  authentication_error: 401,
  permission_error: 403,
  not_found_error: 404,
  request_too_large: 413,
  rate_limit_error: 429,
  api_error: 500,
  timeout_error: 504,
  overloaded_error: 529,
};

export function statusOfErrorType(type: unknown): number {
  return typeof type === 'string' ? (ERROR_TYPE_STATUS[type] ?? 500) : 500;
}

function headersFor(o: CallOptions, stream: boolean): Record<string, string> {
  const h: Record<string, string> = {
    'content-type': 'application/json',
    accept: stream ? 'text/event-stream' : 'application/json',
    'anthropic-version': ANTHROPIC_VERSION,
    'x-request-id': o.ctx.requestId,
  };
  if (o.session.credentials.apiKey !== undefined) h['x-api-key'] = o.session.credentials.apiKey;
  return h;
}

function finishOf(reason: unknown): FinishReason {
  switch (reason) {
    case 'max_tokens':
    case 'model_context_window_exceeded':
      return 'length';
    case 'tool_use':
      return 'tool_calls';
    case 'refusal':
      return 'content_filter';
    default:
      // end_turn, stop_sequence, pause_turn, and reasons newer than this adapter.
      return 'stop';
  }
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined;
}

/** Anthropic counts cache reads and writes apart from input_tokens; internally the prompt includes them. */
function usageOf(v: unknown, prev?: Usage): Usage | undefined {
  if (typeof v !== 'object' || v === null) return prev;
  const u = v as Json;
  const input = num(u.input_tokens);
  const read = num(u.cache_read_input_tokens);
  const write = num(u.cache_creation_input_tokens);
  const out: Usage = { ...(prev ?? { promptTokens: 0, completionTokens: 0 }) };
  if (input !== undefined) {
    out.promptTokens = input + (read ?? prev?.cachedTokens ?? 0) + (write ?? prev?.cacheWriteTokens ?? 0);
  }
  if (read !== undefined) out.cachedTokens = read;
  if (write !== undefined) out.cacheWriteTokens = write;
  const output = num(u.output_tokens);
  if (output !== undefined) out.completionTokens = output;
  if (input === undefined && output === undefined && prev === undefined) return undefined;
  return out;
}

export async function generate(o: CallOptions, req: GenerateRequest, sink: ChunkSink): Promise<Tokens> {
  const body = buildMessagesBody(req, o.spec.model ?? o.spec.name);
  // The call holds the request's signal and the total timeout itself (http.ts).
  const send = (read?: ChunkReader): Promise<string> => post(o, '/messages', headersFor(o, req.stream), body, o.ctx.signal, 'anthropic', read);
  return req.stream ? readStream(send, sink) : readWhole(parseJson(await send()), sink);
}

function readWhole(body: unknown, sink: ChunkSink): Tokens {
  if (typeof body !== 'object' || body === null || !Array.isArray((body as Json).content)) throw malformed('messages: no content array');
  const msg = body as Json;
  let text = '';
  const calls: ToolCall[] = [];
  for (const raw of msg.content as unknown[]) {
    if (typeof raw !== 'object' || raw === null) continue;
    const b = raw as Json;
    if (b.type === 'text' && typeof b.text === 'string') text += b.text;
    else if (b.type === 'tool_use') {
      if (typeof b.id !== 'string' || typeof b.name !== 'string') throw malformed('messages: tool_use block without id or name');
      calls.push({ id: b.id, type: 'function', function: { name: b.name, arguments: JSON.stringify(b.input ?? {}) } });
    }
  }
  const finishReason = finishOf(msg.stop_reason);
  const chunk: TokenChunk = { index: 0, text, tokens: 0, finishReason };
  if (calls.length > 0) chunk.toolCalls = calls.map((c, index) => ({ index, id: c.id, name: c.function.name, argumentsDelta: c.function.arguments }));
  sink(chunk);
  const choice: Tokens['choices'][number] = { index: 0, text, finishReason };
  if (calls.length > 0) choice.toolCalls = calls;
  if (msg.stop_reason === 'stop_sequence' && typeof msg.stop_sequence === 'string') choice.stopSequence = msg.stop_sequence;
  return { choices: [choice], usage: usageOf(msg.usage) ?? { promptTokens: 0, completionTokens: 0 } };
}

/** State of one streamed message: what the events built so far. */
class StreamState {
  text = '';
  readonly calls: ToolCall[] = [];
  /** Content block index -> tool call index, for tool_use blocks. */
  readonly toolOfBlock = new Map<number, number>();
  usage: Usage | undefined;
  finish: FinishReason | undefined;
  stopSequence: string | undefined;
  stopped = false;

  constructor(private readonly sink: ChunkSink) {}

  handle(name: string | undefined, data: string): void {
    let ev: Json;
    try {
      ev = JSON.parse(data) as Json;
    } catch {
      throw malformed(`invalid JSON in ${name ?? 'unnamed'} event`);
    }
    const type = typeof ev.type === 'string' ? ev.type : (name ?? '');
    switch (type) {
      case 'message_start': {
        const m = ev.message;
        this.usage = usageOf(typeof m === 'object' && m !== null ? (m as Json).usage : undefined, this.usage);
        return;
      }
      case 'content_block_start':
        this.blockStart(ev);
        return;
      case 'content_block_delta':
        this.blockDelta(ev);
        return;
      case 'message_delta': {
        const d = (typeof ev.delta === 'object' && ev.delta !== null ? ev.delta : {}) as Json;
        this.usage = usageOf(ev.usage, this.usage);
        if (d.stop_reason !== undefined && d.stop_reason !== null) {
          this.finish = finishOf(d.stop_reason);
          if (d.stop_reason === 'stop_sequence' && typeof d.stop_sequence === 'string') this.stopSequence = d.stop_sequence;
          this.sink({ index: 0, text: '', tokens: 0, finishReason: this.finish });
        }
        return;
      }
      case 'message_stop':
        this.stopped = true;
        return;
      case 'error': {
        const e = (typeof ev.error === 'object' && ev.error !== null ? ev.error : {}) as Json;
        throw classifyStatus(statusOfErrorType(e.type), ev, {}, 'anthropic');
      }
      default:
        // ping, content_block_stop, and event kinds newer than this adapter.
        return;
    }
  }

  private blockStart(ev: Json): void {
    const index = ev.index;
    const block = ev.content_block;
    if (typeof index !== 'number' || typeof block !== 'object' || block === null) throw malformed('content_block_start without index or block');
    const b = block as Json;
    if (b.type === 'text') {
      if (typeof b.text === 'string' && b.text !== '') this.addText(b.text);
    } else if (b.type === 'tool_use') {
      if (typeof b.id !== 'string' || typeof b.name !== 'string') throw malformed('tool_use block without id or name');
      const tool = this.calls.length;
      this.toolOfBlock.set(index, tool);
      this.calls.push({ id: b.id, type: 'function', function: { name: b.name, arguments: '' } });
      this.sink({ index: 0, text: '', tokens: 0, toolCalls: [{ index: tool, id: b.id, name: b.name, argumentsDelta: '' }] });
    }
  }

  private blockDelta(ev: Json): void {
    const d = ev.delta;
    if (typeof d !== 'object' || d === null) throw malformed('content_block_delta without delta');
    const delta = d as Json;
    if (delta.type === 'text_delta' && typeof delta.text === 'string') {
      this.addText(delta.text);
    } else if (delta.type === 'input_json_delta' && typeof delta.partial_json === 'string') {
      const tool = typeof ev.index === 'number' ? this.toolOfBlock.get(ev.index) : undefined;
      const call = tool === undefined ? undefined : this.calls[tool];
      if (tool === undefined || call === undefined) throw malformed('input_json_delta for a block that is not a tool_use');
      if (delta.partial_json === '') return;
      call.function.arguments += delta.partial_json;
      const td: ToolCallDelta = { index: tool, argumentsDelta: delta.partial_json };
      this.sink({ index: 0, text: '', tokens: 0, toolCalls: [td] });
    }
  }

  private addText(t: string): void {
    this.text += t;
    this.sink({ index: 0, text: t, tokens: 1 });
  }

  result(): Tokens {
    const choice: Tokens['choices'][number] = { index: 0, text: this.text, finishReason: this.finish ?? 'stop' };
    if (this.calls.length > 0) {
      // A tool_use block with no input deltas has an empty input object.
      for (const c of this.calls) if (c.function.arguments === '') c.function.arguments = '{}';
      choice.toolCalls = this.calls;
    }
    if (this.stopSequence !== undefined) choice.stopSequence = this.stopSequence;
    return { choices: [choice], usage: this.usage ?? { promptTokens: 0, completionTokens: 0 } };
  }
}

async function readStream(send: (read: ChunkReader) => Promise<string>, sink: ChunkSink): Promise<Tokens> {
  const parser = new SseParser();
  const state = new StreamState(sink);
  await send((bytes) => {
    for (const ev of parser.push(bytes)) {
      state.handle(ev.event, ev.data);
      if (state.stopped) return true;
    }
    return false;
  });
  if (!state.stopped) for (const ev of parser.end()) state.handle(ev.event, ev.data);
  if (!state.stopped) {
    throw new InferenceError('upstream_error', 'the upstream connection broke mid-response', { diagnostic: 'stream ended without message_stop' });
  }
  return state.result();
}

export function embed(o: CallOptions): Promise<EmbeddingResult> {
  return Promise.reject(new InferenceError('invalid_request', `deployment '${o.spec.name}' (runtime anthropic) does not serve embeddings`, { param: 'model' }));
}
