// Entry of the engine host: the child process that owns one native engine context.
// A CUDA sticky error can only be cleared by a new process, so a context lives and dies
// with this process (see docs/architecture.md, Supervision). It loads the addon and the model
// (reporting progress), serves tokenize / embed / stats, turns generate requests into
// token prompts (chat template included) and forwards ONE message per decode step.
// It exits when the parent disconnects, and on a context fault it reports the fault
// first, then exits with a code that names it (protocol.ts). While the IPC channel
// is backed up (the parent reads slowly) it holds its sequences (ipcBackpressure.ts).

import type { TokenLogprob, ToolCallDelta } from '@inference/core';
import { fallbackTemplate, resolveTemplate, TemplateError } from './chatTemplate.js';
import { type IpcChannel, IpcOutbox, SequenceHolds } from './ipcBackpressure.js';
import {
  tryLoadAddon, type NativeAddon, type NativeChatParser, type NativeChatTemplates, type NativeEngine, type NativeSequenceErrorKind,
  type NativeStepEvent, type NativeStepItem, type NativeSubmit, type NativeTokenProb,
} from './native.js';
import {
  EXIT_CLOSED,
  EXIT_CONTEXT_POISONED,
  EXIT_LOAD_FAILED,
  EXIT_UNRECOVERABLE,
  type ChatInput,
  type GenerateInput,
  type GenerateParams,
  type HostConfig,
  type HostStepItem,
  type HostToParent,
  type ParentToHost,
} from './protocol.js';

let engine: NativeEngine | null = null;
let addon: NativeAddon | null = null;
let templates: NativeChatTemplates | null = null;
let bos = -1;
/** Chat generations whose output is parsed (content, reasoning, tool calls), by sequence id. */
const parsers = new Map<number, NativeChatParser>();
let exiting = false;

/** Pauses of the sequences: for their slow client (the parent says) or a backed-up channel. */
const holds = new SequenceHolds({
  pause: (id) => { engine?.pause(id); },
  resume: (id) => { engine?.resume(id); },
});
const channel: IpcChannel = {
  get connected() {
    return process.connected;
  },
  send: (message, sendHandle, options, callback) => process.send?.(message, sendHandle, options, callback) ?? false,
};
const outbox = new IpcOutbox(channel, (held) => { holds.channel(held); });

function send(msg: HostToParent): void {
  outbox.send(msg);
}

/** Sends a last message, then exits once it is written (or after a grace period). */
function exitWith(msg: HostToParent, code: number): void {
  if (exiting) return;
  exiting = true;
  const exit = (): void => process.exit(code);
  setTimeout(exit, 2000).unref();
  if (process.connected) process.send?.(msg, exit);
  else exit();
}

