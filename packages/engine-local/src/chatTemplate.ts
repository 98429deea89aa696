// Turns chat messages into the prompt text of a local model.
//
// The model's own chat template (GGUF `tokenizer.chat_template`) is applied by
// llama.cpp when the model has one that llama.cpp knows. Otherwise — base models such
// as stories260K carry no template — a fallback is used: plain text, the system
// content first, then each message's content on its own line, with NO role markers.
// Why: a model without a template was trained on plain documents; invented markers
// ("User:", "<|im_start|>") are text it has never seen in that role, so it tends to
// echo them back into the output. Presented as a document to continue, the
// conversation stays in the model's distribution, and the answer is its continuation.

import type { ChatInputMessage, TemplateSource } from './protocol.js';

export interface ChatTemplateEngine {
  applyChatTemplate(messages: ChatInputMessage[], addAssistant: boolean): string | null;
}

export interface RenderedChat {
  text: string;
  source: TemplateSource;
}

const SYSTEM_ROLES: ReadonlySet<string> = new Set(['system', 'developer']);

/** The fallback template (see the file comment). */
export function fallbackTemplate(messages: readonly ChatInputMessage[]): string {
  const system = messages.filter((m) => SYSTEM_ROLES.has(m.role));
  const rest = messages.filter((m) => !SYSTEM_ROLES.has(m.role));
  return [...system, ...rest]
    .map((m) => m.content)
    .filter((c) => c !== '')
    .join('\n');
}

/** Whether the model's template can be used (probed once, when the model is loaded). */
export function detectTemplateSource(engine: ChatTemplateEngine, modelTemplate: string | null): TemplateSource {
  if (modelTemplate === null) return 'fallback';
  const probe = engine.applyChatTemplate([{ role: 'user', content: 'probe' }], true);
  return probe === null ? 'fallback' : 'model';
}

export function renderChat(
  engine: ChatTemplateEngine,
  source: TemplateSource,
  messages: readonly ChatInputMessage[],
): RenderedChat {
  if (source === 'model') {
    const text = engine.applyChatTemplate([...messages], true);
    if (text !== null) return { text, source: 'model' };
  }
  return { text: fallbackTemplate(messages), source: 'fallback' };
}
