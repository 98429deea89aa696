// EngineCoreActor (local): one per local replica. Admission is bounded (running
// sequences up to maxSequences, then a queue up to maxQueue, then `overloaded`).
// The engine host process is the context of a supervised WorkerActor: a host that
// dies or reports ContextPoisoned is restarted (model reloaded) within the restart
// budget (3 in 60 s); past it the replica is Failed and routing skips it. Requests
// in flight on a dying host fail with engine_unavailable, which the request path
// retries on another replica when no token was sent yet. Deadlines
// (`engine.timeouts`): a queue wait past queueMs is `overloaded`, a request
// running past totalMs is `upstream_timeout`, and either frees its sequence.

import {
  type CancelSignal, type ChatMessage, type ChoiceResult, type ChunkSink, type DeploymentSpec, type EmbeddingRequest, type EmbeddingResult,
  type FinishReason, type GenerateRequest, InferenceError, type ModelDetails, type ModelRunner, type ReplicaLoad, type RunContext, type TokenChunk,
  type TokenLogprob, type ToolCall, type ToolDefinition, type Tokens, type TraceSpan, linkedCancellation, toInferenceError,
  DEFAULT_PROMPT_CACHE_MIB,
} from '@inference/core';
import { Actor, type ActorRef, type ActorSystem } from '@inference/actors';
import { DEFAULT_STRATEGY, WorkerActor, WorkerHandle, type WorkerMsg, localEngineDecider } from '@inference/supervision';
import { type ChunkExtras, EngineHost, type EngineHostOptions } from './hostClient.js';
import type { HostExit } from './hostExit.js';
import type { InjectableFault, NativeStats } from './native.js';
import type { ChatInputMessage, ChatToolInput, GenerateInput, GenerateParams } from './protocol.js';

export interface LocalReplicaEvents {
  restarted(reason: string): void;
  failed(reason: string): void;
  /** Engine statistics, sampled while the replica serves. */
  stats?(stats: NativeStats): void;
  /** The engine host process ended, unless closed cleanly (EngineHost.onProcessExit; hostClient.ts logs it). */
  hostExited?(exit: HostExit): void;
}

export interface LocalReplicaOptions {
  readonly env?: Record<string, string>;
  readonly onProgress?: (fraction: number) => void;
  readonly statsIntervalMs?: number;
  readonly restartBudget?: { maxRestarts: number; windowMs: number };
  /** Shown in the engine host's command line. */
  readonly label?: string;
}

function hostOptions(spec: DeploymentSpec, o: LocalReplicaOptions): EngineHostOptions {
  const opts: EngineHostOptions = {
    modelPath: spec.model ?? '',
    contextSize: spec.engine.contextSize,
    maxSequences: spec.engine.maxSequences,
    gpuLayers: spec.engine.gpuLayers,
    threads: spec.engine.threads,
    batchTokens: spec.engine.batchTokens,
    promptCacheBytes: (spec.engine.promptCacheMiB ?? DEFAULT_PROMPT_CACHE_MIB) * 1024 * 1024,
  };
  if (o.env !== undefined) opts.env = o.env;
  if (o.onProgress !== undefined) opts.onProgress = o.onProgress;
  if (o.label !== undefined) opts.label = o.label;
  if (spec.engine.chatTemplate !== undefined) opts.chatTemplate = spec.engine.chatTemplate;
  return opts;
}

/**
 * OpenAI request fields that reach a local deployment uninterpreted (`passthrough`) and
 * have no effect on what the engine generates, so accepting them drops nothing. Every
 * other uninterpreted field is refused by name (docs/openai-fields.md).
 */
const HARMLESS_PASSTHROUGH: ReadonlySet<string> = new Set(['metadata', 'store', 'service_tier', 'prompt_cache_key', 'safety_identifier']);

/** Chat fields that become inputs of the chat template, as llama-server takes them (`toInput`). */
const TEMPLATE_FIELDS: ReadonlySet<string> = new Set(['reasoning_effort', 'chat_template_kwargs']);

/** OpenAI's `reasoning_effort` values. */
const REASONING_EFFORTS: ReadonlySet<string> = new Set(['none', 'minimal', 'low', 'medium', 'high', 'xhigh']);

/** The first field a local deployment cannot honour, as a 400 naming it; undefined when all can be. */
export function refusedField(req: GenerateRequest): InferenceError | undefined {
  for (const key of Object.keys(req.passthrough)) {
    if (key === 'parallel_tool_calls' && typeof req.passthrough[key] === 'boolean') continue; // interpreted below
    if (HARMLESS_PASSTHROUGH.has(key)) continue;
    if (req.kind === 'chat' && TEMPLATE_FIELDS.has(key)) continue; // interpreted by toInput
    return new InferenceError('invalid_request', `'${key}' is not supported by local deployments`, { param: key });
  }
  return undefined;
}

