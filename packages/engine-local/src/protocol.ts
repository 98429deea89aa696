// Messages between the parent (hostClient.ts) and the engine host process (host.ts).
// The hot path is `step`: ONE message per decode step carrying every sequence's new
// text, never one per token. Field names stay short because they cross the channel
// for every step; each union is discriminated by `t`.

import type { EngineFaultKind, TokenLogprob, ToolCallDelta } from '@inference/core';
import type { InjectableFault, NativeEngineOptions, NativeModelInfo, NativeSequenceErrorKind, NativeStats, NativeStepItem, NativeSubmit } from './native.js';

/** Exit codes of the host; anything else (or a signal) counts as ContextPoisoned. */
export const EXIT_CLOSED = 0;
export const EXIT_LOAD_FAILED = 78;
export const EXIT_CONTEXT_POISONED = 86;
export const EXIT_UNRECOVERABLE = 87;

/** The engine's options as sent to the host (progress comes back as messages). */
export type HostConfig = Omit<NativeEngineOptions, 'onProgress' | 'embeddings'> & {
  embeddings: boolean;
  /** engine.chatTemplate: a Jinja template file or a llama.cpp built-in template name (docs/chat-templates.md). */
  chatTemplate?: string;
};

/** A chat message in OpenAI's spelling (what the chat template renders). */
export interface ChatInputMessage {
  role: string;
  content: string | null;
  name?: string;
  tool_calls?: { id: string; type: 'function'; function: { name: string; arguments: string } }[];
  tool_call_id?: string;
}

export interface ChatToolInput {
  type: 'function';
  function: { name: string; description?: string; parameters?: Record<string, unknown> };
}

export interface ChatInput {
  messages: ChatInputMessage[];
  tools?: ChatToolInput[];
  /** A named choice has become `required` over that one tool (localEngineCore.ts). */
  toolChoice?: 'auto' | 'none' | 'required';
  parallelToolCalls?: boolean;
  /** `chat_template_kwargs`, passed to the Jinja template as extra inputs (llama-server's field). */
  templateKwargs?: Record<string, unknown>;
  /** `reasoning_effort`, as llama-server maps it: 'none' disables thinking, else a template input. */
  reasoningEffort?: string;
}

export type GenerateInput = { prompt: string } | ChatInput;

/** A generation's sampling and limits: what the addon takes, minus the id and tokens the host assigns. */
export type GenerateParams = Omit<NativeSubmit, 'id' | 'prompt' | 'grammarLazy' | 'grammarTriggers' | 'grammarPrefill' | 'preservedTokens'>;

export type TemplateSource = 'model' | 'override' | 'fallback';

export interface HostModelInfo extends NativeModelInfo {
  templateSource: TemplateSource;
  /** The override's file or built-in name; 'tokenizer.chat_template' for the model's own; 'fallback'. */
  templateName: string;
  /** Whether the template renders tools. */
  templateTools: boolean;
  addonPath: string;
  backend: 'cpu' | 'cuda';
}

/**
 * One sequence's output in one step, as the host forwards it. For chat requests with a
 * template, `text` is the parsed answer's content delta, `r` its reasoning delta and
 * `tc` its tool-call deltas (the raw text never crosses); `lp` are the step's tokens'
 * log-probabilities in OpenAI's shape; `calls` (at the end) says tool calls were made.
 */
export interface HostStepItem extends Omit<NativeStepItem, 'lp'> {
  r?: string;
  tc?: ToolCallDelta[];
  lp?: TokenLogprob[];
  calls?: boolean;
}

export type ParentToHost =
  | { t: 'init'; config: HostConfig }
  | { t: 'gen'; id: number; input: GenerateInput; params: GenerateParams }
  | { t: 'cancel'; id: number }
  /** Back-pressure: the generation's client is behind; the engine leaves it out of the batch until 'resume'. */
  | { t: 'pause'; id: number }
  | { t: 'resume'; id: number }
  | { t: 'embed'; rid: number; texts: string[] }
  /** The embedding `rid` is no longer wanted: the host stops before its next input and answers nothing. */
  | { t: 'cancelEmbed'; rid: number }
  | { t: 'tokenize'; rid: number; text: string }
  | { t: 'stats'; rid: number }
  | { t: 'fault'; kind: InjectableFault }
  | { t: 'close' }
  /**
   * Messages posted in one turn of the parent's event loop, in order, in one write: the host
   * handles them in one turn, so generations that arrive together start in one decode step.
   */
  | { t: 'batch'; m: ParentToHost[] };

/** Failure of a request that is not a generation (those fail through a step item). */
export interface WireError {
  kind: NativeSequenceErrorKind;
  message: string;
}

export type HostToParent =
  | { t: 'progress'; f: number }
  | { t: 'ready'; info: HostModelInfo }
  | { t: 'loadFailed'; reason: 'addon' | 'model'; message: string }
  | { t: 'step'; s: number; items: HostStepItem[] }
  | { t: 'embedded'; rid: number; vectors: number[][]; promptTokens: number }
  | { t: 'tokens'; rid: number; tokens: number[] }
  | { t: 'stats'; rid: number; stats: NativeStats }
  | { t: 'failed'; rid: number; error: WireError }
  | { t: 'fault'; kind: EngineFaultKind; message: string };
