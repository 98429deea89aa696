// RemoteEngineCoreActor: one per remote replica. Admission is a bounded queue in
// front of a pool of `maxConcurrent` workers; a full queue answers `overloaded`
// with retry-after instead of growing. Each worker runs its request through the
// reliability layer (reliability/call.ts): the endpoint's circuit breaker, the
// (provider, key, model) rate limiter shared with every replica using that key,
// and retries with backoff on this replica before the first chunk. The HTTP
// session (pool + credentials) is a supervised context: an upstream 401 rebuilds
// it and the request is retried once on the fresh session, provided nothing was
// streamed to the client yet. A worker's slot is handed back in `finally` of
// its call, exactly once, whatever happened to the mailbox.

import {
  type CancelSignal, type ChunkSink, type DeploymentSpec, type EmbeddingRequest, type EmbeddingResult, type GenerateRequest, InferenceError,
  type ModelRunner, type ReplicaLoad, type RunContext, type Tokens, type TraceSpan, toInferenceError,
} from '@inference/core';
import { Actor, type ActorRef, type Reply } from '@inference/actors';
import { DEFAULT_STRATEGY, WorkerActor, WorkerHandle, type WorkerMsg, remoteSessionDecider } from '@inference/supervision';
import { providerFor } from './providers/index.js';
import type { BreakerState } from './reliability/breaker.js';
import { type Attempt, type RemoteEvent, type ReliableDeps, callReliably } from './reliability/call.js';
import { DEFAULT_REGISTRY, type ReliabilityRegistry } from './reliability/registry.js';
import { estimateRequestTokens } from './reliability/tokens.js';
import { type CredentialSource, type RemoteSession, type SessionOptions, closeSession, openSession } from './session.js';

/** `waiting`: the span of its wait in the queue, when traced and queued. */
type GenerateWork = { kind: 'generate'; req: GenerateRequest; ctx: RunContext; sink: ChunkSink; reply: Reply<Tokens>; waiting?: TraceSpan };
type Work = GenerateWork | { kind: 'embed'; req: EmbeddingRequest; ctx: RunContext; reply: Reply<EmbeddingResult>; waiting?: TraceSpan };

export type RemoteEngineMsg = { type: 'submit'; work: Work };

export interface RemoteEngineOptions {
  readonly credentials: CredentialSource;
  readonly session?: SessionOptions;
  readonly onRestart?: (reason: string) => void;
  readonly onFailed?: (reason: string) => void;
  /** Shared limiters and breakers; replicas with the same (provider, key, model) share one limiter. */
  readonly registry?: ReliabilityRegistry;
  /** Retries, limiter refusals, upstream 429s and breaker transitions, for the metrics. */
  readonly onEvent?: (e: RemoteEngineEvent) => void;
  /** Source of jitter (tests pin it). */
  readonly random?: () => number;
}

const generatedTokens = (t: Tokens): number => t.usage.promptTokens + t.usage.completionTokens;
const embeddedTokens = (r: EmbeddingResult): number => r.promptTokens;
const nothingEmitted = (): boolean => false;

export type RemoteEngineEvent = RemoteEvent | { readonly type: 'breaker'; readonly state: BreakerState };

export class RemoteEngineCoreActor extends Actor<RemoteEngineMsg> {
  active = 0;
  private readonly queue: Work[] = [];
  private worker!: WorkerHandle<RemoteSession>;
  private reliable!: ReliableDeps;
  private unsubscribe: (() => void) | undefined;

  constructor(
    readonly spec: DeploymentSpec,
    private readonly options: RemoteEngineOptions,
  ) {
    super();
  }

  get queued(): number {
    return this.queue.length;
  }

