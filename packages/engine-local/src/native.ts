// The typed face of the native addon (build/Release/inference_native.node) and how it
// is found. Only the engine host process loads it; a remote-only install never does,
// so a missing addon is a value (`tryLoadAddon`), not a crash at import time.

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EngineFaultKind } from '@inference/core';

export const ADDON_FILE = join('build', 'Release', 'inference_native.node');
/** Environment variable that names the addon file explicitly. */
export const ADDON_ENV = 'INFERENCE_NATIVE_ADDON';

export interface NativeGpu {
  id: number;
  name: string;
  description: string;
  totalMemory: number;
  freeMemory: number;
  /** "8.9" for CUDA devices; null where unknown. */
  computeCapability: string | null;
}

export interface NativeInventory {
  backend: 'cpu' | 'cuda';
  gpus: NativeGpu[];
  cpuThreads: number;
  totalRam: number;
  freeRam: number;
}

export interface NativeEngineOptions {
  modelPath: string;
  /** KV cells of the generation context (shared by all sequences: the cache is unified). */
  contextSize: number;
  maxSequences: number;
  gpuLayers: number;
  threads: number;
  /** Per-step token budget: decode tokens first, then prompt chunks. */
  batchTokens: number;
  /** Allow embed() (a second context is created on first use). Default true. */
  embeddings?: boolean;
  /**
   * false (default): each sequence owns contextSize / maxSequences KV cells, and a
   * token's attention spans only its own sequence (fast batching). true: one pool of
   * contextSize cells that any sequence may fill (long single sequences; KV exhaustion
   * fails the youngest sequence with OutOfMemory).
   */
  kvUnified?: boolean;
  /**
   * Host-memory prompt cache (docs/architecture.md, "Host-memory prompt cache"): bytes of
   * saved sequence states that a later request with the same prefix restores. Default 0
   * (off) for the addon; a deployment's default is engine.promptCacheMiB's. Ignored with
   * kvUnified (stats().promptCacheCapacity stays 0).
   */
  promptCacheBytes?: number;
  /** Test hook: the least an idle engine waits for the rest of a burst (native/engine.cpp, Engine::gather). */
  gatherFloorUs?: number;
  /** Default: 'off' when gpuLayers is 0 (measured 2x faster on CPU), else 'auto'. */
  flashAttention?: 'auto' | 'on' | 'off';
  /**
   * Events the engine thread may queue for the event loop (default 16): when JS falls
   * that many steps behind, the engine waits for it instead of decoding further.
   */
  eventQueue?: number;
  onProgress?: (fraction: number) => void;
}

export interface NativeModelInfo {
  name: string;
  chatTemplate: string | null;
  nCtxTrain: number;
  nVocab: number;
  nEmbd: number;
  bos: number;
  eos: number;
  hasEncoder: boolean;
  /** Cells in the generation context. */
  contextSize: number;
  /** The most cells one sequence may use (prompt + max_tokens must fit). */
  sequenceContext: number;
}

/** Sampling defaults when a field is absent: temperature 1, topP 1, topK 0 (off), minP 0 (off), random seed. */
export interface NativeSubmit {
  /** uint32, unique among the engine's live sequences. */
  id: number;
  prompt: Int32Array;
  /** Absent: until end of generation or until the sequence's context is full (finish 'length'). */
  maxTokens?: number;
  /** <= 0: greedy. */
  temperature?: number;
  topP?: number;
  topK?: number;
  minP?: number;
  /** Absent or negative: random. */
  seed?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  stop: string[];
  /**
   * Constrained decoding (exclusive): a GBNF grammar (root rule `root`), or a JSON schema
   * as JSON text that the engine converts to one. Sampling then only picks tokens the
   * grammar allows, and end-of-generation only once it is complete. A grammar that does
   * not parse or a schema that cannot be converted fails the sequence with
   * invalid_request naming the field.
   */
  grammar?: string;
  jsonSchema?: string;
  /**
   * Chat-template constrained decoding (tool calls; see NativeChatPrompt): a lazy
   * `grammar` applies from the first trigger on; a non-lazy one first consumes the
   * tokens of `grammarPrefill` (the generation prompt the template placed).
   */
  grammarLazy?: boolean;
  grammarTriggers?: NativeGrammarTrigger[];
  grammarPrefill?: string;
  /** Special tokens emitted as their text (tool-call markers); texts that are not one token are ignored. */
  preservedTokens?: string[];
  /** [tokenId, bias] pairs added to the logits; -Infinity bans the token. An id outside the vocabulary fails the sequence (field 'logitBias'). */
  logitBias?: [number, number][];
  /** Report each sampled token's log-probability and this many alternatives (0..20). Absent: none. */
  logprobs?: number;
}

export interface NativeGrammarTrigger {
  type: 'word' | 'pattern' | 'pattern_full';
  value: string;
}

/** One alternative at a sampled position: token text (whole UTF-8 characters), its bytes, its log-probability. */
export interface NativeTopProb {
  id: number;
  t: string;
  b: number[];
  lp: number;
}

/** A sampled token's log-probability (softmax of the raw logits, as llama-server) and the top alternatives. */
export interface NativeTokenProb extends NativeTopProb {
  top: NativeTopProb[];
}