/** OpenAI `tool_choice` (raw spelling) as the chat template takes it, and the tools it leaves. */
export function toolSelection(req: GenerateRequest): { choice: 'auto' | 'none' | 'required'; tools: ToolDefinition[] } {
  const tools = req.tools ?? [];
  const tc: unknown = req.toolChoice;
  if (tc === undefined || tc === null || tc === 'auto') return { choice: 'auto', tools };
  if (tc === 'none') return { choice: 'none', tools };
  if (tc === 'required') {
    if (tools.length === 0) throw new InferenceError('invalid_request', "tool_choice 'required' needs tools", { param: 'tool_choice' });
    return { choice: 'required', tools };
  }
  if (typeof tc === 'object' && (tc as Record<string, unknown>)['type'] === 'function') {
    const fn = (tc as Record<string, unknown>)['function'];
    const name = typeof fn === 'object' && fn !== null ? (fn as Record<string, unknown>)['name'] : undefined;
    if (typeof name !== 'string' || name === '') throw new InferenceError('invalid_request', 'tool_choice.function.name is required', { param: 'tool_choice' });
    const named = tools.filter((t) => t.function.name === name);
    if (named.length === 0) throw new InferenceError('invalid_request', `tool_choice names '${name}', which is not in tools`, { param: 'tool_choice' });
    // The named tool alone is rendered and forced (a required choice over it).
    return { choice: 'required', tools: named };
  }
  throw new InferenceError('invalid_request', "tool_choice must be 'auto', 'none', 'required' or {type: 'function', function: {name}}", {
    param: 'tool_choice',
  });
}

function toMessage(m: ChatMessage): ChatInputMessage {
  const out: ChatInputMessage = { role: m.role, content: m.content };
  if (m.name !== undefined) out.name = m.name;
  if (m.toolCalls !== undefined && m.toolCalls.length > 0) {
    out.tool_calls = m.toolCalls.map((c) => ({ id: c.id, type: 'function', function: { name: c.function.name, arguments: c.function.arguments } }));
  }
  if (m.toolCallId !== undefined) out.tool_call_id = m.toolCallId;
  return out;
}

export function toInput(req: GenerateRequest): GenerateInput {
  if (req.kind === 'completion') return { prompt: req.prompt };
  const input: GenerateInput = { messages: req.messages.map(toMessage) };
  const { choice, tools } = toolSelection(req);
  if (tools.length > 0) {
    input.tools = tools.map((t) => {
      const fn: ChatToolInput['function'] = { name: t.function.name };
      if (t.function.description !== undefined) fn.description = t.function.description;
      if (t.function.parameters !== undefined) fn.parameters = t.function.parameters;
      return { type: 'function', function: fn };
    });
    input.toolChoice = choice;
    const parallel = req.parallelToolCalls ?? req.passthrough['parallel_tool_calls'];
    input.parallelToolCalls = typeof parallel === 'boolean' ? parallel : true;
  }
  const kwargs = req.passthrough['chat_template_kwargs'];
  if (kwargs !== undefined && kwargs !== null) {
    if (typeof kwargs !== 'object' || Array.isArray(kwargs)) {
      throw new InferenceError('invalid_request', 'chat_template_kwargs must be an object', { param: 'chat_template_kwargs' });
    }
    const thinking = (kwargs as Record<string, unknown>)['enable_thinking'];
    if (thinking !== undefined && typeof thinking !== 'boolean') {
      throw new InferenceError('invalid_request', 'chat_template_kwargs.enable_thinking must be a boolean', { param: 'chat_template_kwargs.enable_thinking' });
    }
    input.templateKwargs = kwargs as Record<string, unknown>;
  }
  const effort = req.passthrough['reasoning_effort'];
  if (effort !== undefined && effort !== null) {
    if (typeof effort !== 'string' || !REASONING_EFFORTS.has(effort)) {
      throw new InferenceError('invalid_request', `reasoning_effort must be one of ${[...REASONING_EFFORTS].join(', ')}`, { param: 'reasoning_effort' });
    }
    input.reasoningEffort = effort;
  }
  return input;
}

