// The OpenAI wire format: request bodies in, response objects and stream chunks out.
// Parsing turns an untrusted body into a validated internal request, naming the
// exact `param` on failure. Unknown fields are kept in `passthrough` so an
// OpenAI-compatible upstream still receives what its client meant.

import { InferenceError } from '../errors.js';
import type {
  ChatMessage, ChatRequest, ChoiceResult, CompletionRequest, EmbeddingRequest, FinishReason, Role, SamplingParams,
  ToolCall, ToolCallDelta, ToolDefinition, Usage,
} from '../types.js';
import {
  type Json, asObject, describe, invalid, join, optArray, optBool, optNumber, optObject, optString, reqString,
} from '../validate.js';

const ROLES: readonly Role[] = ['system', 'developer', 'user', 'assistant', 'tool'];

const CHAT_KEYS = new Set([
  'model', 'messages', 'max_tokens', 'max_completion_tokens', 'temperature', 'top_p', 'top_k', 'min_p', 'seed',
  'presence_penalty', 'frequency_penalty', 'stop', 'n', 'stream', 'stream_options', 'tools', 'tool_choice',
  'response_format', 'user', 'logprobs', 'top_logprobs',
]);

/** OpenAI's documented limit on `stop` sequences; every OpenAI-compatible upstream accepts this many. */
const MAX_STOP = 4;
const RESPONSE_FORMATS = ['text', 'json_object', 'json_schema'] as const;
const COMPLETION_KEYS = new Set([...CHAT_KEYS, 'prompt'].filter((k) => k !== 'messages'));

function textContent(v: unknown, path: string): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) {
    let out = '';
    v.forEach((part, i) => {
      const p = asObject(part, join(path, i));
      const type = reqString(p, 'type', join(path, i));
      if (type !== 'text') invalid(join(join(path, i), 'type'), `content part type '${type}' is not supported; use 'text'`);
      out += reqString(p, 'text', join(path, i));
    });
    return out;
  }
  return invalid(path, `expected a string or an array of content parts, got ${describe(v)}`);
}

function parseToolCalls(v: unknown[], path: string): ToolCall[] {
  return v.map((raw, i) => {
    const p = join(path, i);
    const o = asObject(raw, p);
    const fn = asObject(o.function, join(p, 'function'));
    return {
      id: reqString(o, 'id', p),
      type: 'function',
      function: { name: reqString(fn, 'name', join(p, 'function')), arguments: optString(fn, 'arguments', join(p, 'function')) ?? '' },
    };
  });
}

function parseMessages(v: unknown): ChatMessage[] {
  if (v === undefined || v === null) invalid('messages', 'is required');
  if (!Array.isArray(v)) invalid('messages', `expected an array, got ${describe(v)}`);
  if (v.length === 0) invalid('messages', 'must contain at least one message');
  return v.map((raw, i) => {
    const path = join('messages', i);
    const o = asObject(raw, path);
    const role = reqString(o, 'role', path);
    if (!(ROLES as readonly string[]).includes(role)) invalid(join(path, 'role'), `must be one of ${ROLES.join(', ')}`);
    const msg: ChatMessage = { role: role as Role, content: textContent(o.content, join(path, 'content')) };
    const name = optString(o, 'name', path);
    if (name !== undefined) msg.name = name;
    const toolCalls = optArray(o, 'tool_calls', path);
    if (toolCalls !== undefined) msg.toolCalls = parseToolCalls(toolCalls, join(path, 'tool_calls'));
    const toolCallId = optString(o, 'tool_call_id', path);
    if (toolCallId !== undefined) msg.toolCallId = toolCallId;
    if (msg.content === null && msg.toolCalls === undefined) invalid(join(path, 'content'), 'is required');
    if (role === 'tool' && toolCallId === undefined) invalid(join(path, 'tool_call_id'), 'is required for tool messages');
    return msg;
  });
}

