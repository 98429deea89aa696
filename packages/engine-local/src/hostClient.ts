// The parent side of an engine host process: starts it, multiplexes generate / embed /
// stats over its IPC channel, and turns its death into one typed signal for the
// supervisor. Invariants:
//  - every in-flight call settles: with its result, with its error, or (the host died)
//    with InferenceError('engine_unavailable', { fault });
//  - onExit fires at most once, and never for close();
//  - an aborted generate() rejects at once with the signal's reason; the host frees the
//    sequence in its next decode step.

import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type CancelSignal,
  InferenceError,
  type EngineFaultKind,
  type FlowSignal,
  type TokenLogprob,
  type ToolCallDelta,
  toInferenceError,
} from '@inference/core';
import { exitLine, exitReason, type HostExit, StderrTail } from './hostExit.js';
import type { InjectableFault, NativeEngineOptions, NativeErrorField, NativeSequenceError, NativeStats } from './native.js';
import {
  EXIT_CLOSED,
  EXIT_UNRECOVERABLE,
  type GenerateInput,
  type GenerateParams,
  type HostConfig,
  type HostModelInfo,
  type HostStepItem,
  type HostToParent,
  type ParentToHost,
  type WireError,
} from './protocol.js';

/** The engine's options (native.ts) plus how the host process is run. */
export interface EngineHostOptions extends NativeEngineOptions {
  /** Extra environment of the host process (e.g. CUDA_VISIBLE_DEVICES, INFERENCE_NATIVE_ADDON). */
  env?: Record<string, string>;
  /** Shown in the host's command line (ps) so operators can tell replicas apart. */
  label?: string;
  /** How long loading may take before start() gives up (default 120 s). */
  startTimeoutMs?: number;
  /** IPC encoding (default 'advanced': measured 2-3% more tokens/s than 'json' at 16 streams, within noise at 1). */
  serialization?: 'json' | 'advanced';
  /** The host entry script; default: host.js next to this module, else ../dist/host.js. */
  hostEntry?: string;
  /** engine.chatTemplate (docs/chat-templates.md). */
  chatTemplate?: string;
  /** Where the host's stderr is copied, and where a host exit is logged (default: process.stderr). */
  log?: (text: string) => void;
}

/** What a step adds to a generation besides its text (chat: parsed; logprobs: when asked). */
export interface ChunkExtras {
  reasoning?: string;
  toolCalls?: ToolCallDelta[];
  logprobs?: TokenLogprob[];
}

export type ChunkListener = (text: string, tokens: number, extras?: ChunkExtras) => void;

export interface GenerateResult {
  /** 'tool_calls': the chat output held tool calls (ended by end of generation or a stop string). */
  finishReason: 'stop' | 'length' | 'tool_calls';
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
}

export interface EmbedResult {
  vectors: number[][];
  promptTokens: number;
}

type ExitListener = (fault: EngineFaultKind, detail: string, exit: HostExit) => void;

interface PendingGeneration {
  onChunk: ChunkListener;
  resolve: (r: GenerateResult) => void;
  reject: (e: unknown) => void;
  param: 'prompt' | 'messages';
  promptTokens: number;
  cachedTokens: number;
}

interface PendingRequest {
  resolve: (msg: HostToParent) => void;
  reject: (e: unknown) => void;
}

const RETRY_AFTER_MS = 1000;

/** The signal's reason as an Error (AbortSignal.abort() gives a DOMException 'AbortError'). */
function abortReason(signal: CancelSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  const e = new Error(typeof reason === 'string' ? reason : 'aborted', { cause: reason });
  e.name = 'AbortError';
  return e;
}

function defaultHostEntry(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const sibling = join(here, 'host.js');
  // Under vitest this module runs from src/: the host still runs compiled, from dist/.
  return existsSync(sibling) ? sibling : join(here, '..', 'dist', 'host.js');
}

/** The request field (OpenAI `error.param`) behind a constrained-decoding submit field. */
function fieldParam(field: NativeErrorField): string {
  switch (field) {
    case 'jsonSchema':
      return 'response_format.json_schema.schema';
    case 'grammar':
      return 'response_format';
    case 'logitBias':
      return 'logit_bias';
    case 'tools':
      return 'tools';
    case 'messages':
    case 'chat_template_kwargs':
    case 'reasoning_effort':
      return field;
    default: {
      const never: never = field;
      return String(never);
    }
  }
}

