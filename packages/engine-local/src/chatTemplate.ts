// Which chat template a local model uses, and the fallback for models without one
// (docs/chat-templates.md).
//
// The model's own Jinja template (GGUF `tokenizer.chat_template`) is rendered by
// llama.cpp's common chat layer compiled into the addon, as llama-server does with
// `--jinja`: tools, tool results, assistant tool calls, reasoning. A deployment may
// override it (`engine.chatTemplate`): a Jinja file, or the name of a llama.cpp
// built-in template (rendered without Jinja: no tools).
//
// Only a model with no template and no override uses the fallback: plain text, the
// system content first, then each message's content on its own line, with NO role
// markers. Why: a model without a template was trained on plain documents; invented
// markers ("User:", "<|im_start|>") are text it has never seen in that role, so it
// tends to echo them back into the output. Presented as a document to continue, the
// conversation stays in the model's distribution, and the answer is its continuation.

import { readFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import type { NativeChatTemplates, NativeEngine } from './native.js';
import type { ChatInputMessage, TemplateSource } from './protocol.js';

const SYSTEM_ROLES: ReadonlySet<string> = new Set(['system', 'developer']);

/** The fallback template (see the file comment). */
export function fallbackTemplate(messages: readonly ChatInputMessage[]): string {
  const system = messages.filter((m) => SYSTEM_ROLES.has(m.role));
  const rest = messages.filter((m) => !SYSTEM_ROLES.has(m.role));
  return [...system, ...rest]
    .map((m) => m.content ?? '')
    .filter((c) => c !== '')
    .join('\n');
}

export interface ResolvedTemplate {
  /** null: the fallback template. */
  templates: NativeChatTemplates | null;
  source: TemplateSource;
  name: string;
}

/** Why the configured or the model's template cannot be used (the replica does not start). */
export class TemplateError extends Error {}

/**
 * The template a replica renders chats with. `override` is engine.chatTemplate: an
 * existing file is read as a Jinja template; otherwise it must name a built-in template.
 */
export function resolveTemplate(
  engine: Pick<NativeEngine, 'chatTemplates'>,
  builtins: readonly string[],
  override: string | undefined,
  modelTemplate: string | null,
  read: (path: string) => string = (p) => readFileSync(p, 'utf8'),
): ResolvedTemplate {
  const make = (options: { source?: string; jinja?: boolean }, what: string): NativeChatTemplates => {
    try {
      return engine.chatTemplates(options);
    } catch (e) {
      throw new TemplateError(`${what}: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  if (override !== undefined) {
    let text: string | undefined;
    try {
      text = read(resolve(override));
    } catch {
      text = undefined;
    }
    if (text !== undefined) {
      return { templates: make({ source: text }, `engine.chatTemplate ${override}`), source: 'override', name: basename(override) };
    }
    if (override === 'chatml') return { templates: make({ source: 'chatml' }, 'engine.chatTemplate chatml'), source: 'override', name: 'chatml' };
    if (builtins.includes(override)) {
      return { templates: make({ source: override, jinja: false }, `engine.chatTemplate ${override}`), source: 'override', name: override };
    }
    throw new TemplateError(`engine.chatTemplate '${override}' is neither a readable file nor a built-in template (${builtins.join(', ')})`);
  }
  if (modelTemplate === null) return { templates: null, source: 'fallback', name: 'fallback' };
  return { templates: make({}, "the model's chat template (tokenizer.chat_template)"), source: 'model', name: 'tokenizer.chat_template' };
}
