// Builds an Anthropic Messages request body from an internal request. System and
// developer messages merge into `system`; assistant tool calls become `tool_use`
// blocks; tool messages become `tool_result` blocks at the head of the next user
// turn; consecutive same-role turns merge (the API wants them alternating).
// Fields with no Anthropic equivalent are refused with a 400 naming them (`n` > 1,
// `response_format`, logprobs, `logit_bias`, seed, penalties, min_p and any other
// OpenAI field this gateway only passes through); see docs/openai-fields.md.

import { type ChatMessage, type GenerateRequest, InferenceError, type ToolDefinition } from '@inference/core';
import type { Json } from './http.js';

/** Anthropic requires max_tokens; OpenAI clients may omit it. */
export const DEFAULT_MAX_TOKENS = 4096;

type Block = Json & { type: string };

interface Turn {
  role: 'user' | 'assistant';
  content: Block[];
}

function bad(param: string, message: string): InferenceError {
  return new InferenceError('invalid_request', `${param}: ${message}`, { param });
}

function toolUseInput(args: string, param: string): Json {
  if (args.trim() === '') return {};
  let v: unknown;
  try {
    v = JSON.parse(args);
  } catch {
    throw bad(param, 'tool call arguments must be a JSON object for anthropic deployments');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(param, 'tool call arguments must be a JSON object for anthropic deployments');
  return v as Json;
}

/** Appends blocks to the last turn when it has the same role, else opens a turn. */
function addBlocks(turns: Turn[], role: Turn['role'], blocks: Block[]): void {
  if (blocks.length === 0) return;
  const last = turns.at(-1);
  if (last?.role !== role) {
    turns.push({ role, content: blocks });
    return;
  }
  if (blocks[0]?.type === 'tool_result') {
    // tool_result blocks must lead the user turn that answers the tool calls.
    const at = last.content.findIndex((b) => b.type !== 'tool_result');
    last.content.splice(at < 0 ? last.content.length : at, 0, ...blocks);
  } else {
    last.content.push(...blocks);
  }
}

function assistantBlocks(m: ChatMessage, i: number): Block[] {
  const blocks: Block[] = [];
  if (m.content !== null && m.content !== '') blocks.push({ type: 'text', text: m.content });
  (m.toolCalls ?? []).forEach((c, j) => {
    blocks.push({
      type: 'tool_use',
      id: c.id,
      name: c.function.name,
      input: toolUseInput(c.function.arguments, `messages[${i}].tool_calls[${j}].function.arguments`),
    });
  });
  return blocks;
}

export function wireMessages(messages: readonly ChatMessage[]): { system: string[]; turns: Turn[] } {
  const system: string[] = [];
  const turns: Turn[] = [];
  messages.forEach((m, i) => {
    switch (m.role) {
      case 'system':
      case 'developer':
        if (m.content !== null && m.content !== '') system.push(m.content);
        return;
      case 'user':
        if (m.content !== null && m.content !== '') addBlocks(turns, 'user', [{ type: 'text', text: m.content }]);
        return;
      case 'tool': {
        if (m.toolCallId === undefined) throw bad(`messages[${i}].tool_call_id`, 'is required for tool messages');
        const block: Block = { type: 'tool_result', tool_use_id: m.toolCallId, content: m.content ?? '' };
        if (m.isError === true) block.is_error = true;
        addBlocks(turns, 'user', [block]);
        return;
      }
      case 'assistant':
        addBlocks(turns, 'assistant', assistantBlocks(m, i));
        return;
      default: {
        const never: never = m.role;
        throw bad(`messages[${i}].role`, `unknown role ${String(never)}`);
      }
    }
  });
  return { system, turns };
}

function wireTools(tools: readonly ToolDefinition[]): Json[] {
  return tools.map((t) => {
    const w: Json = { name: t.function.name, input_schema: t.function.parameters ?? { type: 'object', properties: {} } };
    if (t.function.description !== undefined) w.description = t.function.description;
    return w;
  });
}

/** OpenAI's tool_choice spellings (the internal form) in Anthropic's. */
function wireToolChoice(choice: unknown, noParallel: boolean): Json | undefined {
  let out: Json;
  if (choice === undefined || choice === 'auto') out = { type: 'auto' };
  else if (choice === 'required') out = { type: 'any' };
  else if (choice === 'none') out = { type: 'none' };
  else if (typeof choice === 'object' && choice !== null && typeof (choice as Json).function === 'object' && (choice as Json).function !== null
    && typeof ((choice as Json).function as Json).name === 'string') {
    out = { type: 'tool', name: ((choice as Json).function as Json).name };
  } else {
    throw bad('tool_choice', "must be 'auto', 'required', 'none' or {type:'function', function:{name}}");
  }
  if (choice === undefined && !noParallel) return undefined;
  if (noParallel && out.type !== 'none') out.disable_parallel_tool_use = true;
  return out;
}

const UNSUPPORTED_SAMPLING: readonly [keyof GenerateRequest['sampling'], string][] = [
  ['logprobs', 'logprobs'], ['logitBias', 'logit_bias'], ['seed', 'seed'], ['presencePenalty', 'presence_penalty'],
  ['frequencyPenalty', 'frequency_penalty'], ['minP', 'min_p'],
];

/** OpenAI fields that change nothing about what is generated (storage and routing hints): accepted, as on local deployments. */
const HARMLESS_PASSTHROUGH: ReadonlySet<string> = new Set(['metadata', 'store', 'service_tier', 'prompt_cache_key', 'safety_identifier']);

/** What the Messages API has no field for is a 400 naming it, never dropped. */
function refuseUnsupported(req: GenerateRequest): void {
  const s = req.sampling;
  for (const [key, wire] of UNSUPPORTED_SAMPLING) {
    if (s[key] !== undefined) throw bad(wire, 'is not supported by anthropic deployments');
  }
  for (const key of Object.keys(req.passthrough)) {
    if (!HARMLESS_PASSTHROUGH.has(key)) throw bad(key, 'is not supported by anthropic deployments');
  }
}

export function buildMessagesBody(req: GenerateRequest, upstreamModel: string): Json {
  const s = req.sampling;
  if (s.n !== 1) throw bad('n', 'anthropic deployments generate one choice per request');
  if (req.responseFormat !== undefined) throw bad('response_format', 'is not supported by anthropic deployments');
  refuseUnsupported(req);
  const messages: ChatMessage[] = req.kind === 'chat' ? req.messages : [{ role: 'user', content: req.prompt }];
  const { system, turns } = wireMessages(messages);
  const body: Json = { model: upstreamModel, max_tokens: s.maxTokens ?? DEFAULT_MAX_TOKENS, messages: turns };
  if (system.length > 0) body.system = system.join('\n\n');
  if (s.temperature !== undefined) body.temperature = s.temperature;
  if (s.topP !== undefined) body.top_p = s.topP;
  if (s.topK !== undefined) body.top_k = s.topK;
  if (s.stop.length > 0) body.stop_sequences = s.stop;
  if (req.tools !== undefined && req.tools.length > 0) {
    body.tools = wireTools(req.tools);
    const choice = wireToolChoice(req.toolChoice, req.parallelToolCalls === false);
    if (choice !== undefined) body.tool_choice = choice;
  }
  if (req.user !== undefined) body.metadata = { user_id: req.user };
  if (req.stream) body.stream = true;
  return body;
}