export type NativeFinish = 'stop' | 'length' | 'cancelled';

export type InjectableFault = EngineFaultKind | 'GgmlAbort';

/** Why one sequence failed. Fault kinds mean the whole context failed. */
export type NativeSequenceErrorKind =
  | 'context_length_exceeded'
  | 'invalid_request'
  | 'overloaded'
  | EngineFaultKind;

/** The submit field an invalid_request names, when one is at fault. */
/** 'tools' and 'messages' come from the engine host (chat template), the rest from the addon. */
export type NativeErrorField = 'grammar' | 'jsonSchema' | 'logitBias' | 'tools' | 'messages' | 'chat_template_kwargs' | 'reasoning_effort';

export interface NativeSequenceError {
  kind: NativeSequenceErrorKind;
  message: string;
  field?: NativeErrorField;
}

export interface NativeStepItem {
  id: number;
  /** Text safe to emit (complete UTF-8, no stop string or possible stop-string prefix). */
  text: string;
  /** Tokens sampled for this sequence in this step. */
  n: number;
  done?: NativeFinish;
  error?: NativeSequenceError;
  /** On the first item of a sequence and at its end. */
  promptTokens?: number;
  cachedTokens?: number;
  /** At the end. */
  completionTokens?: number;
  /** One per token sampled in this step, when the request asked for logprobs. */
  lp?: NativeTokenProb[];
}

export interface NativeStepEvent {
  step: number;
  /** Sequences and tokens in the decoded batch. */
  seqs: number;
  tokens: number;
  items: NativeStepItem[];
  /** The context failed: ContextPoisoned / Unrecoverable (the process should be replaced). */
  fault?: { kind: EngineFaultKind; message: string };
}

export interface NativeStats {
  activeSequences: number;
  queuedSequences: number;
  steps: number;
  lastStepSequences: number;
  lastStepTokens: number;
  /** The largest number of sequences that shared one decode step so far. */
  maxStepSequences: number;
  kvCellsUsed: number;
  kvCellsTotal: number;
  promptTokensReused: number;
  /** Of promptTokensReused, the tokens whose KV cells were copied from another slot (prefix sharing). */
  promptTokensShared: number;
  /** Steps in which the queue's head waited for a running prefill of its prompt's prefix, to start from a copy of it. */
  admissionsDeferred: number;
  /** Requests that started from a state restored from the host-memory prompt cache. */
  promptCacheHits: number;
  /** Of promptTokensReused, the tokens restored from the host-memory prompt cache. */
  promptTokensRestored: number;
  /** States saved to the host-memory prompt cache (a slot's cache about to be overwritten). */
  promptCacheSaves: number;
  /** States dropped, least recently used first, to keep the cache within its bytes. */
  promptCacheEvictions: number;
  promptCacheEntries: number;
  /** Bytes the saved states (and their tokens) hold now; never above promptCacheCapacity. */
  promptCacheBytes: number;
  /** The cache's bound in bytes; 0 when it is off (or the KV layout is unified). */
  promptCacheCapacity: number;
  /** Sequences held out of the batch by pause(id) (back-pressure); a pause for an ended sequence is not kept. */
  pausedSequences: number;
  totalDecodedTokens: number;
  totalSampledTokens: number;
}

export interface NativeSimpleChatMessage {
  role: string;
  content: string;
}

/** A chat request in OpenAI's JSON spelling (JSON texts), as llama-server's chat path takes it. */
export interface NativeChatInput {
  /** The `messages` array (role, content, tool_calls, tool_call_id, name, reasoning_content). */
  messages: string;
  /** The `tools` array; absent: none. */
  tools?: string;
  toolChoice?: 'auto' | 'none' | 'required';
  parallelToolCalls?: boolean;
  /** A JSON schema the answer must follow (response_format); with tools under `auto`, the answer is calls or such JSON. */
  jsonSchema?: string;
  /** `chat_template_kwargs`: a JSON object of extra template inputs (`enable_thinking` a boolean). */
  templateKwargs?: string;
  /** `reasoning_effort`: 'none' turns thinking off; any other value is the template input `reasoning_effort`. */
  reasoningEffort?: string;
}

/** The rendered prompt and how to constrain and parse its output (llama.cpp's common_chat_params). */
export interface NativeChatPrompt {
  prompt: string;
  /** The output format's name (for the parser). */
  format: string;
  generationPrompt: string;
  /** Serialized output parser; '' when the output is plain content. */
  parser: string;
  grammar: string;
  grammarLazy: boolean;
  grammarTriggers: NativeGrammarTrigger[];
  preservedTokens: string[];
  additionalStops: string[];
  /** The conversation ended with an assistant message, which the output continues. */
  continuation: boolean;
}

/** Chat templates over the loaded model (llama.cpp's common chat layer). */
export interface NativeChatTemplates {
  /** Throws an Error with code 'invalid_request' for a conversation the template cannot render. */
  apply(input: NativeChatInput): NativeChatPrompt;
  source(): string;
  /** Whether tool definitions can be rendered (a Jinja template, not a legacy built-in). */
  supportsTools(): boolean;
}