function parseStop(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  if (typeof v === 'string') return v === '' ? [] : [v];
  if (!Array.isArray(v)) invalid('stop', `expected a string or an array of strings, got ${describe(v)}`);
  if (v.length > MAX_STOP) invalid('stop', `at most ${MAX_STOP} stop sequences`);
  return v.map((s, i) => {
    if (typeof s !== 'string' || s === '') invalid(join('stop', i), 'expected a non-empty string');
    return s;
  });
}

function parseTools(o: Json): ToolDefinition[] | undefined {
  const tools = optArray(o, 'tools', '');
  if (tools === undefined) return undefined;
  return tools.map((raw, i) => {
    const p = join('tools', i);
    const t = asObject(raw, p);
    if (t.type !== 'function') invalid(join(p, 'type'), "must be 'function'");
    const fn = asObject(t.function, join(p, 'function'));
    const def: ToolDefinition = { type: 'function', function: { name: reqString(fn, 'name', join(p, 'function'), { nonEmpty: true }) } };
    const description = optString(fn, 'description', join(p, 'function'));
    if (description !== undefined) def.function.description = description;
    const parameters = optObject(fn, 'parameters', join(p, 'function'));
    if (parameters !== undefined) def.function.parameters = parameters;
    return def;
  });
}

function parseSampling(o: Json): SamplingParams {
  const maxTokens = optNumber(o, 'max_completion_tokens', '', { min: 1, integer: true }) ?? optNumber(o, 'max_tokens', '', { min: 1, integer: true });
  const s: SamplingParams = { stop: parseStop(o.stop), n: optNumber(o, 'n', '', { min: 1, max: 16, integer: true }) ?? 1 };
  if (maxTokens !== undefined) s.maxTokens = maxTokens;
  const fields: [keyof SamplingParams, string, { min?: number; max?: number; integer?: boolean }][] = [
    ['temperature', 'temperature', { min: 0, max: 2 }],
    ['topP', 'top_p', { min: 0, max: 1 }],
    ['topK', 'top_k', { min: 0, max: 100000, integer: true }],
    ['minP', 'min_p', { min: 0, max: 1 }],
    ['seed', 'seed', { integer: true, min: -(2 ** 53), max: 2 ** 53 }],
    ['presencePenalty', 'presence_penalty', { min: -2, max: 2 }],
    ['frequencyPenalty', 'frequency_penalty', { min: -2, max: 2 }],
  ];
  for (const [key, wire, range] of fields) {
    const v = optNumber(o, wire, '', range);
    if (v !== undefined) (s as unknown as Record<string, number>)[key] = v;
  }
  return s;
}

/**
 * `response_format`: `{type: 'text' | 'json_object'}` or `{type: 'json_schema', json_schema: {name, schema?,
 * strict?, description?}}`. Checked here so a malformed one is a 400 naming the field on every deployment,
 * not an upstream's error (or nothing) later.
 */
function parseResponseFormat(o: Json): Json | undefined {
  const rf = optObject(o, 'response_format', '');
  if (rf === undefined) return undefined;
  const type = reqString(rf, 'type', 'response_format');
  if (!(RESPONSE_FORMATS as readonly string[]).includes(type)) invalid('response_format.type', `must be one of ${RESPONSE_FORMATS.join(', ')}`);
  if (type !== 'json_schema') return rf;
  const js = optObject(rf, 'json_schema', 'response_format');
  if (js === undefined) invalid('response_format.json_schema', "is required when type is 'json_schema'");
  reqString(js, 'name', 'response_format.json_schema', { nonEmpty: true });
  optObject(js, 'schema', 'response_format.json_schema');
  optBool(js, 'strict', 'response_format.json_schema');
  optString(js, 'description', 'response_format.json_schema');
  return rf;
}

/**
 * Token log-probabilities: no engine behind this gateway reports them (responses carry
 * `logprobs: null`), so asking for them is refused rather than silently answered without.
 * Chat spells it `logprobs: true` / `top_logprobs: N`; legacy completions `logprobs: N`.
 */