/** OpenAI logit_bias as the engine takes it: -100 bans the token (OpenAI: "should result in a ban"). */
export function logitBiasPairs(bias: Record<string, number>): [number, number][] {
  return Object.entries(bias).map(([id, b]) => {
    const token = Number(id);
    if (!Number.isInteger(token)) throw new InferenceError('invalid_request', `logit_bias: '${id}' is not a token id`, { param: 'logit_bias' });
    return [token, b <= -100 ? -Infinity : b];
  });
}

export function toParams(req: GenerateRequest): GenerateParams {
  const s = req.sampling;
  const p: GenerateParams = { stop: s.stop };
  if (s.maxTokens !== undefined) p.maxTokens = s.maxTokens;
  if (s.temperature !== undefined) p.temperature = s.temperature;
  if (s.topP !== undefined) p.topP = s.topP;
  if (s.topK !== undefined) p.topK = s.topK;
  if (s.minP !== undefined) p.minP = s.minP;
  if (s.seed !== undefined) p.seed = s.seed;
  if (s.presencePenalty !== undefined) p.presencePenalty = s.presencePenalty;
  if (s.frequencyPenalty !== undefined) p.frequencyPenalty = s.frequencyPenalty;
  if (s.logprobs === true || (s.topLogprobs !== undefined && s.topLogprobs > 0)) p.logprobs = s.topLogprobs ?? 0;
  if (s.logitBias !== undefined && Object.keys(s.logitBias).length > 0) p.logitBias = logitBiasPairs(s.logitBias);
  const schema = jsonSchemaOf(req.responseFormat);
  if (schema !== undefined) p.jsonSchema = schema;
  return p;
}

/**
 * The JSON schema (as JSON text) that a response_format enforces, or undefined for
 * plain text. json_object is any JSON object; a json_schema without a schema is any
 * JSON value. The wire layer has validated the shape (type, json_schema.schema an object).
 */
export function jsonSchemaOf(rf: Record<string, unknown> | undefined): string | undefined {
  if (rf === undefined) return undefined;
  switch (rf['type']) {
    case 'json_object':
      return '{"type":"object"}';
    case 'json_schema': {
      const js = rf['json_schema'];
      const schema = typeof js === 'object' && js !== null ? (js as Record<string, unknown>)['schema'] : undefined;
      return JSON.stringify(schema ?? {});
    }
    default:
      return undefined;
  }
}

/** One choice's output so far: its chunks as the sink gets them, and the aggregate at the end. */
export class ChoiceAccumulator {
  private text = '';
  private reasoning = '';
  private readonly calls: ToolCall[] = [];
  private readonly logprobs: TokenLogprob[] = [];
  private withLogprobs = false;

  constructor(private readonly index: number) {}

  add(text: string, tokens: number, extras?: ChunkExtras): TokenChunk {
    this.text += text;
    const chunk: TokenChunk = { index: this.index, text, tokens };
    if (extras?.reasoning !== undefined) {
      this.reasoning += extras.reasoning;
      chunk.reasoningDelta = extras.reasoning;
    }
    if (extras?.toolCalls !== undefined) {
      for (const d of extras.toolCalls) {
        let call = this.calls[d.index];
        if (call === undefined) {
          call = { id: d.id ?? '', type: 'function', function: { name: d.name ?? '', arguments: '' } };
          this.calls[d.index] = call;
        }
        if (d.id !== undefined) call.id = d.id;
        if (d.name !== undefined) call.function.name = d.name;
        call.function.arguments += d.argumentsDelta;
      }
      chunk.toolCalls = extras.toolCalls;
    }
    if (extras?.logprobs !== undefined) {
      this.withLogprobs = true;
      this.logprobs.push(...extras.logprobs);
      chunk.logprobs = extras.logprobs;
    }
    return chunk;
  }

  result(finishReason: FinishReason): ChoiceResult {
    const c: ChoiceResult = { index: this.index, text: this.text, finishReason };
    const calls = this.calls.filter((x) => x !== undefined);
    if (calls.length > 0) c.toolCalls = calls;
    if (this.reasoning !== '') c.reasoning = this.reasoning;
    if (this.withLogprobs) c.logprobs = this.logprobs;
    return c;
  }
}

type CoreMsg = { type: 'tick' };