function errorKind(e: unknown): NativeSequenceErrorKind {
  const code = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
  switch (code) {
    case 'context_length_exceeded':
    case 'invalid_request':
    case 'overloaded':
    case 'OutOfMemory':
    case 'ContextPoisoned':
    case 'Unrecoverable':
      return code;
    default:
      return 'invalid_request';
  }
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function logprobs(lp: NativeTokenProb[]): TokenLogprob[] {
  return lp.map((p) => ({
    token: p.t,
    logprob: p.lp,
    bytes: p.b,
    topLogprobs: p.top.map((a) => ({ token: a.t, logprob: a.lp, bytes: a.b })),
  }));
}

/** A native item as forwarded: chat output parsed into content / reasoning / tool-call deltas. */
function forward(item: NativeStepItem): HostStepItem {
  const { lp, ...rest } = item;
  const out: HostStepItem = rest;
  if (lp !== undefined) out.lp = logprobs(lp);
  const parser = parsers.get(item.id);
  if (parser === undefined) return out;
  if (item.error !== undefined || item.done === 'cancelled') {
    parsers.delete(item.id);
    return out;
  }
  const final = item.done !== undefined;
  let content = '';
  let reasoning = '';
  const calls: ToolCallDelta[] = [];
  for (const d of parser.push(item.text, !final)) {
    if (d.content !== undefined) content += d.content;
    if (d.reasoning !== undefined) reasoning += d.reasoning;
    if (d.toolIndex !== undefined) {
      const c: ToolCallDelta = { index: d.toolIndex, argumentsDelta: d.arguments ?? '' };
      if (d.id !== undefined) c.id = d.id;
      if (d.name !== undefined) c.name = d.name;
      calls.push(c);
    }
  }
  out.text = content;
  if (reasoning !== '') out.r = reasoning;
  if (calls.length > 0) out.tc = calls;
  if (final) {
    if (parser.message().toolCalls.length > 0) out.calls = true;
    parsers.delete(item.id);
  }
  return out;
}

function onEvents(ev: NativeStepEvent): void {
  for (const item of ev.items) if (item.done !== undefined || item.error !== undefined) holds.ended(item.id);
  if (ev.items.length > 0) send({ t: 'step', s: ev.step, items: ev.items.map(forward) });
  if (ev.fault !== undefined && ev.fault.kind !== 'OutOfMemory') {
    const code = ev.fault.kind === 'Unrecoverable' ? EXIT_UNRECOVERABLE : EXIT_CONTEXT_POISONED;
    exitWith({ t: 'fault', kind: ev.fault.kind, message: ev.fault.message }, code);
  }
}

async function init(config: HostConfig): Promise<void> {
  const load = tryLoadAddon();
  if (load.addon === null) {
    exitWith({ t: 'loadFailed', reason: 'addon', message: load.reason }, EXIT_LOAD_FAILED);
    return;
  }
  const e = new load.addon.Engine({ ...config, onProgress: (f) => { send({ t: 'progress', f }); } }, onEvents);
  try {
    await e.ready();
  } catch (err) {
    e.close();
    exitWith({ t: 'loadFailed', reason: 'model', message: message(err) }, EXIT_LOAD_FAILED);
    return;
  }
  const info = e.modelInfo();
  let resolved;
  try {
    resolved = resolveTemplate(e, load.addon.builtinChatTemplates(), config.chatTemplate, info.chatTemplate);
  } catch (err) {
    e.close();
    exitWith({ t: 'loadFailed', reason: 'model', message: err instanceof TemplateError ? err.message : message(err) }, EXIT_LOAD_FAILED);
    return;
  }
  engine = e;
  addon = load.addon;
  templates = resolved.templates;
  bos = info.bos;
  send({
    t: 'ready',
    info: {
      ...info,
      templateSource: resolved.source,
      templateName: resolved.name,
      templateTools: templates?.supportsTools() ?? false,
      addonPath: load.path,
      backend: load.addon.inventory().backend,
    },
  });
}

function tokens(e: NativeEngine, text: string): Int32Array {
  // Like llama-server: special tokens in the text are parsed, BOS is added when the
  // model wants one, and a template that already starts with BOS does not get two.
  const t = e.tokenize(text, true, true);
  if (t.length >= 2 && t[0] === bos && t[1] === bos) return t.subarray(1);
  return t;
}

/** Why a request failed before it reached the engine: an error item naming the field. */
class RequestError extends Error {
  constructor(message: string, readonly field: 'tools' | 'messages' | 'chat_template_kwargs' | 'reasoning_effort' | undefined) {
    super(message);
  }
}

/** A chat request rendered by the template: the submit, and the parser of its output. */
function chatSubmit(e: NativeEngine, id: number, input: ChatInput, params: GenerateParams): { submit: NativeSubmit; parser: NativeChatParser | null } {
  const hasTools = input.tools !== undefined && input.tools.length > 0;
  if (templates === null || !templates.supportsTools()) {
    if (hasTools && input.toolChoice !== 'none') {
      throw new RequestError(
        templates === null
          ? "tools need a chat template: this model has none (set the deployment's engine.chatTemplate)"
          : "tools need a Jinja chat template; the deployment's engine.chatTemplate names a built-in one without tool support",
        'tools',
      );
    }
  }
  if (templates === null || !templates.supportsTools()) {
    // Template inputs reach only a Jinja template (a built-in or the fallback has none to give them to).
    const field = input.templateKwargs !== undefined ? 'chat_template_kwargs' : input.reasoningEffort !== undefined ? 'reasoning_effort' : undefined;
    if (field !== undefined) throw new RequestError(`${field} needs a Jinja chat template; this deployment's template takes no inputs`, field);
  }
  if (templates === null) return { submit: { id, prompt: tokens(e, fallbackTemplate(input.messages)), ...params }, parser: null };
  const { jsonSchema, ...rest } = params;
  let rendered;
  try {
    rendered = templates.apply({
      messages: JSON.stringify(input.messages),
      ...(hasTools ? { tools: JSON.stringify(input.tools) } : {}),
      toolChoice: input.toolChoice ?? 'auto',
      parallelToolCalls: input.parallelToolCalls ?? true,
      ...(jsonSchema !== undefined ? { jsonSchema } : {}),
      ...(input.templateKwargs !== undefined ? { templateKwargs: JSON.stringify(input.templateKwargs) } : {}),
      ...(input.reasoningEffort !== undefined ? { reasoningEffort: input.reasoningEffort } : {}),
    });
  } catch (err) {
    throw new RequestError(message(err), 'messages');
  }
  const submit: NativeSubmit = { id, prompt: tokens(e, rendered.prompt), ...rest, stop: [...params.stop, ...rendered.additionalStops] };
  if (rendered.grammar !== '') {
    submit.grammar = rendered.grammar;
    submit.grammarLazy = rendered.grammarLazy;
    submit.grammarTriggers = rendered.grammarTriggers;
    if (!rendered.grammarLazy) submit.grammarPrefill = rendered.generationPrompt;
  } else if (jsonSchema !== undefined) {
    submit.jsonSchema = jsonSchema;
  }
  if (rendered.preservedTokens.length > 0) submit.preservedTokens = rendered.preservedTokens;
  const a = addon;
  if (a === null || rendered.parser === '') return { submit, parser: null };
  const parser = new a.ChatParser({
    format: rendered.format,
    generationPrompt: rendered.generationPrompt,
    parser: rendered.parser,
    parseToolCalls: true,
    continuation: rendered.continuation,
  });
  return { submit, parser };
}

function generate(e: NativeEngine, id: number, input: GenerateInput, params: GenerateParams): void {
  try {
    if ('prompt' in input) {
      e.submit({ id, prompt: tokens(e, input.prompt), ...params });
      holds.started(id);
      return;
    }
    const { submit, parser } = chatSubmit(e, id, input, params);
    if (parser !== null) parsers.set(id, parser);
    e.submit(submit);
    holds.started(id);
  } catch (err) {
    parsers.delete(id);
    const error: HostStepItem['error'] = { kind: 'invalid_request', message: message(err) };
    if (err instanceof RequestError && err.field !== undefined) error.field = err.field;
    send({ t: 'step', s: -1, items: [{ id, text: '', n: 0, error }] });
  }
}

/** Embeddings in progress; one cancelled leaves the set and stops before its next input. */
const embedding = new Set<number>();

async function embed(e: NativeEngine, rid: number, texts: string[]): Promise<void> {
  embedding.add(rid);
  try {
    const vectors: number[][] = [];
    let promptTokens = 0;
    for (const text of texts) {
      await outbox.drained(); // each vector is output too: none while the channel is backed up
      if (!embedding.has(rid)) return;
      const tokens = e.tokenize(text, true, false);
      promptTokens += tokens.length;
      vectors.push(Array.from(await e.embed(tokens)));
    }
    if (embedding.has(rid)) send({ t: 'embedded', rid, vectors, promptTokens });
  } catch (err) {
    if (embedding.has(rid)) send({ t: 'failed', rid, error: { kind: errorKind(err), message: message(err) } });
  } finally {
    embedding.delete(rid);
  }
}

function handle(msg: ParentToHost): void {
  if (msg.t === 'init') {
    void init(msg.config);
    return;
  }
  if (msg.t === 'close') {
    exiting = true;
    engine?.close();
    engine = null;
    process.exit(EXIT_CLOSED);
  }
  const e = engine;
  if (e === null) return; // the parent sends nothing else before `ready`
  switch (msg.t) {
    case 'gen':
      generate(e, msg.id, msg.input, msg.params);
      return;
    case 'cancel':
      e.cancel(msg.id);
      holds.ended(msg.id);
      return;
    case 'pause':
      holds.parent(msg.id, true);
      return;
    case 'resume':
      holds.parent(msg.id, false);
      return;
    case 'embed':
      void embed(e, msg.rid, msg.texts);
      return;
    case 'cancelEmbed':
      embedding.delete(msg.rid);
      return;
    case 'tokenize':
      try {
        send({ t: 'tokens', rid: msg.rid, tokens: Array.from(e.tokenize(msg.text, true, true)) });
      } catch (err) {
        send({ t: 'failed', rid: msg.rid, error: { kind: 'invalid_request', message: message(err) } });
      }
      return;
    case 'stats':
      send({ t: 'stats', rid: msg.rid, stats: e.stats() });
      return;
    case 'fault':
      e.injectFault(msg.kind);
      return;
    case 'batch':
      for (const m of msg.m) handle(m);
      return;
    default: {
      const never: never = msg;
      throw new Error(`unknown message ${JSON.stringify(never)}`);
    }
  }
}

if (process.send === undefined) {
  process.stderr.write('the engine host must be started with child_process.fork\n');
  process.exit(2);
}
process.on('message', (m: ParentToHost) => {
  handle(m);
});
// Orphaned (the parent died or closed the channel): nothing would read our output.
process.on('disconnect', () => {
  if (exiting) return;
  exiting = true;
  engine?.close();
  process.exit(EXIT_CLOSED);
});
process.on('uncaughtException', (err) => {
  exitWith({ t: 'fault', kind: 'Unrecoverable', message: `engine host: ${message(err)}` }, EXIT_UNRECOVERABLE);
});
