// The Anthropic Messages wire format, inbound: a /v1/messages body becomes the same
// validated ChatRequest the OpenAI parser produces, so every deployment (local or
// remote, whatever its provider) serves it. Failures name the exact field as
// `param`, in the OpenAI parser's path style (`messages[1].content[0].tool_use_id`).
//
// Mapping: `system` (string or text blocks) becomes a leading system message; a
// user turn's `tool_result` blocks become `tool` messages (placed first, as they
// answer the previous assistant turn) followed by a user message for its text; an
// assistant turn's `tool_use` blocks become `toolCalls` with the input as JSON text.
// `tool_choice` is stored in its OpenAI spelling (the internal form), and
// `disable_parallel_tool_use` as OpenAI's `parallel_tool_calls: false`.

import type { ChatMessage, ChatRequest, SamplingParams, ToolCall, ToolDefinition } from '../types.js';
import {
  type Json, asObject, describe, invalid, join, optArray, optBool, optNumber, optObject, optString, reqString,
} from '../validate.js';

const KNOWN_KEYS: ReadonlySet<string> = new Set([
  'model', 'messages', 'system', 'max_tokens', 'stop_sequences', 'temperature', 'top_p', 'top_k', 'tools',
  'tool_choice', 'metadata', 'stream', 'service_tier',
]);

/** Anthropic's own limit on stop sequences is generous; ours bounds the work per token. */
const MAX_STOP_SEQUENCES = 16;

function textBlocks(v: unknown, path: string, what: string): string {
  if (typeof v === 'string') return v;
  if (!Array.isArray(v)) invalid(path, `expected a string or an array of text blocks, got ${describe(v)}`);
  let out = '';
  v.forEach((raw, i) => {
    const p = join(path, i);
    const b = asObject(raw, p);
    const type = reqString(b, 'type', p);
    if (type !== 'text') invalid(join(p, 'type'), `${what} supports only 'text' blocks, got '${type}'`);
    out += reqString(b, 'text', p);
  });
  return out;
}

function parseSystem(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  return textBlocks(v, 'system', 'system');
}

function toolResultText(v: unknown, path: string): string {
  if (v === undefined || v === null) return '';
  return textBlocks(v, path, 'tool_result content');
}

function parseUserTurn(content: unknown, path: string): ChatMessage[] {
  if (typeof content === 'string') return [{ role: 'user', content }];
  if (!Array.isArray(content)) invalid(path, `expected a string or an array of content blocks, got ${describe(content)}`);
  if (content.length === 0) invalid(path, 'must contain at least one content block');
  const results: ChatMessage[] = [];
  let text: string | undefined;
  content.forEach((raw, i) => {
    const p = join(path, i);
    const b = asObject(raw, p);
    const type = reqString(b, 'type', p);
    switch (type) {
      case 'text':
        text = (text ?? '') + reqString(b, 'text', p);
        return;
      case 'tool_result': {
        const msg: ChatMessage = {
          role: 'tool',
          toolCallId: reqString(b, 'tool_use_id', p, { nonEmpty: true }),
          content: toolResultText(b.content, join(p, 'content')),
        };
        if (optBool(b, 'is_error', p) === true) msg.isError = true;
        results.push(msg);
        return;
      }
      default:
        invalid(join(p, 'type'), `content block type '${type}' is not supported in user messages; use 'text' or 'tool_result'`);
    }
  });
  return text === undefined ? results : [...results, { role: 'user', content: text }];
}

function parseToolUse(b: Json, path: string): ToolCall {
  const input = b.input === undefined ? {} : asObject(b.input, join(path, 'input'));
  return {
    id: reqString(b, 'id', path, { nonEmpty: true }),
    type: 'function',
    function: { name: reqString(b, 'name', path, { nonEmpty: true }), arguments: JSON.stringify(input) },
  };
}

function parseAssistantTurn(content: unknown, path: string): ChatMessage {
  if (typeof content === 'string') return { role: 'assistant', content };
  if (!Array.isArray(content)) invalid(path, `expected a string or an array of content blocks, got ${describe(content)}`);
  let text: string | null = null;
  const calls: ToolCall[] = [];
  content.forEach((raw, i) => {
    const p = join(path, i);
    const b = asObject(raw, p);
    const type = reqString(b, 'type', p);
    switch (type) {
      case 'text':
        text = (text ?? '') + reqString(b, 'text', p);
        return;
      case 'tool_use':
        calls.push(parseToolUse(b, p));
        return;
      default:
        invalid(join(p, 'type'), `content block type '${type}' is not supported in assistant messages; use 'text' or 'tool_use'`);
    }
  });
  const msg: ChatMessage = { role: 'assistant', content: text };
  if (calls.length > 0) msg.toolCalls = calls;
  if (text === null && calls.length === 0) msg.content = '';
  return msg;
}

