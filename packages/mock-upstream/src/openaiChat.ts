// POST /v1/chat/completions in OpenAI's wire format, streamed and not. Stream layout, per
// choice index: one role chunk (`delta.role`), one chunk per word (or per tool-argument
// piece), one chunk carrying the finish_reason with an empty delta; then, only with
// `stream_options.include_usage`, a usage chunk with `choices: []`; then `data: [DONE]`.
// Chunks are assembled from precomputed JSON fragments: this is the benchmark baseline.

import { InputError } from './errors.js';
import { contentText, isObject, optionalBoolean, optionalInt, optionalStrings, requireArray, requireObject, requireString, type JsonObject } from './fields.js';
import { openaiUsageJson, SSE_DONE, type RenderContext, type Rendered } from './render.js';
import { countWords, generate, type Generation } from './text.js';
import { chatEntryJson, chatLogprobsJson, checkLogitBias, type LogprobRequest, parseChatLogprobs } from './logprobs.js';
import { planToolCall, type ToolCallPlan, type ToolDef, type ToolMode } from './tools.js';

interface ChatRequest {
  readonly model: string;
  readonly stream: boolean;
  readonly includeUsage: boolean;
  readonly n: number;
  readonly maxTokens: number | undefined;
  readonly stop: readonly string[];
  readonly promptTokens: number;
  readonly tools: readonly ToolDef[];
  readonly toolMode: ToolMode;
  readonly lastUserText: string;
  /** Alternatives per token when logprobs were asked for. */
  readonly logprobs: LogprobRequest;
}

function parseTools(body: JsonObject): readonly ToolDef[] {
  const value = body.tools;
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new InputError("'tools' must be an array.", 'tools');
  return value.map((tool, i): ToolDef => {
    const fn = isObject(tool) ? tool.function : undefined;
    if (!isObject(fn) || typeof fn.name !== 'string') throw new InputError(`'tools[${i}].function.name' is required.`, `tools[${i}].function.name`);
    return { name: fn.name, schema: fn.parameters };
  });
}

function parseToolChoice(value: unknown): ToolMode {
  if (value === undefined || value === null || value === 'auto') return { kind: 'auto' };
  if (value === 'none') return { kind: 'none' };
  if (value === 'required') return { kind: 'any' };
  if (isObject(value) && isObject(value.function) && typeof value.function.name === 'string') return { kind: 'named', name: value.function.name };
  throw new InputError("'tool_choice' must be 'none', 'auto', 'required' or {type:'function', function:{name}}.", 'tool_choice');
}

function parseChat(raw: unknown): ChatRequest {
  const body = requireObject(raw, 'body');
  const model = requireString(body, 'model');
  const messages = requireArray(body, 'messages');
  if (messages.length === 0) throw new InputError("'messages' must contain at least one message.", 'messages');
  let promptTokens = 0;
  let lastUserText = '';
  for (const message of messages) {
    if (!isObject(message) || typeof message.role !== 'string') throw new InputError("Each message needs a 'role'.", 'messages');
    const text = contentText(message.content);
    promptTokens += countWords(text);
    if (message.role === 'user') lastUserText = text;
    // A tool result after the question is answered in text, as a real model would.
    if (message.role === 'tool') lastUserText = '';
  }
  const stream = optionalBoolean(body, 'stream');
  const streamOptions = body.stream_options;
  const includeUsage = stream && isObject(streamOptions) && streamOptions.include_usage === true;
  const maxTokens = optionalInt(body, 'max_completion_tokens', 0, 1_000_000) ?? optionalInt(body, 'max_tokens', 0, 1_000_000);
  checkLogitBias(body);
  optionalBoolean(body, 'parallel_tool_calls');
  return {
    logprobs: parseChatLogprobs(body),
    model,
    stream,
    includeUsage,
    n: optionalInt(body, 'n', 1, 128) ?? 1,
    maxTokens,
    stop: optionalStrings(body, 'stop', 4),
    promptTokens,
    tools: parseTools(body),
    toolMode: parseToolChoice(body.tool_choice),
    lastUserText,
  };
}

function textMessage(generation: Generation): Record<string, unknown> {
  return { role: 'assistant', content: generation.text, refusal: null, annotations: [] };
}

function toolMessage(plan: ToolCallPlan, callId: string): Record<string, unknown> {
  return {
    role: 'assistant',
    content: null,
    tool_calls: [{ id: callId, type: 'function', function: { name: plan.name, arguments: plan.argumentsJson } }],
    refusal: null,
    annotations: [],
  };
}

function finishReason(generation: Generation): string {
  return generation.finish === 'length' ? 'length' : 'stop';
}

type Answer = { readonly kind: 'tool'; readonly plan: ToolCallPlan } | { readonly kind: 'text'; readonly generation: Generation };

