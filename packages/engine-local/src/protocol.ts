// Messages between the parent (hostClient.ts) and the engine host process (host.ts).
// The hot path is `step`: ONE message per decode step carrying every sequence's new
// text, never one per token. Field names stay short because they cross the channel
// for every step; each union is discriminated by `t`.

import type { EngineFaultKind } from '@inference/core';
import type { InjectableFault, NativeEngineOptions, NativeModelInfo, NativeSequenceErrorKind, NativeStats, NativeStepItem, NativeSubmit } from './native.js';

/** Exit codes of the host; anything else (or a signal) counts as ContextPoisoned. */
export const EXIT_CLOSED = 0;
export const EXIT_LOAD_FAILED = 78;
export const EXIT_CONTEXT_POISONED = 86;
export const EXIT_UNRECOVERABLE = 87;

/** The engine's options as sent to the host (progress comes back as messages). */
export type HostConfig = Omit<NativeEngineOptions, 'onProgress' | 'embeddings'> & { embeddings: boolean };

export interface ChatInputMessage {
  role: string;
  content: string;
}

export type GenerateInput = { prompt: string } | { messages: ChatInputMessage[] };

/** A generation's sampling and limits: what the addon takes, minus the id and tokens the host assigns. */
export type GenerateParams = Omit<NativeSubmit, 'id' | 'prompt'>;

export type TemplateSource = 'model' | 'fallback';

export interface HostModelInfo extends NativeModelInfo {
  templateSource: TemplateSource;
  addonPath: string;
  backend: 'cpu' | 'cuda';
}

export type ParentToHost =
  | { t: 'init'; config: HostConfig }
  | { t: 'gen'; id: number; input: GenerateInput; params: GenerateParams }
  | { t: 'cancel'; id: number }
  | { t: 'embed'; rid: number; texts: string[] }
  /** The embedding `rid` is no longer wanted: the host stops before its next input and answers nothing. */
  | { t: 'cancelEmbed'; rid: number }
  | { t: 'tokenize'; rid: number; text: string }
  | { t: 'stats'; rid: number }
  | { t: 'fault'; kind: InjectableFault }
  | { t: 'close' };

/** Failure of a request that is not a generation (those fail through a step item). */
export interface WireError {
  kind: NativeSequenceErrorKind;
  message: string;
}

export type HostToParent =
  | { t: 'progress'; f: number }
  | { t: 'ready'; info: HostModelInfo }
  | { t: 'loadFailed'; reason: 'addon' | 'model'; message: string }
  | { t: 'step'; s: number; items: NativeStepItem[] }
  | { t: 'embedded'; rid: number; vectors: number[][]; promptTokens: number }
  | { t: 'tokens'; rid: number; tokens: number[] }
  | { t: 'stats'; rid: number; stats: NativeStats }
  | { t: 'failed'; rid: number; error: WireError }
  | { t: 'fault'; kind: EngineFaultKind; message: string };
