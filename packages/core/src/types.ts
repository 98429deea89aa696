// Validated internal request and result types, and the ModelRunner contract that
// both engine kinds (local GGUF, remote provider) implement. Wire formats (OpenAI,
// Anthropic) are translated into these at the edge; inside, they are trusted.

import type { CancelSignal } from './cancel.js';
import type { FlowSignal } from './flow.js';
import type { TraceSpan } from './trace.js';

export type Role = 'system' | 'developer' | 'user' | 'assistant' | 'tool';

export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export interface ChatMessage {
  role: Role;
  /** Text content; multi-part text content is joined at the edge. */
  content: string | null;
  name?: string;
  toolCalls?: ToolCall[];
  toolCallId?: string;
  /** A tool result that reports a failure (Anthropic `tool_result.is_error`). */
  isError?: boolean;
}

export interface ToolDefinition {
  type: 'function';
  function: { name: string; description?: string; parameters?: Record<string, unknown> };
}

/**
 * One sampled token with its log-probability and, when asked, the most likely
 * alternatives at that position (OpenAI's `logprobs.content[]` entry). `bytes` are
 * the token's UTF-8 bytes (a token may hold part of a character).
 */
export interface TokenLogprob {
  token: string;
  logprob: number;
  bytes: number[] | null;
  topLogprobs: { token: string; logprob: number; bytes: number[] | null }[];
}

/** Which tool the model must (or must not) call; the OpenAI `tool_choice` in internal form. */
export type ToolChoice = 'auto' | 'none' | 'required' | { type: 'function'; name: string };

export interface SamplingParams {
  /** Absent: generate until end of generation or until the context is full (local). */
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  minP?: number;
  seed?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  stop: string[];
  /** Number of choices. */
  n: number;
  /** Report the sampled tokens' log-probabilities (chat `logprobs: true`, completions `logprobs: N`). */
  logprobs?: boolean;
  /** Alternatives per position, 0..20 (chat `top_logprobs`, completions `logprobs: N`). */
  topLogprobs?: number;
  /** Token id -> bias in -100..100 (OpenAI `logit_bias`); -100 bans the token. */
  logitBias?: Record<string, number>;
}

interface GenerateRequestBase {
  /** The deployment name the client asked for. */
  model: string;
  sampling: SamplingParams;
  stream: boolean;
  /** Emit a final usage chunk (OpenAI `stream_options.include_usage`). */
  includeUsage: boolean;
  tools?: ToolDefinition[];
  /** Raw OpenAI spelling until each runtime interprets it (see ToolChoice for the internal form). */
  toolChoice?: unknown;
  /** OpenAI `parallel_tool_calls` (default true). */
  parallelToolCalls?: boolean;
  responseFormat?: Record<string, unknown>;
  user?: string;
  /**
   * Fields the client sent that we do not interpret, forwarded verbatim to
   * OpenAI-compatible upstreams (e.g. logit_bias, metadata).
   */
  passthrough: Record<string, unknown>;
}

export interface ChatRequest extends GenerateRequestBase {
  kind: 'chat';
  messages: ChatMessage[];
}

export interface CompletionRequest extends GenerateRequestBase {
  kind: 'completion';
  prompt: string;
}

export type GenerateRequest = ChatRequest | CompletionRequest;

export interface EmbeddingRequest {
  model: string;
  input: string[];
  encodingFormat: 'float' | 'base64';
  dimensions?: number;
  user?: string;
}

export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter';

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  /** Prompt tokens served from a prefix cache, where the engine knows. */
  cachedTokens?: number;
  /** Prompt tokens written to a provider's prompt cache (Anthropic), where known. */
  cacheWriteTokens?: number;
}

export interface ToolCallDelta {
  index: number;
  id?: string;
  name?: string;
  argumentsDelta: string;
}