function refuseLogprobs(o: Json, chat: boolean): void {
  const unsupported = 'token log-probabilities are not supported by this gateway';
  if (chat) {
    if (optBool(o, 'logprobs', '') === true) invalid('logprobs', unsupported);
    const top = optNumber(o, 'top_logprobs', '', { min: 0, max: 20, integer: true });
    if (top !== undefined && top > 0) invalid('top_logprobs', unsupported);
    return;
  }
  if (o.top_logprobs !== undefined && o.top_logprobs !== null) invalid('top_logprobs', 'is a chat completions parameter; use logprobs');
  const n = optNumber(o, 'logprobs', '', { min: 0, max: 5, integer: true });
  if (n !== undefined && n > 0) invalid('logprobs', unsupported);
}

function parseCommon(o: Json, kind: 'chat' | 'completion'): Omit<ChatRequest, 'kind' | 'messages'> {
  const known = kind === 'chat' ? CHAT_KEYS : COMPLETION_KEYS;
  const model = reqString(o, 'model', '', { nonEmpty: true });
  const stream = optBool(o, 'stream', '') ?? false;
  const streamOptions = optObject(o, 'stream_options', '');
  const includeUsage = streamOptions === undefined ? false : (optBool(streamOptions, 'include_usage', 'stream_options') ?? false);
  const passthrough: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (!known.has(k)) passthrough[k] = v;
  const req: Omit<ChatRequest, 'kind' | 'messages'> = { model, sampling: parseSampling(o), stream, includeUsage, passthrough };
  const tools = parseTools(o);
  if (tools !== undefined) req.tools = tools;
  if (o.tool_choice !== undefined && o.tool_choice !== null) req.toolChoice = o.tool_choice;
  refuseLogprobs(o, kind === 'chat');
  const rf = parseResponseFormat(o);
  if (rf !== undefined) req.responseFormat = rf;
  const user = optString(o, 'user', '');
  if (user !== undefined) req.user = user;
  return req;
}

export function parseChatRequest(body: unknown): ChatRequest {
  const o = asObject(body, '');
  const messages = parseMessages(o.messages);
  return { kind: 'chat', ...parseCommon(o, 'chat'), messages };
}

export function parseCompletionRequest(body: unknown): CompletionRequest {
  const o = asObject(body, '');
  const p = o.prompt;
  let prompt: string;
  if (typeof p === 'string') prompt = p;
  else if (Array.isArray(p) && p.length === 1 && typeof p[0] === 'string') prompt = p[0];
  else if (p === undefined || p === null) invalid('prompt', 'is required');
  else invalid('prompt', 'expected a string (or an array of one string)');
  return { kind: 'completion', ...parseCommon(o, 'completion'), prompt };
}

export function parseEmbeddingRequest(body: unknown): EmbeddingRequest {
  const o = asObject(body, '');
  const model = reqString(o, 'model', '', { nonEmpty: true });
  const raw = o.input;
  let input: string[];
  if (typeof raw === 'string') input = [raw];
  else if (Array.isArray(raw) && raw.length > 0 && raw.every((x) => typeof x === 'string')) input = raw;
  else if (raw === undefined || raw === null) invalid('input', 'is required');
  else invalid('input', 'expected a string or a non-empty array of strings');
  if (input.length > 2048) invalid('input', 'at most 2048 inputs');
  const encodingFormat = optString(o, 'encoding_format', '') ?? 'float';
  if (encodingFormat !== 'float' && encodingFormat !== 'base64') invalid('encoding_format', "must be 'float' or 'base64'");
  const req: EmbeddingRequest = { model, input, encodingFormat };
  const dimensions = optNumber(o, 'dimensions', '', { min: 1, integer: true });
  if (dimensions !== undefined) req.dimensions = dimensions;
  const user = optString(o, 'user', '');
  if (user !== undefined) req.user = user;
  return req;
}

/** Parses a JSON body text; a syntax error is `invalid_request`. */
export function parseJsonBody(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new InferenceError('invalid_request', 'request body is not valid JSON', { diagnostic: e instanceof Error ? e.message : String(e) });
  }
}

// ---- rendering ----

export interface WireUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details?: { cached_tokens: number };
}

