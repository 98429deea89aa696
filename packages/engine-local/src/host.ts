// Entry of the engine host: the child process that owns one native engine context.
// A CUDA sticky error can only be cleared by a new process, so a context lives and dies
// with this process (see docs/architecture.md, Supervision). It loads the addon and the model
// (reporting progress), serves tokenize / embed / stats, turns generate requests into
// token prompts (chat template included) and forwards ONE message per decode step.
// It exits when the parent disconnects, and on a context fault it reports the fault
// first, then exits with a code that names it (protocol.ts).

import { detectTemplateSource, renderChat } from './chatTemplate.js';
import { tryLoadAddon, type NativeEngine, type NativeSequenceErrorKind, type NativeStepEvent } from './native.js';
import {
  EXIT_CLOSED,
  EXIT_CONTEXT_POISONED,
  EXIT_LOAD_FAILED,
  EXIT_UNRECOVERABLE,
  type GenerateInput,
  type GenerateParams,
  type HostConfig,
  type HostToParent,
  type ParentToHost,
  type TemplateSource,
} from './protocol.js';

let engine: NativeEngine | null = null;
let templateSource: TemplateSource = 'fallback';
let bos = -1;
let exiting = false;

function send(msg: HostToParent): void {
  if (process.connected) process.send?.(msg);
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

function onEvents(ev: NativeStepEvent): void {
  if (ev.items.length > 0) send({ t: 'step', s: ev.step, items: ev.items });
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
  engine = e;
  const info = e.modelInfo();
  bos = info.bos;
  templateSource = detectTemplateSource(e, info.chatTemplate);
  send({ t: 'ready', info: { ...info, templateSource, addonPath: load.path, backend: load.addon.inventory().backend } });
}

function promptTokens(e: NativeEngine, input: GenerateInput): Int32Array {
  // Like llama-server: special tokens in the text are parsed, BOS is added when the
  // model wants one, and a template that already starts with BOS does not get two.
  const text = 'prompt' in input ? input.prompt : renderChat(e, templateSource, input.messages).text;
  const tokens = e.tokenize(text, true, true);
  if (tokens.length >= 2 && tokens[0] === bos && tokens[1] === bos) return tokens.subarray(1);
  return tokens;
}

function generate(e: NativeEngine, id: number, input: GenerateInput, params: GenerateParams): void {
  try {
    e.submit({ id, prompt: promptTokens(e, input), ...params });
  } catch (err) {
    send({ t: 'step', s: -1, items: [{ id, text: '', n: 0, error: { kind: 'invalid_request', message: message(err) } }] });
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