/**
 * Marks a chunk's text as already JSON-encoded, exactly as JSON.stringify(text) gives it: a
 * provider that read those bytes from its upstream hands them on, and the client's OpenAI
 * stream writes them instead of encoding the text again (docs/architecture.md, streamed
 * pass-through). A symbol, so it never crosses the wire between nodes (a peer cannot forge it)
 * and nothing that serialises a chunk sees it.
 */
export const TEXT_JSON: unique symbol = Symbol('textJson');

/**
 * One step of output for one choice. Engines emit one chunk per decode step per
 * choice (not necessarily one token), so `tokens` may be above 1.
 */
export interface TokenChunk {
  /** JSON.stringify(text), exactly, when the producer has it at hand (see TEXT_JSON); a chunk whose text changes must drop it. */
  [TEXT_JSON]?: string;
  index: number;
  text: string;
  tokens: number;
  toolCalls?: ToolCallDelta[];
  /** Reasoning text the chat template separates from the answer (`reasoning_content`). */
  reasoningDelta?: string;
  /** One entry per token of `text`, when the request asked for logprobs. */
  logprobs?: TokenLogprob[];
  finishReason?: FinishReason;
}

export interface ChoiceResult {
  index: number;
  text: string;
  finishReason: FinishReason;
  toolCalls?: ToolCall[];
  /** Reasoning text the chat template separates from the answer (`reasoning_content`). */
  reasoning?: string;
  /** One entry per generated token, when the request asked for logprobs. */
  logprobs?: TokenLogprob[];
  /** Which stop sequence ended the text, where the engine reports it. */
  stopSequence?: string;
}

/** The aggregate of a whole generation. */
export interface Tokens {
  choices: ChoiceResult[];
  usage: Usage;
}

export interface EmbeddingResult {
  vectors: number[][];
  promptTokens: number;
}

export interface RunContext {
  readonly requestId: string;
  /** Aborted on client disconnect or deadline; engines free the work at once. */
  readonly signal: CancelSignal;
  /** Paused while the client reads more slowly than the output comes (absent: never). */
  readonly flow?: FlowSignal;
  /** The span this work runs under, when tracing is on (docs/tracing.md); absent otherwise. */
  readonly trace?: TraceSpan | undefined;
}

/** Receives chunks as the engine produces them. */
export type ChunkSink = (chunk: TokenChunk) => void;

export interface ReplicaLoad {
  /** Requests admitted and not finished (queued + running). */
  readonly outstanding: number;
  readonly queued: number;
  readonly capacity: number;
}

/**
 * What the request path needs of a replica, whatever runs it. `generate` resolves
 * with the aggregate after the last chunk was pushed to `sink`; it rejects with an
 * InferenceError. A rejection says through `InferenceError` whether any chunk was
 * emitted before it (the caller tracks that itself).
 */
/** What a replica can say about the model it serves (shown in /v1/models and admin status). */
export interface ModelDetails {
  /** Where the chat template comes from: the model's metadata, the deployment's `engine.chatTemplate`, or the documented fallback. */
  readonly templateSource?: 'model' | 'override' | 'fallback';
  /** Which template: the override's file name or built-in name; `tokenizer.chat_template` for the model's own. */
  readonly templateName?: string;
  /** Whether the template renders tool definitions (tool calling works on this deployment). */
  readonly templateTools?: boolean;
  /** Tokens one sequence may hold (prompt + completion). */
  readonly contextLength?: number;
  readonly backend?: string;
  /** The OS process that runs the model, for local replicas. */
  readonly pid?: number;
}

export interface ModelRunner {
  readonly id: string;
  readonly deployment: string;
  /** Present once the replica has loaded its model (local replicas). */
  details?(): ModelDetails | undefined;
  generate(req: GenerateRequest, ctx: RunContext, sink: ChunkSink): Promise<Tokens>;
  embed(req: EmbeddingRequest, ctx: RunContext): Promise<EmbeddingResult>;
  load(): ReplicaLoad;
  healthy(): boolean;
  stop(): Promise<void>;
}