export function wireUsage(u: Usage): WireUsage {
  const w: WireUsage = { prompt_tokens: u.promptTokens, completion_tokens: u.completionTokens, total_tokens: u.promptTokens + u.completionTokens };
  if (u.cachedTokens !== undefined) w.prompt_tokens_details = { cached_tokens: u.cachedTokens };
  return w;
}

function wireToolCalls(calls: ToolCall[]): unknown[] {
  return calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.function.name, arguments: c.function.arguments } }));
}

export function renderChatCompletion(id: string, created: number, model: string, choices: ChoiceResult[], usage: Usage): unknown {
  return {
    id,
    object: 'chat.completion',
    created,
    model,
    choices: choices.map((c) => ({
      index: c.index,
      message: c.toolCalls !== undefined && c.toolCalls.length > 0
        ? { role: 'assistant', content: c.text === '' ? null : c.text, tool_calls: wireToolCalls(c.toolCalls) }
        : { role: 'assistant', content: c.text },
      logprobs: null,
      finish_reason: c.finishReason,
    })),
    usage: wireUsage(usage),
  };
}

export function renderTextCompletion(id: string, created: number, model: string, choices: ChoiceResult[], usage: Usage): unknown {
  return {
    id,
    object: 'text_completion',
    created,
    model,
    choices: choices.map((c) => ({ index: c.index, text: c.text, logprobs: null, finish_reason: c.finishReason })),
    usage: wireUsage(usage),
  };
}

/**
 * Pre-serialises the constant head of every chunk of one stream, so each chunk
 * costs one small JSON.stringify of the delta, not of the whole object.
 */
export class ChunkWriter {
  private readonly head: string;

  constructor(readonly kind: 'chat' | 'completion', id: string, created: number, model: string) {
    const object = kind === 'chat' ? 'chat.completion.chunk' : 'text_completion';
    this.head = `{"id":${JSON.stringify(id)},"object":"${object}","created":${created},"model":${JSON.stringify(model)},`;
  }

  /** One SSE event for one choice's delta. */
  delta(index: number, opts: { role?: boolean; text?: string; toolCalls?: ToolCallDelta[]; finishReason?: FinishReason | null }): string {
    const finish = opts.finishReason === undefined || opts.finishReason === null ? 'null' : `"${opts.finishReason}"`;
    if (this.kind === 'completion') {
      return `data: ${this.head}"choices":[{"index":${index},"text":${JSON.stringify(opts.text ?? '')},"logprobs":null,"finish_reason":${finish}}]}\n\n`;
    }
    let delta = '{';
    if (opts.role === true) delta += '"role":"assistant",';
    if (opts.text !== undefined) delta += `"content":${JSON.stringify(opts.text)},`;
    if (opts.toolCalls !== undefined && opts.toolCalls.length > 0) {
      delta += `"tool_calls":${JSON.stringify(opts.toolCalls.map((t) => {
        const fn: Record<string, string> = { arguments: t.argumentsDelta };
        if (t.name !== undefined) fn.name = t.name;
        return t.id !== undefined ? { index: t.index, id: t.id, type: 'function', function: fn } : { index: t.index, function: fn };
      }))},`;
    }
    delta = delta.length > 1 ? `${delta.slice(0, -1)}}` : '{}';
    return `data: ${this.head}"choices":[{"index":${index},"delta":${delta},"logprobs":null,"finish_reason":${finish}}]}\n\n`;
  }

  usage(u: Usage): string {
    return `data: ${this.head}"choices":[],"usage":${JSON.stringify(wireUsage(u))}}\n\n`;
  }
}

export const SSE_DONE = 'data: [DONE]\n\n';

export function renderEmbeddings(model: string, vectors: number[][], promptTokens: number, format: 'float' | 'base64'): unknown {
  return {
    object: 'list',
    data: vectors.map((v, index) => ({
      object: 'embedding',
      index,
      embedding: format === 'float' ? v : Buffer.from(new Float32Array(v).buffer).toString('base64'),
    })),
    model,
    usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
  };
}