  override preStart(): void {
    const spec = this.spec;
    const opts = this.options;
    const ref: ActorRef<WorkerMsg<RemoteSession>> = (this.context).spawn('worker', () => new WorkerActor<RemoteSession>(
      {
        open: (generation) => Promise.resolve(openSession(spec, opts.credentials, generation, opts.session)),
        close: closeSession,
      },
      remoteSessionDecider,
      DEFAULT_STRATEGY,
      {
        onRestart: (e) => opts.onRestart?.(toInferenceError(e).message),
        onFailed: (_e, reason) => opts.onFailed?.(reason),
      },
    ));
    this.worker = new WorkerHandle(ref, remoteSessionDecider);
    const registry = opts.registry ?? DEFAULT_REGISTRY;
    const { key, breaker } = registry.breaker(spec);
    const onEvent = opts.onEvent;
    this.reliable = {
      spec,
      gate: registry.gate(spec, opts.credentials(spec).apiKey),
      breaker,
      clock: registry.clock,
      backoff: { baseMs: spec.remote.retryBaseMs, capMs: spec.remote.retryMaxMs },
      random: opts.random ?? Math.random,
      onEvent,
    };
    if (onEvent !== undefined) {
      onEvent({ type: 'breaker', state: breaker.state(registry.clock.now()) });
      this.unsubscribe = registry.onBreakerChange((k, _from, to) => {
        if (k === key) onEvent({ type: 'breaker', state: to });
      });
    }
  }

  receive(m: RemoteEngineMsg): void {
    switch (m.type) {
      case 'submit':
        this.admit(m.work);
        return;
      default: {
        const never: never = m.type;
        throw new Error(`unknown message ${String(never)}`);
      }
    }
  }

  /**
   * Admits work in place, without a message: what `receive` does with a 'submit', for a caller in this
   * process (RemoteReplica). Safe outside the mailbox because every handler here is synchronous, so this
   * never interleaves with one; a stopped replica takes nothing (its queue was failed in postStop).
   */
  submit(w: Work): void {
    if (!this.context.self.alive) {
      w.reply.reject(new InferenceError('engine_unavailable', 'replica stopped'));
      return;
    }
    this.admit(w);
  }

  private admit(w: Work): void {
    if (w.ctx.signal.aborted) {
      w.reply.reject(toInferenceError(w.ctx.signal.reason));
      return;
    }
    if (this.active < this.spec.remote.maxConcurrent) {
      this.start(w);
      return;
    }
    if (this.queue.length >= this.spec.remote.maxQueue) {
      w.reply.reject(
        new InferenceError('overloaded', `deployment '${this.spec.name}' is at capacity, try again`, {
          retryAfterMs: 1000,
          diagnostic: `queue of ${this.spec.remote.maxQueue} full`,
          capacity: true,
        }),
      );
      return;
    }
    if (w.ctx.trace !== undefined) w.waiting = w.ctx.trace.child('queue', { 'inference.queue.depth': this.queue.length });
    this.queue.push(w);
  }

  private next(): void {
    // Stopping: what is queued fails in postStop, nothing new starts.
    if (!this.context.self.alive) return;
    while (this.active < this.spec.remote.maxConcurrent) {
      const w = this.queue.shift();
      if (w === undefined) return;
      w.waiting?.end();
      if (w.ctx.signal.aborted) {
        w.reply.reject(toInferenceError(w.ctx.signal.reason));
        continue;
      }
      this.start(w);
    }
  }

  private start(w: Work): void {
    this.active++;
    // One settlement per outcome, the slot back first (an idle stream holds one promise here, not three).
    // The slot comes back synchronously, not by a message a full mailbox could drop (that would shrink
    // the replica for good). Safe outside the mailbox: `receive` is synchronous, so this never interleaves with it.
    if (w.kind === 'generate') {
      const call = new GenerateCall(this.spec, this.worker, w);
      // Counting tokens only matters to a tpm limit.
      const p = this.spec.remote.tpm === undefined ? callReliably(this.reliable, w.ctx, call) : this.counted(call);
      p.then((out) => { this.done(w, out); }, (e: unknown) => { this.failed(w, e); });
    } else {
      const tokens = w.req.input.reduce((n, s) => n + Math.ceil(s.length / 4), 0);
      const spec = this.spec;
      void callReliably(this.reliable, w.ctx, {
        tokens,
        run: () => this.worker.withContext((session) => providerFor(spec.runtime).embed({ spec, session, ctx: w.ctx }, w.req)),
        usage: embeddedTokens,
        emitted: nothingEmitted,
      }).then((out) => { this.done(w, out); }, (e: unknown) => { this.failed(w, e); });
    }
  }