/** A sequence's failure as a taxonomy error. */
export function sequenceError(error: WireError | NativeSequenceError, param: 'prompt' | 'messages' | null): InferenceError {
  switch (error.kind) {
    case 'context_length_exceeded':
      return new InferenceError('context_length_exceeded', error.message, { param });
    case 'invalid_request':
      return new InferenceError('invalid_request', error.message, { param: 'field' in error && error.field !== undefined ? fieldParam(error.field) : param });
    case 'overloaded':
      return new InferenceError('overloaded', 'the local engine is overloaded', { retryAfterMs: RETRY_AFTER_MS, diagnostic: error.message });
    case 'OutOfMemory':
      return new InferenceError('overloaded', 'the local engine is out of memory', {
        fault: 'OutOfMemory',
        retryAfterMs: RETRY_AFTER_MS,
        diagnostic: error.message,
      });
    case 'ContextPoisoned':
    case 'Unrecoverable':
      return new InferenceError('engine_unavailable', 'the local engine failed', { fault: error.kind, diagnostic: error.message });
    default: {
      const never: never = error.kind;
      return new InferenceError('internal', 'internal error', { diagnostic: String(never) });
    }
  }
}

/** The engine's options alone: nothing about the process, no callbacks (they cannot cross IPC). */
function hostConfig(opts: EngineHostOptions): HostConfig {
  const config: HostConfig = {
    modelPath: opts.modelPath,
    contextSize: opts.contextSize,
    maxSequences: opts.maxSequences,
    gpuLayers: opts.gpuLayers,
    threads: opts.threads,
    batchTokens: opts.batchTokens,
    embeddings: opts.embeddings ?? true,
  };
  if (opts.kvUnified !== undefined) config.kvUnified = opts.kvUnified;
  if (opts.promptCacheBytes !== undefined) config.promptCacheBytes = opts.promptCacheBytes;
  if (opts.flashAttention !== undefined) config.flashAttention = opts.flashAttention;
  if (opts.chatTemplate !== undefined) config.chatTemplate = opts.chatTemplate;
  return config;
}

function ignoreSendError(): void {
  // See post().
}

export class EngineHost {
  readonly info: HostModelInfo;
  private readonly child: ChildProcess;
  private readonly generations = new Map<number, PendingGeneration>();
  private readonly requests = new Map<number, PendingRequest>();
  private readonly exitListeners: ExitListener[] = [];
  private readonly processExitListeners: ((exit: HostExit) => void)[] = [];
  private nextId = 1;
  private nextRid = 1;
  /** Messages of this turn, sent together at its end once a generation is among them (see post()). */
  private outgoing: ParentToHost[] | null = null;
  private closing = false;
  private dead: InferenceError | null = null;
  private reportedFault: { kind: EngineFaultKind; message: string } | null = null;
  private readonly exited: Promise<void>;