/** Holds the supervised worker; its mailbox only paces the stats sampling. */
export class EngineCoreActor extends Actor<CoreMsg> {
  handle!: WorkerHandle<EngineHost>;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly spec: DeploymentSpec,
    private readonly options: LocalReplicaOptions,
    private readonly events: LocalReplicaEvents,
  ) {
    super();
  }

  override preStart(): void {
    const spec = this.spec;
    const opts = this.options;
    // The worker's handle exists only after the worker is spawned; the host's exit hook reads it late.
    const late: { handle?: WorkerHandle<EngineHost> } = {};
    const ref: ActorRef<WorkerMsg<EngineHost>> = this.context.spawn('worker', () => new WorkerActor<EngineHost>(
      {
        open: async (generation) => {
          const host = await EngineHost.start(hostOptions(spec, opts));
          host.onProcessExit((exit) => {
            this.events.hostExited?.(exit);
          });
          host.onExit((fault, detail) => {
            late.handle?.report(new InferenceError('engine_unavailable', 'the local engine stopped', { fault, diagnostic: detail }), generation);
          });
          return host;
        },
        close: (host) => host.close(),
      },
      localEngineDecider,
      opts.restartBudget ?? DEFAULT_STRATEGY,
      {
        onRestart: (e) => { this.events.restarted(toInferenceError(e).diagnostic ?? toInferenceError(e).message); },
        onFailed: (_e, reason) => { this.events.failed(reason); },
      },
    ));
    this.handle = new WorkerHandle(ref, localEngineDecider);
    late.handle = this.handle;
    if (this.events.stats !== undefined) {
      const self = this.context.self;
      this.timer = setInterval(() => self.tell({ type: 'tick' }), opts.statsIntervalMs ?? 1000);
      this.timer.unref();
    }
  }

  async receive(m: CoreMsg): Promise<void> {
    switch (m.type) {
      case 'tick': {
        const stats = await this.handle.context(50).then((c) => c.resource.stats(), () => undefined).catch(() => undefined);
        if (stats !== undefined) this.events.stats?.(stats);
        return;
      }
      default: {
        const never: never = m.type;
        throw new Error(`unknown message ${String(never)}`);
      }
    }
  }

  override postStop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
  }
}

/** The ModelRunner face of a local replica. */
export class LocalReplica implements ModelRunner {
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  private stopped = false;
  private failed = false;
  readonly ready: Promise<void>;

  constructor(
    readonly id: string,
    readonly deployment: string,
    private readonly spec: DeploymentSpec,
    private readonly ref: ActorRef<CoreMsg>,
    private readonly core: EngineCoreActor,
  ) {
    this.ready = ref.started().then(() => core.handle.context()).then(() => undefined);
  }

  markFailed(): void {
    this.failed = true;
  }