function parseMessages(v: unknown): ChatMessage[] {
  if (v === undefined || v === null) invalid('messages', 'is required');
  if (!Array.isArray(v)) invalid('messages', `expected an array, got ${describe(v)}`);
  if (v.length === 0) invalid('messages', 'must contain at least one message');
  const out: ChatMessage[] = [];
  v.forEach((raw, i) => {
    const path = join('messages', i);
    const o = asObject(raw, path);
    const role = reqString(o, 'role', path);
    if (o.content === undefined || o.content === null) invalid(join(path, 'content'), 'is required');
    switch (role) {
      case 'user':
        out.push(...parseUserTurn(o.content, join(path, 'content')));
        return;
      case 'assistant':
        out.push(parseAssistantTurn(o.content, join(path, 'content')));
        return;
      default:
        invalid(join(path, 'role'), "must be 'user' or 'assistant' (the system prompt goes in 'system')");
    }
  });
  return out;
}

function parseTools(o: Json): ToolDefinition[] | undefined {
  const tools = optArray(o, 'tools', '');
  if (tools === undefined) return undefined;
  return tools.map((raw, i) => {
    const p = join('tools', i);
    const t = asObject(raw, p);
    const type = optString(t, 'type', p);
    if (type !== undefined && type !== 'custom') invalid(join(p, 'type'), `tool type '${type}' is not supported; only custom tools (name, input_schema)`);
    const schema = optObject(t, 'input_schema', p);
    if (schema === undefined) invalid(join(p, 'input_schema'), 'is required');
    const def: ToolDefinition = { type: 'function', function: { name: reqString(t, 'name', p, { nonEmpty: true }), parameters: schema } };
    const description = optString(t, 'description', p);
    if (description !== undefined) def.function.description = description;
    return def;
  });
}

/** `tool_choice` in its internal (OpenAI) spelling, and whether parallel calls are off. */
function parseToolChoice(o: Json): { choice?: unknown; noParallel: boolean } {
  const tc = optObject(o, 'tool_choice', '');
  if (tc === undefined) return { noParallel: false };
  const type = reqString(tc, 'type', 'tool_choice');
  const noParallel = optBool(tc, 'disable_parallel_tool_use', 'tool_choice') === true;
  switch (type) {
    case 'auto':
      return { choice: 'auto', noParallel };
    case 'any':
      return { choice: 'required', noParallel };
    case 'none':
      return { choice: 'none', noParallel };
    case 'tool':
      return { choice: { type: 'function', function: { name: reqString(tc, 'name', 'tool_choice', { nonEmpty: true }) } }, noParallel };
    default:
      return invalid('tool_choice.type', "must be one of auto, any, tool, none");
  }
}

function parseStopSequences(o: Json): string[] {
  const v = optArray(o, 'stop_sequences', '');
  if (v === undefined) return [];
  if (v.length > MAX_STOP_SEQUENCES) invalid('stop_sequences', `at most ${MAX_STOP_SEQUENCES} stop sequences`);
  return v.map((s, i) => {
    if (typeof s !== 'string' || s === '') invalid(join('stop_sequences', i), 'expected a non-empty string');
    return s;
  });
}

function parseSampling(o: Json): SamplingParams {
  const maxTokens = optNumber(o, 'max_tokens', '', { min: 1, integer: true });
  if (maxTokens === undefined) invalid('max_tokens', 'is required');
  const s: SamplingParams = { maxTokens, stop: parseStopSequences(o), n: 1 };
  const temperature = optNumber(o, 'temperature', '', { min: 0, max: 1 });
  const topP = optNumber(o, 'top_p', '', { min: 0, max: 1 });
  const topK = optNumber(o, 'top_k', '', { min: 0, max: 100000, integer: true });
  if (temperature !== undefined) s.temperature = temperature;
  if (topP !== undefined) s.topP = topP;
  if (topK !== undefined) s.topK = topK;
  return s;
}

/** Validates a /v1/messages body into the internal chat request. */
export function parseMessagesRequest(body: unknown): ChatRequest {
  const o = asObject(body, '');
  for (const k of Object.keys(o)) {
    if (!KNOWN_KEYS.has(k)) invalid(k, `'${k}' is not supported by this server`);
  }
  const model = reqString(o, 'model', '', { nonEmpty: true });
  const sampling = parseSampling(o);
  const system = parseSystem(o.system);
  const messages = parseMessages(o.messages);
  const req: ChatRequest = {
    kind: 'chat',
    model,
    sampling,
    stream: optBool(o, 'stream', '') ?? false,
    // Anthropic streams always end with usage (message_delta); the engine reports it either way.
    includeUsage: true,
    passthrough: {},
    messages: system === undefined || system === '' ? messages : [{ role: 'system', content: system }, ...messages],
  };
  optString(o, 'service_tier', '');
  const tools = parseTools(o);
  if (tools !== undefined) req.tools = tools;
  const { choice, noParallel } = parseToolChoice(o);
  if (choice !== undefined) req.toolChoice = choice;
  if (noParallel && tools !== undefined) req.parallelToolCalls = false;
  const metadata = optObject(o, 'metadata', '');
  if (metadata !== undefined) {
    const user = optString(metadata, 'user_id', 'metadata');
    if (user !== undefined) req.user = user;
  }
  return req;
}
