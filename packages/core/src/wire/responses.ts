// The OpenAI Responses wire format, inbound: a POST /v1/responses body becomes the
// same validated ChatRequest the chat parser produces, so every deployment (local
// or remote, whatever its provider) serves it through one request path, as
// /v1/messages does. Failures name the exact field as `param`.
//
// Mapping: `instructions` becomes a leading system message; `input` (a string, or
// items) becomes messages: message items by role (input_text / output_text parts
// joined), `function_call` items become assistant tool calls (merged into the
// assistant turn they follow), `function_call_output` items become tool messages,
// `reasoning` items are context the templates drop, so they are skipped. Function
// tools, `tool_choice`, `text.format` (as response_format), `max_output_tokens`,
// `temperature`/`top_p`, `top_logprobs` and `parallel_tool_calls` map onto the chat
// fields. What the gateway cannot do (hosted tools, background mode, prompt
// templates, conversations, truncation: auto) is a 400 naming the field.
// See docs/responses.md.

import type { ChatMessage, ChatRequest, SamplingParams, ToolCall, ToolDefinition } from '../types.js';
import {
  type Json, asObject, describe, invalid, join, optArray, optBool, optNumber, optObject, optString, reqString,
} from '../validate.js';

/** A Responses item as it travels on the wire (input and output items alike). */
export type ResponseItem = Json & { type: string };

/** Fields of the request echoed in the response object. */
export interface ResponsesEcho {
  instructions: string | null;
  max_output_tokens: number | null;
  metadata: Record<string, string>;
  parallel_tool_calls: boolean;
  previous_response_id: string | null;
  store: boolean;
  temperature: number | null;
  top_p: number | null;
  top_logprobs: number | null;
  text: { format: Json };
  reasoning: { effort: string | null; summary: null };
  tool_choice: unknown;
  tools: Json[];
  truncation: 'disabled';
  user: string | null;
}

export interface ResponsesRequest {
  readonly model: string;
  readonly stream: boolean;
  readonly store: boolean;
  readonly previousResponseId: string | undefined;
  readonly instructions: string | undefined;
  /** The request's own input items (a string input is one user message item). */
  readonly input: ResponseItem[];
  /** The chat request without history: `messages` holds only instructions + this input. */
  readonly chat: ChatRequest;
  readonly echo: ResponsesEcho;
}

const KNOWN_KEYS: ReadonlySet<string> = new Set([
  'model', 'input', 'instructions', 'max_output_tokens', 'temperature', 'top_p', 'stream', 'stream_options', 'store',
  'previous_response_id', 'metadata', 'parallel_tool_calls', 'tools', 'tool_choice', 'text', 'user', 'top_logprobs',
  'include', 'background', 'truncation', 'reasoning', 'service_tier', 'safety_identifier', 'prompt_cache_key',
]);

/** Keys OpenAI has that the gateway cannot honour: each a 400 naming it. */
const REFUSED: Readonly<Record<string, string>> = {
  conversation: 'conversations are not supported; use previous_response_id',
  prompt: 'prompt templates are not supported',
  max_tool_calls: 'is not supported',
};

const INCLUDES: ReadonlySet<string> = new Set(['message.output_text.logprobs']);
const MAX_METADATA = 16;

function textParts(v: unknown, path: string, role: string): string {
  if (typeof v === 'string') return v;
  if (!Array.isArray(v)) invalid(path, `expected a string or an array of content parts, got ${describe(v)}`);
  let out = '';
  v.forEach((raw, i) => {
    const p = join(path, i);
    const part = asObject(raw, p);
    const type = reqString(part, 'type', p);
    switch (type) {
      case 'input_text':
      case 'output_text':
      case 'text':
        out += reqString(part, 'text', p);
        return;
      case 'refusal':
        if (role !== 'assistant') invalid(join(p, 'type'), "'refusal' parts belong to assistant messages");
        out += reqString(part, 'refusal', p);
        return;
      default:
        invalid(join(p, 'type'), `content part type '${type}' is not supported; use 'input_text' or 'output_text'`);
    }
  });
  return out;
}

const ROLES: ReadonlySet<string> = new Set(['user', 'system', 'developer', 'assistant']);