  /** Takes a sequence slot, waiting at most `engine.timeouts.queueMs` for one. */
  private async admit(signal: CancelSignal): Promise<void> {
    if (this.running < this.spec.engine.maxSequences) {
      this.running++;
      return;
    }
    if (this.waiting.length >= this.spec.engine.maxQueue) {
      throw new InferenceError('overloaded', `deployment '${this.deployment}' is at capacity, try again`, { retryAfterMs: 1000, capacity: true });
    }
    const queueMs = this.spec.engine.timeouts.queueMs;
    await new Promise<void>((resolve, reject) => {
      const leave = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        const i = this.waiting.indexOf(go);
        if (i >= 0) this.waiting.splice(i, 1);
      };
      const go = (): void => {
        leave();
        resolve();
      };
      const onAbort = (): void => {
        leave();
        reject(toInferenceError(signal.reason));
      };
      const timer = setTimeout(() => {
        leave();
        reject(new InferenceError('overloaded', `deployment '${this.deployment}' is at capacity, try again`, {
          retryAfterMs: 1000, capacity: true, diagnostic: `no sequence slot within queueMs ${queueMs}`,
        }));
      }, queueMs);
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(go);
    });
    this.running++;
  }

  /** admit(), with a span over the wait when the request has to queue. */
  private async tracedAdmit(signal: CancelSignal, trace: TraceSpan): Promise<void> {
    if (this.running < this.spec.engine.maxSequences) {
      this.running++;
      return;
    }
    const span = trace.child('queue', { 'inference.queue.depth': this.waiting.length });
    try {
      await this.admit(signal);
    } catch (e) {
      span.fail(e);
      throw e;
    } finally {
      span.end();
    }
  }

  /** The request's signal, plus `engine.timeouts.totalMs` counted from now (queue wait included). */
  private deadline(ctx: RunContext): { signal: CancelSignal; done: () => void } {
    const totalMs = this.spec.engine.timeouts.totalMs;
    return linkedCancellation(
      ctx.signal,
      totalMs,
      () => new InferenceError('upstream_timeout', 'the model took too long to answer', { diagnostic: `engine totalMs ${totalMs}` }),
    );
  }

  private release(): void {
    this.running--;
    const next = this.waiting.shift();
    if (next !== undefined) next();
  }

  async generate(req: GenerateRequest, ctx: RunContext, sink: ChunkSink): Promise<Tokens> {
    const refused = refusedField(req);
    if (refused !== undefined) throw refused;
    const input = toInput(req);
    const params = toParams(req);
    const n = req.sampling.n;
    const { signal, done } = this.deadline(ctx);
    const one = async (index: number): Promise<{ choice: ChoiceResult; prompt: number; completion: number; cached: number }> => {
      if (ctx.trace === undefined) await this.admit(signal);
      else await this.tracedAdmit(signal, ctx.trace);
      const gen = ctx.trace?.child('generate', { 'inference.replica.id': this.id, 'inference.choice': index });
      try {
        const acc = new ChoiceAccumulator(index);
        const r = await this.core.handle.withContext(
          (host) =>
            host.generate(
              input,
              n > 1 && params.seed !== undefined ? { ...params, seed: params.seed + index } : params,
              signal,
              (t, tokens, extras) => {
                sink(acc.add(t, tokens, extras));
              },
              ctx.flow,
            ),
          // Never on this replica's next host: a request without output is retried
          // on another replica by the request path, which does not wait for a reload.
          () => false,
        );
        sink({ index, text: '', tokens: 0, finishReason: r.finishReason });
        gen?.set({
          'gen_ai.usage.input_tokens': r.promptTokens,
          'gen_ai.usage.output_tokens': r.completionTokens,
          'inference.cached_tokens': r.cachedTokens,
          'gen_ai.response.finish_reasons': [r.finishReason],
        });
        return { choice: acc.result(r.finishReason), prompt: r.promptTokens, completion: r.completionTokens, cached: r.cachedTokens };
      } catch (e) {
        gen?.fail(e);
        throw e;
      } finally {
        gen?.end();
        this.release();
      }
    };
    let results: Awaited<ReturnType<typeof one>>[];
    try {
      results = await Promise.all(Array.from({ length: n }, (_, i) => one(i)));
    } finally {
      done();
    }
    return {
      choices: results.map((r) => r.choice),
      usage: {
        promptTokens: results[0]?.prompt ?? 0,
        completionTokens: results.reduce((a, r) => a + r.completion, 0),
        cachedTokens: results[0]?.cached ?? 0,
      },
    };
  }

  async embed(req: EmbeddingRequest, ctx: RunContext): Promise<EmbeddingResult> {
    const { signal, done } = this.deadline(ctx);
    try {
      await this.admit(signal);
      try {
        // A client that goes away (or the deadline) stops the embedding between inputs.
        return await this.core.handle.withContext((host) => host.embed(req.input, signal));
      } finally {
        this.release();
      }
    } finally {
      done();
    }
  }

  details(): ModelDetails | undefined {
    const host = this.core.handle.peek();
    if (host === undefined) return undefined;
    return {
      templateSource: host.info.templateSource,
      templateName: host.info.templateName,
      templateTools: host.info.templateTools,
      contextLength: host.info.sequenceContext,
      backend: host.info.backend,
      pid: host.pid,
    };
  }

  /** Test hook: the engine's next decode step fails with this native fault (see EngineHost.injectFault). */
  async injectFault(kind: InjectableFault): Promise<void> {
    const { resource } = await this.core.handle.context();
    resource.injectFault(kind);
  }

  load(): ReplicaLoad {
    return { outstanding: this.running + this.waiting.length, queued: this.waiting.length, capacity: this.spec.engine.maxSequences };
  }

  healthy(): boolean {
    return !this.stopped && !this.failed && this.ref.alive;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.ref.stop();
  }
}

export function createLocalReplica(
  system: ActorSystem,
  name: string,
  spec: DeploymentSpec,
  id: string,
  events: LocalReplicaEvents,
  options: LocalReplicaOptions = {},
): LocalReplica {
  const late: { replica?: LocalReplica } = {};
  const wrapped: LocalReplicaEvents = {
    restarted: (r) => {
      events.restarted(r);
    },
    failed: (r) => {
      late.replica?.markFailed();
      events.failed(r);
    },
  };
  if (events.stats !== undefined) {
    const stats = events.stats.bind(events);
    wrapped.stats = stats;
  }
  if (events.hostExited !== undefined) wrapped.hostExited = events.hostExited.bind(events);
  const core = new EngineCoreActor(spec, options, wrapped);
  const ref = system.spawn(name, () => core, { mailbox: 64 });
  const replica = new LocalReplica(id, spec.name, spec, ref, core);
  late.replica = replica;
  return replica;
}