  /** A generation under a tpm limit: its tokens are counted (off the main thread) before the limiter sees it. */
  private async counted(call: GenerateCall): Promise<Tokens> {
    call.tokens = await estimateRequestTokens(call.work.req);
    return callReliably(this.reliable, call.work.ctx, call);
  }

  private done<T>(w: { reply: Reply<T> }, out: T): void {
    this.slotBack();
    w.reply.resolve(out);
  }

  private failed(w: Work, e: unknown): void {
    this.slotBack();
    w.reply.reject(toInferenceError(e));
  }

  private slotBack(): void {
    this.active--;
    this.next();
  }

  override postStop(): void {
    this.unsubscribe?.();
    for (const w of this.queue.splice(0)) {
      w.waiting?.end();
      w.reply.reject(new InferenceError('engine_unavailable', 'replica stopped'));
    }
  }
}

/**
 * One generation on this replica, as the reliability layer's attempt (reliability/call.ts): its token
 * estimate, one run on the current session, and whether anything reached the client (then no retry
 * and no second session). One object per request instead of a closure per step.
 */
class GenerateCall implements Attempt<Tokens> {
  tokens = 0;
  private emittedAny = false;
  /** The client's sink, noting that something reached it. */
  readonly sink: ChunkSink = (c) => {
    this.emittedAny = true;
    this.work.sink(c);
  };

  constructor(
    private readonly spec: DeploymentSpec,
    private readonly worker: WorkerHandle<RemoteSession>,
    readonly work: GenerateWork,
  ) {}

  run(): Promise<Tokens> {
    return this.worker.withContext(
      (session) => providerFor(this.spec.runtime).generate({ spec: this.spec, session, ctx: this.work.ctx }, this.work.req, this.sink),
      () => !this.emittedAny,
    );
  }

  usage(t: Tokens): number {
    return generatedTokens(t);
  }

  emitted(): boolean {
    return this.emittedAny;
  }
}

/**
 * The answer to one submitted request: settles once; the request's abort answers it at once,
 * wherever the work is (queued, waiting for the limiter, or upstream).
 */
class Submission<T> implements Reply<T> {
  private settled = false;
  readonly onAbort = (): void => {
    if (this.settled) return;
    this.settled = true;
    this.rejectWith(toInferenceError(this.signal.reason));
  };

  constructor(
    private readonly signal: CancelSignal,
    private readonly resolveWith: (v: T) => void,
    private readonly rejectWith: (e: InferenceError) => void,
  ) {}

  resolve(v: T): boolean {
    if (this.settled) return false;
    this.settled = true;
    this.signal.removeEventListener('abort', this.onAbort);
    this.resolveWith(v);
    return true;
  }

  reject(e: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.signal.removeEventListener('abort', this.onAbort);
    this.rejectWith(toInferenceError(e));
  }
}

/** The ModelRunner face of a remote replica: what the request path calls. */
export class RemoteReplica implements ModelRunner {
  private stopped = false;

  constructor(
    readonly id: string,
    readonly deployment: string,
    private readonly ref: ActorRef<RemoteEngineMsg>,
    private readonly core: RemoteEngineCoreActor,
  ) {}

  /** Admits the work on the core in place (RemoteEngineCoreActor.submit): no mailbox message, no turn. */
  private submit<T>(make: (reply: Reply<T>) => Work, signal: CancelSignal): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const reply = new Submission<T>(signal, resolve, reject);
      signal.addEventListener('abort', reply.onAbort, { once: true });
      this.core.submit(make(reply));
    });
  }

  generate(req: GenerateRequest, ctx: RunContext, sink: ChunkSink): Promise<Tokens> {
    return this.submit<Tokens>((reply) => ({ kind: 'generate', req, ctx, sink, reply }), ctx.signal);
  }

  embed(req: EmbeddingRequest, ctx: RunContext): Promise<EmbeddingResult> {
    return this.submit<EmbeddingResult>((reply) => ({ kind: 'embed', req, ctx, reply }), ctx.signal);
  }

  load(): ReplicaLoad {
    return { outstanding: this.core.active + this.core.queued, queued: this.core.queued, capacity: this.core.spec.remote.maxConcurrent };
  }

  healthy(): boolean {
    return !this.stopped && this.ref.alive;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.ref.stop();
  }
}
