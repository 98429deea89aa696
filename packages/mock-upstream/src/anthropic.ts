// POST /v1/messages in Anthropic's Messages API format. Stream event order, as the real
// API sends it: message_start, content_block_start, ping, content_block_delta* (text_delta
// or input_json_delta), content_block_stop, message_delta (stop_reason, usage.output_tokens),
// message_stop. Each SSE event carries both the `event:` name and a `data:` with a
// matching `type`. max_tokens is required, as it is upstream.

import { InputError } from './errors.js';
import { contentText, isObject, optionalBoolean, optionalInt, optionalStrings, requireArray, requireObject, requireString, type JsonObject } from './fields.js';
import type { RenderContext, Rendered } from './render.js';
import { countWords, generate, type Generation } from './text.js';
import { planToolCall, type ToolCallPlan, type ToolDef, type ToolMode } from './tools.js';

interface MessagesRequest {
  readonly model: string;
  readonly maxTokens: number;
  readonly stream: boolean;
  readonly stop: readonly string[];
  readonly inputTokens: number;
  readonly tools: readonly ToolDef[];
  readonly toolMode: ToolMode;
  readonly lastUserText: string;
}

function parseTools(body: JsonObject): readonly ToolDef[] {
  const value = body.tools;
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new InputError('tools: Input should be a valid list', 'tools');
  return value.map((tool, i): ToolDef => {
    if (!isObject(tool) || typeof tool.name !== 'string') throw new InputError(`tools.${i}.name: Field required`, 'tools');
    return { name: tool.name, schema: tool.input_schema };
  });
}

function parseToolChoice(value: unknown): ToolMode {
  if (value === undefined || value === null) return { kind: 'auto' };
  if (isObject(value)) {
    switch (value.type) {
      case 'auto':
        return { kind: 'auto' };
      case 'none':
        return { kind: 'none' };
      case 'any':
        return { kind: 'any' };
      case 'tool':
        if (typeof value.name === 'string') return { kind: 'named', name: value.name };
        break;
      default:
        break;
    }
  }
  throw new InputError("tool_choice: must be {type:'auto'|'any'|'none'} or {type:'tool', name}", 'tool_choice');
}

function parseMessages(raw: unknown): MessagesRequest {
  const body = requireObject(raw, 'body');
  const model = requireString(body, 'model');
  const maxTokens = optionalInt(body, 'max_tokens', 1, 1_000_000);
  if (maxTokens === undefined) throw new InputError('max_tokens: Field required', 'max_tokens');
  const messages = requireArray(body, 'messages');
  let inputTokens = countWords(contentText(body.system));
  let lastUserText = '';
  for (const message of messages) {
    if (!isObject(message) || (message.role !== 'user' && message.role !== 'assistant')) {
      throw new InputError("messages: each message needs role 'user' or 'assistant'", 'messages');
    }
    const text = contentText(message.content);
    inputTokens += countWords(text);
    // A turn that returns tool results is answered in text, as a real model would.
    const hasResult = Array.isArray(message.content) && message.content.some((b) => isObject(b) && b.type === 'tool_result');
    if (message.role === 'user') lastUserText = hasResult ? '' : text;
  }
  return {
    model,
    maxTokens,
    stream: optionalBoolean(body, 'stream'),
    stop: optionalStrings(body, 'stop_sequences', 8),
    inputTokens,
    tools: parseTools(body),
    toolMode: parseToolChoice(body.tool_choice),
    lastUserText,
  };
}

function stopReason(generation: Generation): string {
  switch (generation.finish) {
    case 'length':
      return 'max_tokens';
    case 'stop_sequence':
      return 'stop_sequence';
    case 'stop':
      return 'end_turn';
    default: {
      const never: never = generation.finish;
      throw new Error(`unknown finish ${String(never)}`);
    }
  }
}

const PING = 'event: ping\ndata: {"type":"ping"}\n\n';
const TEXT_BLOCK_START = 'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n';
const BLOCK_STOP = 'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n';
const MESSAGE_STOP = 'event: message_stop\ndata: {"type":"message_stop"}\n\n';
const TEXT_DELTA_HEAD = 'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":';
const JSON_DELTA_HEAD = 'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":';

function usage(inputTokens: number, outputTokens: number): Record<string, unknown> {
  return { input_tokens: inputTokens, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: outputTokens, service_tier: 'standard' };
}

/** The Messages endpoint. */
export function messages(raw: unknown, ctx: RenderContext): Rendered {
  const request = parseMessages(raw);
  const plan: ToolCallPlan | undefined = planToolCall(request.tools, request.toolMode, request.lastUserText);
  const generation = plan === undefined ? generate({ maxTokens: request.maxTokens, behaviorTokens: ctx.behaviorTokens }, request.stop) : undefined;
  const id = `msg_${ctx.id}`;
  const toolId = `toolu_${ctx.id}`;
  const outputTokens = plan !== undefined ? plan.pieces.length : (generation?.pieces.length ?? 0);
  const reason = generation !== undefined ? stopReason(generation) : 'tool_use';
  const stopSequence = generation?.stopSequence ?? null;

  if (!request.stream) {
    const content =
      plan !== undefined ? [{ type: 'tool_use', id: toolId, name: plan.name, input: plan.input }] : [{ type: 'text', text: generation?.text ?? '' }];
    return {
      kind: 'json',
      body: JSON.stringify({
        id,
        type: 'message',
        role: 'assistant',
        model: request.model,
        content,
        stop_reason: reason,
        stop_sequence: stopSequence,
        usage: usage(request.inputTokens, outputTokens),
      }),
    };
  }

  const start = {
    type: 'message_start',
    message: {
      id,
      type: 'message',
      role: 'assistant',
      model: request.model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: usage(request.inputTokens, 1),
    },
  };
  const events: string[] = [`event: message_start\ndata: ${JSON.stringify(start)}\n\n`];
  if (plan !== undefined) {
    const block = { type: 'content_block_start', index: 0, content_block: { type: 'tool_use', id: toolId, name: plan.name, input: {} } };
    events.push(`event: content_block_start\ndata: ${JSON.stringify(block)}\n\n`, PING);
    for (const piece of plan.pieces) events.push(`${JSON_DELTA_HEAD}${JSON.stringify(piece)}}}\n\n`);
  } else if (generation !== undefined) {
    events.push(TEXT_BLOCK_START, PING);
    for (const pieceJson of generation.piecesJson) events.push(`${TEXT_DELTA_HEAD}${pieceJson}}}\n\n`);
  }
  events.push(BLOCK_STOP);
  const delta = { type: 'message_delta', delta: { stop_reason: reason, stop_sequence: stopSequence }, usage: { output_tokens: outputTokens } };
  events.push(`event: message_delta\ndata: ${JSON.stringify(delta)}\n\n`, MESSAGE_STOP);
  return { kind: 'sse', events };
}