function choiceJson(answer: Answer, index: number, callId: string, logprobs: LogprobRequest): Record<string, unknown> {
  switch (answer.kind) {
    case 'tool':
      return { index, message: toolMessage(answer.plan, callId), logprobs: null, finish_reason: 'tool_calls' };
    case 'text': {
      const lp: unknown = logprobs === undefined ? null : JSON.parse(chatLogprobsJson(answer.generation.pieces, logprobs));
      return { index, message: textMessage(answer.generation), logprobs: lp, finish_reason: finishReason(answer.generation) };
    }
    default: {
      const never: never = answer;
      throw new Error(`unknown answer ${JSON.stringify(never)}`);
    }
  }
}

/** The chunks of one answer for choices 0..n-1, interleaved by index as OpenAI does. */
function answerEvents(answer: Answer, n: number, head: string, tail: string, callId: string, logprobs: LogprobRequest, events: string[]): void {
  switch (answer.kind) {
    case 'tool': {
      const nameJson = JSON.stringify(answer.plan.name);
      for (let i = 0; i < n; i++) {
        events.push(
          `${head}{"index":${i},"delta":{"role":"assistant","content":null,` +
            `"tool_calls":[{"index":0,"id":"${callId}","type":"function","function":{"name":${nameJson},"arguments":""}}],"refusal":null},` +
            `"logprobs":null,"finish_reason":null}${tail}`,
        );
      }
      for (const piece of answer.plan.pieces) {
        const pieceJson = JSON.stringify(piece);
        for (let i = 0; i < n; i++) {
          events.push(
            `${head}{"index":${i},"delta":{"tool_calls":[{"index":0,"function":{"arguments":${pieceJson}}}]},"logprobs":null,"finish_reason":null}${tail}`,
          );
        }
      }
      for (let i = 0; i < n; i++) events.push(`${head}{"index":${i},"delta":{},"logprobs":null,"finish_reason":"tool_calls"}${tail}`);
      return;
    }
    case 'text': {
      for (let i = 0; i < n; i++) {
        events.push(`${head}{"index":${i},"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}${tail}`);
      }
      answer.generation.piecesJson.forEach((pieceJson, w) => {
        const lp = logprobs === undefined ? 'null' : `{"content":[${chatEntryJson(w, answer.generation.pieces[w] ?? '', logprobs)}],"refusal":null}`;
        for (let i = 0; i < n; i++) events.push(`${head}{"index":${i},"delta":{"content":${pieceJson}},"logprobs":${lp},"finish_reason":null}${tail}`);
      });
      const reason = finishReason(answer.generation);
      for (let i = 0; i < n; i++) events.push(`${head}{"index":${i},"delta":{},"logprobs":null,"finish_reason":"${reason}"}${tail}`);
      return;
    }
    default: {
      const never: never = answer;
      throw new Error(`unknown answer ${JSON.stringify(never)}`);
    }
  }
}

/** The chat completions endpoint. */
export function chatCompletions(raw: unknown, ctx: RenderContext): Rendered {
  const request = parseChat(raw);
  const plan = planToolCall(request.tools, request.toolMode, request.lastUserText);
  const answer: Answer =
    plan !== undefined
      ? { kind: 'tool', plan }
      : { kind: 'text', generation: generate({ maxTokens: request.maxTokens, behaviorTokens: ctx.behaviorTokens }, request.stop) };
  const id = `chatcmpl-${ctx.id}`;
  const callId = `call_${ctx.id}`;
  const perChoice = answer.kind === 'tool' ? answer.plan.pieces.length : answer.generation.pieces.length;
  const usage = openaiUsageJson(request.promptTokens, perChoice * request.n);
  const modelJson = JSON.stringify(request.model);

  if (!request.stream) {
    const choices: Record<string, unknown>[] = [];
    for (let index = 0; index < request.n; index++) choices.push(choiceJson(answer, index, callId, request.logprobs));
    const body =
      `{"id":"${id}","object":"chat.completion","created":${ctx.created},"model":${modelJson},` +
      `"choices":${JSON.stringify(choices)},"usage":${usage},"service_tier":"default","system_fingerprint":"fp_mock"}`;
    return { kind: 'json', body };
  }

  const head =
    `data: {"id":"${id}","object":"chat.completion.chunk","created":${ctx.created},"model":${modelJson},` +
    `"service_tier":"default","system_fingerprint":"fp_mock","choices":[`;
  const tail = request.includeUsage ? '],"usage":null}\n\n' : ']}\n\n';
  const events: string[] = [];
  answerEvents(answer, request.n, head, tail, callId, request.logprobs, events);
  if (request.includeUsage) events.push(`${head}],"usage":${usage}}\n\n`);
  events.push(SSE_DONE);
  return { kind: 'sse', events };
}