/** Validates one input item and returns it in its canonical wire form (with `type`). */
function parseItem(raw: unknown, path: string): ResponseItem {
  const o = asObject(raw, path);
  const type = optString(o, 'type', path) ?? (o.role !== undefined ? 'message' : undefined);
  if (type === undefined) invalid(join(path, 'type'), 'is required');
  switch (type) {
    case 'message': {
      const role = reqString(o, 'role', path);
      if (!ROLES.has(role)) invalid(join(path, 'role'), 'must be one of user, system, developer, assistant');
      if (o.content === undefined || o.content === null) invalid(join(path, 'content'), 'is required');
      const text = textParts(o.content, join(path, 'content'), role);
      const item: ResponseItem = { type: 'message', role, content: [{ type: role === 'assistant' ? 'output_text' : 'input_text', text }] };
      const id = optString(o, 'id', path);
      if (id !== undefined) item.id = id;
      return item;
    }
    case 'function_call': {
      const item: ResponseItem = {
        type: 'function_call',
        call_id: reqString(o, 'call_id', path, { nonEmpty: true }),
        name: reqString(o, 'name', path, { nonEmpty: true }),
        arguments: reqString(o, 'arguments', path),
      };
      const id = optString(o, 'id', path);
      if (id !== undefined) item.id = id;
      return item;
    }
    case 'function_call_output': {
      const out = o.output;
      const p = join(path, 'output');
      const output = typeof out === 'string' ? out : out === undefined || out === null ? invalid(p, 'is required') : textParts(out, p, 'tool');
      const item: ResponseItem = { type: 'function_call_output', call_id: reqString(o, 'call_id', path, { nonEmpty: true }), output };
      const id = optString(o, 'id', path);
      if (id !== undefined) item.id = id;
      return item;
    }
    case 'reasoning': {
      const item: ResponseItem = { type: 'reasoning', summary: [] };
      const id = optString(o, 'id', path);
      if (id !== undefined) item.id = id;
      return item;
    }
    case 'item_reference':
      return { type: 'item_reference', id: reqString(o, 'id', path, { nonEmpty: true }) };
    default:
      return invalid(join(path, 'type'), `input item type '${type}' is not supported; use message, function_call, function_call_output or reasoning`);
  }
}

function parseInput(v: unknown): ResponseItem[] {
  if (v === undefined || v === null) return [];
  if (typeof v === 'string') return [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: v }] }];
  if (!Array.isArray(v)) invalid('input', `expected a string or an array of items, got ${describe(v)}`);
  return v.map((raw, i) => parseItem(raw, join('input', i)));
}

function itemText(item: ResponseItem): string {
  const content = item.content;
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let out = '';
  for (const part of content as Json[]) {
    if (typeof part.text === 'string') out += part.text;
    else if (typeof part.refusal === 'string') out += part.refusal;
  }
  return out;
}

/**
 * Items (inputs, or a stored response's outputs) as chat messages. A function call
 * joins the assistant turn right before it, as chat completions spell a turn that
 * says something and calls tools; `reasoning` items are skipped.
 */
export function itemsToMessages(items: readonly ResponseItem[]): ChatMessage[] {
  const out: ChatMessage[] = [];
  for (const item of items) {
    switch (item.type) {
      case 'message':
        out.push({ role: item.role as ChatMessage['role'], content: itemText(item) });
        break;
      case 'function_call': {
        const call: ToolCall = { id: String(item.call_id), type: 'function', function: { name: String(item.name), arguments: String(item.arguments) } };
        const last = out.at(-1);
        if (last?.role === 'assistant') (last.toolCalls ??= []).push(call);
        else out.push({ role: 'assistant', content: null, toolCalls: [call] });
        break;
      }
      case 'function_call_output':
        out.push({ role: 'tool', toolCallId: String(item.call_id), content: String(item.output) });
        break;
      default:
        break;
    }
  }
  return out;
}

function parseTools(o: Json): { defs: ToolDefinition[] | undefined; echo: Json[] } {
  const tools = optArray(o, 'tools', '');
  if (tools === undefined) return { defs: undefined, echo: [] };
  const defs: ToolDefinition[] = [];
  const echo: Json[] = [];
  tools.forEach((raw, i) => {
    const p = join('tools', i);
    const t = asObject(raw, p);
    const type = reqString(t, 'type', p);
    if (type !== 'function') invalid(join(p, 'type'), `tool type '${type}' is not supported; only function tools`);
    const name = reqString(t, 'name', p, { nonEmpty: true });
    const def: ToolDefinition = { type: 'function', function: { name } };
    const description = optString(t, 'description', p);
    if (description !== undefined) def.function.description = description;
    const parameters = optObject(t, 'parameters', p);
    if (parameters !== undefined) def.function.parameters = parameters;
    const strict = optBool(t, 'strict', p);
    defs.push(def);
    echo.push({ type: 'function', name, description: description ?? null, parameters: parameters ?? null, strict: strict ?? true });
  });
  return { defs, echo };
}

