// The OpenAI wire format: request bodies in, response objects and stream chunks out.
// Parsing turns an untrusted body into a validated internal request, naming the
// exact `param` on failure. Unknown fields are kept in `passthrough` so an
// OpenAI-compatible upstream still receives what its client meant.

import { InferenceError } from '../errors.js';
import type {
  ChatMessage, ChatRequest, ChoiceResult, CompletionRequest, EmbeddingRequest, FinishReason, Role, SamplingParams,
  TokenLogprob, ToolCall, ToolCallDelta, ToolDefinition, Usage,
} from '../types.js';
import {
  type Json, asObject, describe, invalid, join, optArray, optBool, optNumber, optObject, optString, reqString,
} from '../validate.js';

const ROLES: readonly Role[] = ['system', 'developer', 'user', 'assistant', 'tool'];

const CHAT_KEYS = new Set([
  'model', 'messages', 'max_tokens', 'max_completion_tokens', 'temperature', 'top_p', 'top_k', 'min_p', 'seed',
  'presence_penalty', 'frequency_penalty', 'stop', 'n', 'stream', 'stream_options', 'tools', 'tool_choice',
  'response_format', 'user', 'logprobs', 'top_logprobs', 'logit_bias', 'parallel_tool_calls',
]);

/** OpenAI's documented limit on `stop` sequences; every OpenAI-compatible upstream accepts this many. */
const MAX_STOP = 4;
const RESPONSE_FORMATS = ['text', 'json_object', 'json_schema'] as const;
const COMPLETION_KEYS = new Set([...CHAT_KEYS, 'prompt'].filter((k) => k !== 'messages'));
/** OpenAI's limits: `top_logprobs` 0..20 on chat, `logprobs` 0..5 on legacy completions. */
const MAX_TOP_LOGPROBS_CHAT = 20;
const MAX_LOGPROBS_COMPLETION = 5;
/** Bounds the sampler work one request may ask for; OpenAI itself accepts a few hundred entries. */
const MAX_LOGIT_BIAS = 1024;
const TOKEN_ID = /^(0|[1-9][0-9]{0,9})$/;

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

type Range = { readonly min?: number; readonly max?: number; readonly integer?: boolean };
const POSITIVE_INT: Range = { min: 1, integer: true };
const CHOICES: Range = { min: 1, max: 16, integer: true };
/** The numeric sampling fields: made once, not per request (this runs on every request). */
const SAMPLING_FIELDS: readonly (readonly [keyof SamplingParams, string, Range])[] = [
  ['temperature', 'temperature', { min: 0, max: 2 }],
  ['topP', 'top_p', { min: 0, max: 1 }],
  ['topK', 'top_k', { min: 0, max: 100000, integer: true }],
  ['minP', 'min_p', { min: 0, max: 1 }],
  ['seed', 'seed', { integer: true, min: -(2 ** 53), max: 2 ** 53 }],
  ['presencePenalty', 'presence_penalty', { min: -2, max: 2 }],
  ['frequencyPenalty', 'frequency_penalty', { min: -2, max: 2 }],
];