  private constructor(
    child: ChildProcess,
    info: HostModelInfo,
    private readonly stderr: StderrTail,
    private readonly label: string,
    private readonly log: (text: string) => void,
  ) {
    this.child = child;
    this.info = info;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        // Messages sent just before death (the fault report) may still be in the
        // channel: settle once it has drained (or shortly after, if it never closes).
        let finished = false;
        const finish = (): void => {
          if (finished) return;
          finished = true;
          clearTimeout(timer);
          this.onChildExit(code, signal);
          resolve();
        };
        const timer = setTimeout(finish, 500);
        if (child.connected) child.once('disconnect', finish);
        else setImmediate(finish);
      });
    });
    child.on('message', (m: HostToParent) => {
      this.onMessage(m);
    });
    // A dying host's channel fails sends (EPIPE) and may emit 'error'; its death is
    // reported once, by the exit handler, so these are not errors of their own.
    child.on('error', () => undefined);
  }

  /** Forks the host and loads the model; rejects with engine_unavailable if that fails. */
  static async start(opts: EngineHostOptions): Promise<EngineHost> {
    const entry = opts.hostEntry ?? defaultHostEntry();
    if (!existsSync(entry)) {
      throw new InferenceError('engine_unavailable', 'local engine unavailable: the engine host is not built', {
        diagnostic: `${entry} missing; run \`pnpm --filter @inference/engine-local build\``,
      });
    }
    const child = fork(entry, opts.label === undefined ? [] : ['--replica', opts.label], {
      env: { ...process.env, ...opts.env },
      serialization: opts.serialization ?? 'advanced',
      // The parent's node flags (--input-type, --inspect, loaders) are not the host's.
      execArgv: [],
      // stderr is piped: copied to the parent's, its tail kept for the exit report.
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    });
    const log = opts.log ?? ((text: string): void => { process.stderr.write(text); });
    const stderr = new StderrTail();
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr.push(chunk);
      log(chunk.toString('utf8'));
    });
    const send = (m: ParentToHost): void => {
      child.send(m);
    };
    const model = basename(opts.modelPath);
    return new Promise<EngineHost>((resolve, reject) => {
      const fail = (message: string, diagnostic: string): void => {
        cleanup();
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        reject(new InferenceError('engine_unavailable', message, { diagnostic }));
      };
      const timer = setTimeout(() => {
        fail(`local engine unavailable: loading ${model} timed out`, `no ready after ${opts.startTimeoutMs ?? 120_000} ms`);
      }, opts.startTimeoutMs ?? 120_000);
      const onMessage = (m: HostToParent): void => {
        if (m.t === 'progress') opts.onProgress?.(m.f);
        else if (m.t === 'loadFailed') {
          fail(
            m.reason === 'addon'
              ? 'local engine unavailable: the native addon is not available'
              : `local engine unavailable: cannot load model ${model}`,
            m.message,
          );
        } else if (m.t === 'ready') {
          cleanup();
          resolve(new EngineHost(child, m.info, stderr, opts.label ?? model, log));
        }
      };
      const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
        const exit: HostExit = { code, signal, reason: exitReason(code, signal), stderrTail: stderr.text() };
        log(exitLine(opts.label ?? model, child.pid ?? -1, exit));
        fail(`local engine unavailable: the engine host exited while loading ${model}`, `exit ${String(code ?? signal)}`);
      };
      const onError = (e: Error): void => {
        fail('local engine unavailable: cannot start the engine host', e.message);
      };
      function cleanup(): void {
        clearTimeout(timer);
        child.off('message', onMessage);
        child.off('exit', onExit);
        child.off('error', onError);
      }
      child.on('message', onMessage);
      child.once('exit', onExit);
      child.once('error', onError);
      send({
        t: 'init',
        config: hostConfig(opts),
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** Whether the host is alive and not closing. */
  get alive(): boolean {
    return this.dead === null && !this.closing;
  }

  /**
   * Called once when the host process ends, unless close() ended it cleanly (code 0): also when
   * it died while closing (a fault it reported, a kill after the grace period). Logged likewise.
   */
  onProcessExit(cb: (exit: HostExit) => void): void {
    this.processExitListeners.push(cb);
  }

  /** Called once when the host dies for any reason other than close(). */
  onExit(cb: ExitListener): void {
    this.exitListeners.push(cb);
  }

  generate(
    input: GenerateInput,
    params: GenerateParams,
    signal: CancelSignal,
    onChunk: ChunkListener,
    flow?: FlowSignal,
  ): Promise<GenerateResult> {
    if (this.dead !== null) return Promise.reject(this.dead);
    if (this.closing) return Promise.reject(new InferenceError('engine_unavailable', 'the local engine is closing'));
    if (signal.aborted) return Promise.reject(abortReason(signal));
    const id = this.allocateId();
    return new Promise<GenerateResult>((resolve, reject) => {
      // The client's back-pressure pauses this sequence only (docs/flow-control.md).
      const unwatch = flow?.onChange((paused) => {
        if (this.generations.has(id)) this.post({ t: paused ? 'pause' : 'resume', id });
      });
      const onAbort = (): void => {
        unwatch?.();
        if (!this.generations.delete(id)) return;
        this.post({ t: 'cancel', id });
        reject(abortReason(signal));
      };
      const settle = <T>(fn: (v: T) => void) => (v: T): void => {
        unwatch?.();
        signal.removeEventListener('abort', onAbort);
        fn(v);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.generations.set(id, {
        onChunk,
        resolve: settle(resolve),
        reject: settle(reject),
        param: 'prompt' in input ? 'prompt' : 'messages',
        promptTokens: 0,
        cachedTokens: 0,
      });
      this.post({ t: 'gen', id, input, params });
      if (flow?.paused === true) this.post({ t: 'pause', id });
    });
  }

  /** An aborted `signal` rejects at once with its reason; the host stops before its next input. */
  async embed(texts: string[], signal?: CancelSignal): Promise<EmbedResult> {
    const m = await this.request((rid) => ({ t: 'embed', rid, texts }), signal, (rid) => ({ t: 'cancelEmbed', rid }));
    if (m.t !== 'embedded') throw new InferenceError('internal', 'internal error', { diagnostic: `unexpected ${m.t}` });
    return { vectors: m.vectors, promptTokens: m.promptTokens };
  }

  async tokenize(text: string): Promise<number[]> {
    const m = await this.request((rid) => ({ t: 'tokenize', rid, text }));
    if (m.t !== 'tokens') throw new InferenceError('internal', 'internal error', { diagnostic: `unexpected ${m.t}` });
    return m.tokens;
  }

  async stats(): Promise<NativeStats> {
    const m = await this.request((rid) => ({ t: 'stats', rid }));
    if (m.t !== 'stats') throw new InferenceError('internal', 'internal error', { diagnostic: `unexpected ${m.t}` });
    return m.stats;
  }

  /** Test hook: the host's next decode step fails as if that native error happened ('GgmlAbort': a real abort). */
  injectFault(kind: InjectableFault): void {
    this.post({ t: 'fault', kind });
  }

  /** Stops the host (no onExit); in-flight calls reject with engine_unavailable. */
  async close(): Promise<void> {
    if (this.dead !== null || this.closing) {
      await this.exited;
      return;
    }
    this.closing = true;
    this.post({ t: 'close' });
    const kill = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(kill);
  }

  private allocateId(): number {
    // uint32 ids, unique among live sequences (2^32 in flight never happens).
    const id = this.nextId;
    this.nextId = this.nextId === 0xffffffff ? 1 : this.nextId + 1;
    return id;
  }

  private post(m: ParentToHost): void {
    // A generation waits for the end of this turn (setImmediate), and what is posted after it
    // in the turn joins it: generations that arrive together (requests read in one poll phase)
    // reach the host in one write, which it handles in one turn, so they start in the same
    // decode step (docs/architecture.md, "Requests that arrive together"). Sent one by one, the
    // host could read the first alone and start a step with it, the others waiting for its prefill.
    if (this.outgoing !== null) {
      this.outgoing.push(m);
      return;
    }
    if (m.t === 'gen') {
      this.outgoing = [m];
      setImmediate(this.flush);
      return;
    }
    this.write(m);
  }

  private readonly flush = (): void => {
    const batch = this.outgoing;
    this.outgoing = null;
    if (batch === null) return;
    const [first] = batch;
    if (batch.length === 1 && first !== undefined) this.write(first);
    else this.write({ t: 'batch', m: batch });
  };

  private write(m: ParentToHost): void {
    // With a callback a failed send (the host just died) is not thrown or emitted;
    // the exit handler fails whatever was in flight.
    if (this.child.connected) this.child.send(m, undefined, undefined, ignoreSendError);
  }

  private request(make: (rid: number) => ParentToHost, signal?: CancelSignal, cancel?: (rid: number) => ParentToHost): Promise<HostToParent> {
    if (this.dead !== null) return Promise.reject(this.dead);
    if (this.closing) return Promise.reject(new InferenceError('engine_unavailable', 'the local engine is closing'));
    if (signal?.aborted === true) return Promise.reject(abortReason(signal));
    const rid = this.nextRid++;
    return new Promise((resolve, reject) => {
      if (signal === undefined) {
        this.requests.set(rid, { resolve, reject });
      } else {
        const onAbort = (): void => {
          if (!this.requests.delete(rid)) return;
          if (cancel !== undefined) this.post(cancel(rid));
          reject(abortReason(signal));
        };
        signal.addEventListener('abort', onAbort, { once: true });
        this.requests.set(rid, {
          resolve: (m) => { signal.removeEventListener('abort', onAbort); resolve(m); },
          reject: (e) => { signal.removeEventListener('abort', onAbort); reject(toInferenceError(e)); },
        });
      }
      this.post(make(rid));
    });
  }

  private onMessage(m: HostToParent): void {
    switch (m.t) {
      case 'step':
        for (const item of m.items) this.onItem(item);
        return;
      case 'embedded':
      case 'tokens':
      case 'stats': {
        const r = this.requests.get(m.rid);
        this.requests.delete(m.rid);
        r?.resolve(m);
        return;
      }
      case 'failed': {
        const r = this.requests.get(m.rid);
        this.requests.delete(m.rid);
        r?.reject(sequenceError(m.error, null));
        return;
      }
      case 'fault':
        this.reportedFault = { kind: m.kind, message: m.message };
        return;
      case 'progress':
      case 'ready':
      case 'loadFailed':
        return;
      default: {
        const never: never = m;
        throw new Error(`unexpected host message ${JSON.stringify(never)}`);
      }
    }
  }

  private onItem(item: HostStepItem): void {
    const g = this.generations.get(item.id);
    if (g === undefined) return; // aborted: the host is just confirming
    if (item.promptTokens !== undefined) g.promptTokens = item.promptTokens;
    if (item.cachedTokens !== undefined) g.cachedTokens = item.cachedTokens;
    if (item.error !== undefined) {
      this.generations.delete(item.id);
      g.reject(sequenceError(item.error, g.param));
      return;
    }
    if (item.text !== '' || item.n > 0 || item.r !== undefined || item.tc !== undefined || item.lp !== undefined) {
      if (item.r === undefined && item.tc === undefined && item.lp === undefined) g.onChunk(item.text, item.n);
      else {
        const extras: ChunkExtras = {};
        if (item.r !== undefined) extras.reasoning = item.r;
        if (item.tc !== undefined) extras.toolCalls = item.tc;
        if (item.lp !== undefined) extras.logprobs = item.lp;
        g.onChunk(item.text, item.n, extras);
      }
    }
    if (item.done === undefined) return;
    this.generations.delete(item.id);
    if (item.done === 'cancelled') {
      g.reject(new InferenceError('engine_unavailable', 'the generation was cancelled by the engine'));
      return;
    }
    g.resolve({
      finishReason: item.calls === true && item.done === 'stop' ? 'tool_calls' : item.done,
      promptTokens: g.promptTokens,
      cachedTokens: g.cachedTokens,
      completionTokens: item.completionTokens ?? 0,
    });
  }

  private onChildExit(code: number | null, signal: NodeJS.Signals | null): void {
    const detail = this.reportedFault?.message ?? (signal !== null ? `killed by ${signal}` : `exited with code ${String(code)}`);
    const fault: EngineFaultKind =
      this.reportedFault?.kind ?? (code === EXIT_UNRECOVERABLE ? 'Unrecoverable' : 'ContextPoisoned');
    this.dead = this.closing
      ? new InferenceError('engine_unavailable', 'the local engine was closed')
      : new InferenceError('engine_unavailable', 'the local engine stopped', { fault, diagnostic: detail });
    const err = this.dead;
    for (const g of this.generations.values()) g.reject(err);
    this.generations.clear();
    for (const r of this.requests.values()) r.reject(err);
    this.requests.clear();
    const exit: HostExit = { code, signal, reason: exitReason(code, signal), stderrTail: this.stderr.text() };
    if (!this.closing || code !== EXIT_CLOSED) {
      this.log(exitLine(this.label, this.pid, exit));
      for (const cb of this.processExitListeners) cb(exit);
    }
    if (this.closing) return;
    for (const cb of this.exitListeners) cb(fault, detail, exit);
  }
}