/** `tool_choice` in its chat (internal) spelling. */
function parseToolChoice(o: Json): unknown {
  const v = o.tool_choice;
  if (v === undefined || v === null) return undefined;
  if (v === 'auto' || v === 'none' || v === 'required') return v;
  if (typeof v === 'string') invalid('tool_choice', "must be 'auto', 'none', 'required' or {type: 'function', name}");
  const tc = asObject(v, 'tool_choice');
  const type = reqString(tc, 'type', 'tool_choice');
  if (type !== 'function') invalid('tool_choice.type', `tool_choice type '${type}' is not supported; use 'function'`);
  return { type: 'function', function: { name: reqString(tc, 'name', 'tool_choice', { nonEmpty: true }) } };
}

/** `text.format` as a chat `response_format`, and its echo. */
function parseTextFormat(o: Json): { responseFormat: Json | undefined; echo: Json } {
  const text = optObject(o, 'text', '');
  const plain = { type: 'text' };
  if (text === undefined) return { responseFormat: undefined, echo: plain };
  for (const k of Object.keys(text)) {
    if (k !== 'format' && !(k === 'verbosity' && (text.verbosity === null || text.verbosity === 'medium'))) invalid(join('text', k), 'is not supported');
  }
  const f = optObject(text, 'format', 'text');
  if (f === undefined) return { responseFormat: undefined, echo: plain };
  const type = reqString(f, 'type', 'text.format');
  switch (type) {
    case 'text':
      return { responseFormat: undefined, echo: plain };
    case 'json_object':
      return { responseFormat: { type: 'json_object' }, echo: { type: 'json_object' } };
    case 'json_schema': {
      const name = reqString(f, 'name', 'text.format', { nonEmpty: true });
      const schema = optObject(f, 'schema', 'text.format');
      if (schema === undefined) invalid('text.format.schema', 'is required');
      const js: Json = { name, schema };
      const strict = optBool(f, 'strict', 'text.format');
      if (strict !== undefined) js.strict = strict;
      const description = optString(f, 'description', 'text.format');
      if (description !== undefined) js.description = description;
      return { responseFormat: { type: 'json_schema', json_schema: js }, echo: { type: 'json_schema', ...js } };
    }
    default:
      return invalid('text.format.type', 'must be one of text, json_object, json_schema');
  }
}

function parseMetadata(o: Json): Record<string, string> {
  const m = optObject(o, 'metadata', '');
  if (m === undefined) return {};
  const keys = Object.keys(m);
  if (keys.length > MAX_METADATA) invalid('metadata', `at most ${MAX_METADATA} keys`);
  const out: Record<string, string> = {};
  for (const k of keys) {
    if (k.length > 64) invalid('metadata', 'keys are at most 64 characters');
    const v = m[k];
    if (typeof v !== 'string') invalid(join('metadata', k), `expected a string, got ${describe(v)}`);
    if (v.length > 512) invalid(join('metadata', k), 'at most 512 characters');
    out[k] = v;
  }
  return out;
}

/** Options the gateway cannot honour, refused by name unless they ask for what it does anyway. */
function refuseUnsupported(o: Json): void {
  for (const k of Object.keys(o)) {
    const why = REFUSED[k];
    if (why !== undefined && o[k] !== null && o[k] !== undefined) invalid(k, why);
    if (why === undefined && !KNOWN_KEYS.has(k)) invalid(k, `'${k}' is not supported by this server`);
  }
  if (optBool(o, 'background', '') === true) invalid('background', 'background mode is not supported');
  const truncation = optString(o, 'truncation', '');
  if (truncation !== undefined && truncation !== 'disabled') invalid('truncation', "only 'disabled' is supported");
  const reasoning = optObject(o, 'reasoning', '');
  if (reasoning !== undefined) {
    for (const k of Object.keys(reasoning)) {
      // `effort` travels as chat completions' `reasoning_effort` (each runtime honours or refuses it).
      if (k !== 'effort' && reasoning[k] !== null && reasoning[k] !== undefined) invalid(join('reasoning', k), 'is not supported');
    }
    optString(reasoning, 'effort', 'reasoning');
  }
  const tier = optString(o, 'service_tier', '');
  if (tier !== undefined && tier !== 'auto' && tier !== 'default') invalid('service_tier', "only 'auto' and 'default' are supported");
  const so = optObject(o, 'stream_options', '');
  if (so !== undefined) {
    for (const k of Object.keys(so)) if (k !== 'include_obfuscation') invalid(join('stream_options', k), 'is not supported');
    optBool(so, 'include_obfuscation', 'stream_options');
  }
  optString(o, 'safety_identifier', '');
  optString(o, 'prompt_cache_key', '');
}