export interface NativeChatDelta {
  content?: string;
  reasoning?: string;
  /** Present on a tool-call delta; `id` and `name` only on its first. */
  toolIndex?: number;
  id?: string;
  name?: string;
  arguments?: string;
}

export interface NativeChatMessage {
  content: string;
  reasoning: string;
  toolCalls: { id: string; name: string; arguments: string }[];
}

/** Incremental parser of a chat generation's output into content, reasoning and tool calls. */
export interface NativeChatParser {
  /** Appends text and returns what changed; `partial` false at the end of the generation. */
  push(text: string, partial: boolean): NativeChatDelta[];
  message(): NativeChatMessage;
}

export interface NativeChatParserOptions {
  format: string;
  generationPrompt: string;
  parser: string;
  parseToolCalls: boolean;
  continuation: boolean;
}

export interface NativeEngine {
  /** Resolves when the model is loaded; rejects (code 'load_failed') with the reason. */
  ready(): Promise<void>;
  modelInfo(): NativeModelInfo;
  tokenize(text: string, addSpecial: boolean, parseSpecial: boolean): Int32Array;
  detokenize(tokens: Int32Array): string;
  /** null when the model has no template or llama.cpp cannot apply it. */
  applyChatTemplate(messages: NativeSimpleChatMessage[], addAssistant: boolean): string | null;
  /**
   * The model's chat template (no source), or `source`: a Jinja template, or with
   * jinja false the name of a llama.cpp built-in template. Throws (code 'chat_template')
   * when it does not parse.
   */
  chatTemplates(options?: { source?: string; jinja?: boolean }): NativeChatTemplates;
  /** Results arrive through onEvents; errors too (as an item with `error`). */
  submit(request: NativeSubmit): void;
  /** Frees the sequence and its KV cells in the next step; reported as done 'cancelled'. */
  cancel(id: number): void;
  /** Back-pressure: the sequence stays out of the batch (its KV cells kept) until resume(id). */
  pause(id: number): void;
  resume(id: number): void;
  /** L2-normalised mean-pooled embedding; rejects with an Error whose `code` is a NativeSequenceErrorKind. */
  embed(tokens: Int32Array): Promise<Float32Array>;
  stats(): NativeStats;
  /**
   * Test hook: the next decode step behaves as if that native error happened.
   * 'GgmlAbort' makes the engine thread call GGML_ABORT (a real abort: the process dies
   * after the ContextPoisoned fault event is delivered).
   */
  injectFault(kind: InjectableFault): void;
  /** Stops the engine thread and frees everything; the object is unusable after. */
  close(): void;
}

export interface NativeAddon {
  inventory(): NativeInventory;
  Engine: new (options: NativeEngineOptions, onEvents: (event: NativeStepEvent) => void) => NativeEngine;
  ChatParser: new (options: NativeChatParserOptions) => NativeChatParser;
  /** Names of llama.cpp's built-in (non-Jinja) chat templates. */
  builtinChatTemplates(): string[];
  /** llama.cpp's system info line (CPU features, backends). */
  systemInfo: string;
  /** Test hooks into pure native logic. */
  testing: {
    /** Runs token byte pieces through the engine's UTF-8 / stop-string filter. */
    textStream(pieces: Uint8Array[], stops: string[]): { chunks: string[]; stopped: boolean; rest: string };
  };
}

export type AddonLoad = { addon: NativeAddon; path: string } | { addon: null; reason: string };

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The addon file: $INFERENCE_NATIVE_ADDON, else build/Release/ in the nearest ancestor of this package that has one. */
export function findAddon(env: NodeJS.ProcessEnv = process.env, from: string = packageDir): string | null {
  const explicit = env[ADDON_ENV];
  if (explicit !== undefined && explicit !== '') return existsSync(explicit) ? resolve(explicit) : null;
  let dir = from;
  for (;;) {
    const candidate = join(dir, ADDON_FILE);
    if (existsSync(candidate)) return candidate;
    // The workspace root is as far as the search goes.
    if (existsSync(join(dir, 'pnpm-workspace.yaml'))) return null;
    const parent = dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

function isAddon(value: unknown): value is NativeAddon {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v['inventory'] === 'function' && typeof v['Engine'] === 'function';
}

/** Loads the addon, or says why it cannot (not built, wrong ABI, ...). */
export function tryLoadAddon(env: NodeJS.ProcessEnv = process.env): AddonLoad {
  const path = findAddon(env);
  if (path === null) {
    const where = env[ADDON_ENV] ? `${ADDON_ENV}=${env[ADDON_ENV]} does not exist` : `no ${ADDON_FILE} above ${packageDir}`;
    return { addon: null, reason: `native addon not built (${where}); run \`pnpm build:native\`` };
  }
  try {
    const loaded: unknown = createRequire(import.meta.url)(path);
    if (!isAddon(loaded)) return { addon: null, reason: `${path} is not the inference addon` };
    return { addon: loaded, path };
  } catch (e) {
    return { addon: null, reason: `cannot load ${path}: ${e instanceof Error ? e.message : String(e)}` };
  }
}