function parseSampling(o: Json): SamplingParams {
  const maxTokens = optNumber(o, 'max_completion_tokens', '', POSITIVE_INT) ?? optNumber(o, 'max_tokens', '', POSITIVE_INT);
  const s: SamplingParams = { stop: parseStop(o.stop), n: optNumber(o, 'n', '', CHOICES) ?? 1 };
  if (maxTokens !== undefined) s.maxTokens = maxTokens;
  for (const [key, wire, range] of SAMPLING_FIELDS) {
    // Most requests set few of them: the key is looked at before the call.
    if (o[wire] === undefined) continue;
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
 * Token log-probabilities. Chat spells them `logprobs: true` with `top_logprobs: N` (0..20, which needs
 * `logprobs: true`, as OpenAI requires); legacy completions `logprobs: N` (0..5: the sampled token plus N
 * alternatives). Whether a runtime can report them is decided per runtime.
 */
function parseLogprobs(o: Json, chat: boolean, s: SamplingParams): void {
  if (chat) {
    const on = optBool(o, 'logprobs', '') ?? false;
    const top = optNumber(o, 'top_logprobs', '', { min: 0, max: MAX_TOP_LOGPROBS_CHAT, integer: true });
    if (top !== undefined && top > 0 && !on) invalid('top_logprobs', 'requires logprobs: true');
    if (on) {
      s.logprobs = true;
      s.topLogprobs = top ?? 0;
    }
    return;
  }
  if (o.top_logprobs !== undefined && o.top_logprobs !== null) invalid('top_logprobs', 'is a chat completions parameter; use logprobs');
  const n = optNumber(o, 'logprobs', '', { min: 0, max: MAX_LOGPROBS_COMPLETION, integer: true });
  if (n !== undefined) {
    s.logprobs = true;
    s.topLogprobs = n;
  }
}

/**
 * `logit_bias`: token id (a decimal string key, as JSON objects have) -> bias in -100..100. Ids are
 * checked against a model's vocabulary by the runtime that knows it.
 */
export function parseLogitBias(o: Json, path = ''): Record<string, number> | undefined {
  const lb = optObject(o, 'logit_bias', path);
  if (lb === undefined) return undefined;
  const p = join(path, 'logit_bias');
  const keys = Object.keys(lb);
  if (keys.length > MAX_LOGIT_BIAS) invalid(p, `at most ${MAX_LOGIT_BIAS} entries`);
  if (keys.length === 0) return undefined;
  const out: Record<string, number> = {};
  for (const k of keys) {
    if (!TOKEN_ID.test(k)) invalid(p, `keys must be token ids (non-negative integers), got '${k.slice(0, 40)}'`);
    const v = lb[k];
    if (typeof v !== 'number' || !Number.isFinite(v)) invalid(join(p, k), `expected a number, got ${describe(v)}`);
    if (v < -100 || v > 100) invalid(join(p, k), 'must be between -100 and 100');
    out[k] = v;
  }
  return out;
}

function parseCommon(o: Json, kind: 'chat' | 'completion'): Omit<ChatRequest, 'kind' | 'messages'> {
  const known = kind === 'chat' ? CHAT_KEYS : COMPLETION_KEYS;
  const model = reqString(o, 'model', '', { nonEmpty: true });
  const stream = optBool(o, 'stream', '') ?? false;
  const streamOptions = optObject(o, 'stream_options', '');
  const includeUsage = streamOptions === undefined ? false : (optBool(streamOptions, 'include_usage', 'stream_options') ?? false);
  const passthrough: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (!known.has(k)) passthrough[k] = v;
  const sampling = parseSampling(o);
  parseLogprobs(o, kind === 'chat', sampling);
  const logitBias = parseLogitBias(o);
  if (logitBias !== undefined) sampling.logitBias = logitBias;
  const req: Omit<ChatRequest, 'kind' | 'messages'> = { model, sampling, stream, includeUsage, passthrough };
  const tools = parseTools(o);
  if (tools !== undefined) req.tools = tools;
  if (o.tool_choice !== undefined && o.tool_choice !== null) req.toolChoice = o.tool_choice;
  const parallel = optBool(o, 'parallel_tool_calls', '');
  if (parallel !== undefined) req.parallelToolCalls = parallel;
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

interface WireTopLogprob {
  token: string;
  logprob: number;
  bytes: number[] | null;
}

export interface WireChatLogprob extends WireTopLogprob {
  top_logprobs: WireTopLogprob[];
}

/** Chat's `logprobs.content[]`: one entry per sampled token. */
export function wireChatLogprobs(lp: readonly TokenLogprob[]): WireChatLogprob[] {
  return lp.map((t) => ({
    token: t.token,
    logprob: t.logprob,
    bytes: t.bytes,
    top_logprobs: t.topLogprobs.map((a) => ({ token: a.token, logprob: a.logprob, bytes: a.bytes })),
  }));
}

export interface WireCompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Record<string, number>[];
  text_offset: number[];
}

/**
 * Legacy completions' `logprobs` object. `text_offset` counts characters into the choice's text from
 * `offset` (a stream passes the length already sent, so offsets run on across chunks).
 */
export function wireCompletionLogprobs(lp: readonly TokenLogprob[], offset: number): WireCompletionLogprobs {
  const out: WireCompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  let at = offset;
  for (const t of lp) {
    out.tokens.push(t.token);
    out.token_logprobs.push(t.logprob);
    const top: Record<string, number> = {};
    for (const a of t.topLogprobs) if (!(a.token in top)) top[a.token] = a.logprob;
    out.top_logprobs.push(top);
    out.text_offset.push(at);
    at += t.token.length;
  }
  return out;
}

function chatMessage(c: ChoiceResult): Record<string, unknown> {
  const hasTools = c.toolCalls !== undefined && c.toolCalls.length > 0;
  const m: Record<string, unknown> = { role: 'assistant', content: hasTools && c.text === '' ? null : c.text };
  if (c.reasoning !== undefined && c.reasoning !== '') m.reasoning_content = c.reasoning;
  if (hasTools && c.toolCalls !== undefined) m.tool_calls = wireToolCalls(c.toolCalls);
  return m;
}

export function renderChatCompletion(id: string, created: number, model: string, choices: ChoiceResult[], usage: Usage): unknown {
  return {
    id,
    object: 'chat.completion',
    created,
    model,
    choices: choices.map((c) => ({
      index: c.index,
      message: chatMessage(c),
      logprobs: c.logprobs === undefined ? null : { content: wireChatLogprobs(c.logprobs), refusal: null },
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
    choices: choices.map((c) => ({
      index: c.index,
      text: c.text,
      logprobs: c.logprobs === undefined ? null : wireCompletionLogprobs(c.logprobs, 0),
      finish_reason: c.finishReason,
    })),
    usage: wireUsage(usage),
  };
}

export interface DeltaOptions {
  role?: boolean;
  text?: string;
  reasoning?: string;
  toolCalls?: ToolCallDelta[];
  /** The tokens of this delta with their log-probabilities (only for requests that asked). */
  logprobs?: readonly TokenLogprob[];
  /** Completions: characters of this choice's text sent before this delta (`text_offset` runs on from it). */
  textOffset?: number;
  finishReason?: FinishReason | null;
}

/** A copy of `s` in one piece: V8 keeps a concatenation as a tree of its parts until something flattens it. */
function flat(s: string): string {
  return JSON.parse(JSON.stringify(s)) as string;
}

/**
 * Pre-serialises the constant head of every chunk of one stream, so each chunk
 * costs one small JSON.stringify of the delta, not of the whole object. Requests
 * without logprobs take the constant `"logprobs":null` path.
 */

/** A text event of choice 0 without the role (ChunkWriter.text): what stands between the head and the text's JSON string, and after it. */
const CHAT_TEXT_MID = '"choices":[{"index":0,"delta":{"content":';
const CHAT_TEXT_TAIL = '},"logprobs":null,"finish_reason":null}]}\n\n';
const COMPLETION_TEXT_MID = '"choices":[{"index":0,"text":';
const COMPLETION_TEXT_TAIL = ',"logprobs":null,"finish_reason":null}]}\n\n';

export class ChunkWriter {
  private readonly head: string;

  constructor(readonly kind: 'chat' | 'completion', id: string, created: number, model: string) {
    const object = kind === 'chat' ? 'chat.completion.chunk' : 'text_completion';
    // Kept for the whole stream: one flat string, not the tree of pieces the template builds
    // (about 0.3 KiB per idle stream; docs/benchmarks.md, "Idle concurrent streams").
    this.head = flat(`{"id":${JSON.stringify(id)},"object":"${object}","created":${created},"model":${JSON.stringify(model)},`);
  }

  /** One SSE event for one choice's delta. */
  delta(index: number, opts: DeltaOptions): string {
    const finish = opts.finishReason === undefined || opts.finishReason === null ? 'null' : `"${opts.finishReason}"`;
    if (this.kind === 'completion') {
      const lp = opts.logprobs === undefined ? 'null' : JSON.stringify(wireCompletionLogprobs(opts.logprobs, opts.textOffset ?? 0));
      return `data: ${this.head}"choices":[{"index":${index},"text":${JSON.stringify(opts.text ?? '')},"logprobs":${lp},"finish_reason":${finish}}]}\n\n`;
    }
    let delta = '{';
    if (opts.role === true) delta += '"role":"assistant",';
    if (opts.text !== undefined) delta += `"content":${JSON.stringify(opts.text)},`;
    if (opts.reasoning !== undefined) delta += `"reasoning_content":${JSON.stringify(opts.reasoning)},`;
    if (opts.toolCalls !== undefined && opts.toolCalls.length > 0) {
      delta += `"tool_calls":${JSON.stringify(opts.toolCalls.map((t) => {
        const fn: Record<string, string> = { arguments: t.argumentsDelta };
        if (t.name !== undefined) fn.name = t.name;
        return t.id !== undefined ? { index: t.index, id: t.id, type: 'function', function: fn } : { index: t.index, function: fn };
      }))},`;
    }
    delta = delta.length > 1 ? `${delta.slice(0, -1)}}` : '{}';
    const lp = opts.logprobs === undefined ? 'null' : `{"content":${JSON.stringify(wireChatLogprobs(opts.logprobs))},"refusal":null}`;
    return `data: ${this.head}"choices":[{"index":${index},"delta":${delta},"logprobs":${lp},"finish_reason":${finish}}]}\n\n`;
  }

  /**
   * One SSE event for a delta of text alone, given as its JSON string (exactly JSON.stringify of the text,
   * TokenChunk's TEXT_JSON): the same bytes as `delta(index, {role, text})`, without encoding the text again.
   */
  text(index: number, json: string, role: boolean): string {
    if (index === 0 && !role) {
      // Nearly every event of a stream: four concatenations of constant pieces (no number to render, fewer
      // intermediate strings than the template below; nothing more kept per stream).
      if (this.kind === 'chat') return 'data: ' + this.head + CHAT_TEXT_MID + json + CHAT_TEXT_TAIL;
      return 'data: ' + this.head + COMPLETION_TEXT_MID + json + COMPLETION_TEXT_TAIL;
    }
    if (this.kind === 'completion') return `data: ${this.head}"choices":[{"index":${index},"text":${json},"logprobs":null,"finish_reason":null}]}\n\n`;
    const delta = role ? '{"role":"assistant","content":' : '{"content":';
    return `data: ${this.head}"choices":[{"index":${index},"delta":${delta}${json}},"logprobs":null,"finish_reason":null}]}\n\n`;
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