function parseSampling(o: Json): SamplingParams {
  const s: SamplingParams = { stop: [], n: 1 };
  const max = optNumber(o, 'max_output_tokens', '', { min: 1, integer: true });
  if (max !== undefined) s.maxTokens = max;
  const temperature = optNumber(o, 'temperature', '', { min: 0, max: 2 });
  if (temperature !== undefined) s.temperature = temperature;
  const topP = optNumber(o, 'top_p', '', { min: 0, max: 1 });
  if (topP !== undefined) s.topP = topP;
  const top = optNumber(o, 'top_logprobs', '', { min: 0, max: 20, integer: true });
  const include = optArray(o, 'include', '') ?? [];
  let logprobs = false;
  include.forEach((v, i) => {
    if (typeof v !== 'string' || !INCLUDES.has(v)) invalid(join('include', i), `'${String(v)}' is not supported; only message.output_text.logprobs`);
    logprobs = true;
  });
  if (logprobs || (top !== undefined && top > 0)) {
    s.logprobs = true;
    s.topLogprobs = top ?? 0;
  }
  return s;
}

/** Validates a /v1/responses body. */
export function parseResponsesRequest(body: unknown): ResponsesRequest {
  const o = asObject(body, '');
  refuseUnsupported(o);
  const model = reqString(o, 'model', '', { nonEmpty: true });
  const input = parseInput(o.input);
  const instructions = optString(o, 'instructions', '');
  const previousResponseId = optString(o, 'previous_response_id', '');
  if (previousResponseId === '') invalid('previous_response_id', 'must not be empty');
  const sampling = parseSampling(o);
  const { defs, echo: toolsEcho } = parseTools(o);
  const toolChoice = parseToolChoice(o);
  const { responseFormat, echo: formatEcho } = parseTextFormat(o);
  const parallel = optBool(o, 'parallel_tool_calls', '');
  const stream = optBool(o, 'stream', '') ?? false;
  const store = optBool(o, 'store', '') ?? true;
  const user = optString(o, 'user', '');
  const metadata = parseMetadata(o);
  const effort = optObject(o, 'reasoning', '')?.['effort'];
  if (input.length === 0 && previousResponseId === undefined) invalid('input', 'is required');
  const messages = itemsToMessages(input);
  const chat: ChatRequest = {
    kind: 'chat',
    model,
    sampling,
    stream,
    includeUsage: true,
    passthrough: typeof effort === 'string' ? { reasoning_effort: effort } : {},
    messages: instructions === undefined || instructions === '' ? messages : [{ role: 'system', content: instructions }, ...messages],
  };
  if (defs !== undefined && defs.length > 0) chat.tools = defs;
  if (toolChoice !== undefined) chat.toolChoice = toolChoice;
  if (parallel !== undefined) chat.parallelToolCalls = parallel;
  if (responseFormat !== undefined) chat.responseFormat = responseFormat;
  if (user !== undefined) chat.user = user;
  const echo: ResponsesEcho = {
    instructions: instructions ?? null,
    max_output_tokens: sampling.maxTokens ?? null,
    metadata,
    parallel_tool_calls: parallel ?? true,
    previous_response_id: previousResponseId ?? null,
    store,
    temperature: sampling.temperature ?? null,
    top_p: sampling.topP ?? null,
    top_logprobs: sampling.topLogprobs ?? null,
    text: { format: formatEcho },
    reasoning: { effort: typeof effort === 'string' ? effort : null, summary: null },
    tool_choice: o.tool_choice ?? 'auto',
    tools: toolsEcho,
    truncation: 'disabled',
    user: user ?? null,
  };
  return { model, stream, store, previousResponseId, instructions, input, chat, echo };
}
