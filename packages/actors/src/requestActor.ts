// RequestActor: one per request. It routes (asks the coordinator for a replica),
// dispatches to the replica's runner, aggregates chunks into Tokens while the sink
// streams them, and cancels the work when the client goes away. A failure before
// the first chunk reached the client is retried once on another replica, then the
// deployment's `fallbacks` are tried in order (each with the same replica retry);
// after the first chunk, nothing is retried (the client already has partial output).

import {
  Cancellation, type CapacityPolicy, type ChunkSink, type EmbeddingRequest, type EmbeddingResult, type ErrorKind, type FlowSignal,
  type GenerateRequest, InferenceError,
  type ModelRunner, type PriceSpec, type RunContext, type Tokens, type TraceSpan, toInferenceError,
} from '@inference/core';
import { type BudgetGate, type BudgetHold, BudgetRefusal } from './budget.js';
import type { CoordinatorMsg, Router } from './dpCoordinatorActor.js';
import { Actor, type ActorRef, type Reply } from './kernel.js';
import type { Endpoint, MetricsMsg, MetricsRecorder, RequestMetricsMsg } from './metricsActor.js';
import { type ReplicaEntry, unassign } from './routing.js';
import { traceEmbedded, traceGenerated } from './requestTrace.js';

export interface RequestDeps {
  readonly coordinator: ActorRef<CoordinatorMsg>;
  readonly metrics: ActorRef<MetricsMsg>;
  /** The routing table read in place (localRouter: no mailbox hop per pick); absent: `coordinator` is asked. */
  readonly router?: Router | undefined;
  /** The metrics taken in place (localRecorder: no message per observation); absent: `metrics` is told. */
  readonly recorder?: MetricsRecorder | undefined;
  /** Replicas tried per deployment before giving up (first try included). */
  readonly maxAttempts?: number;
  /** A deployment's fallbacks and capacity policy (absent: no fallbacks). */
  readonly policyOf?: (deployment: string) => DeploymentPolicy | undefined;
  /** Budgets: each deployment tried reserves the request's estimate first (absent: no budgets). */
  readonly budget?: BudgetGate;
}

export interface DeploymentPolicy {
  readonly fallbacks: readonly string[];
  readonly onCapacityExhausted: CapacityPolicy;
  /** What the deployment's tokens cost (for the cost metric). */
  readonly price?: PriceSpec | undefined;
  /** The deployment's runtime (llama, openai, ...), named on its spans. */
  readonly runtime?: string | undefined;
}

/** Inter-token gaps a request buffers before it flushes them to the metrics. */
const MAX_GAPS = 1024;

/** Who sent the request (an API key, by name): its budget and the deployments it may use. */
export interface Principal {
  readonly name: string;
  /** Absent: every deployment. */
  readonly deployments?: readonly string[] | undefined;
}

/** `trace`: the request's span when tracing is on; the request adds its children and outcome, its creator ends it. */
export type RequestJob =
  | {
      kind: 'generate'; endpoint: Endpoint; req: GenerateRequest; sink: ChunkSink;
      onDeployment?: (deployment: string) => void;
      principal?: Principal | undefined;
      /** The client's back-pressure on the output (a streamed response), handed to the engine. */
      flow?: FlowSignal;
      trace?: TraceSpan | undefined;
    }
  | { kind: 'embed'; req: EmbeddingRequest; principal?: Principal | undefined; trace?: TraceSpan | undefined };

/** `deployment` is the one that served: the requested one or a fallback. */
export type RequestResult =
  | { kind: 'generate'; tokens: Tokens; replica: string; deployment: string }
  | { kind: 'embed'; result: EmbeddingResult; replica: string; deployment: string };

export type RequestMsg = { type: 'run'; reply: Reply<RequestResult> } | { type: 'cancel'; reason: string };

/** A replica of `deployment`, counted in its `assigned` (routing.ts): read in place where the table is local, else asked. */
function pick(deps: RequestDeps, deployment: string, exclude: ReadonlySet<string>, request: GenerateRequest | undefined): ReplicaEntry | Promise<ReplicaEntry> {
  if (deps.router !== undefined) return deps.router.pick(deployment, exclude, request);
  return deps.coordinator.ask<ReplicaEntry>((reply) => ({ type: 'pick', deployment, exclude, request, reply }), 10_000);
}

/**
 * Whether a failure before any output may be tried on another replica. Not a rate
 * limit or an open circuit: replicas of one deployment share both.
 */
function retryElsewhere(e: InferenceError): boolean {
  return e.retryable && e.kind !== 'rate_limited' && e.kind !== 'circuit_open';
}

/**
 * Whether a failure before any output sends the request to the next fallback:
 * transient failures (breaker open, retries spent, upstream down) always; a local
 * capacity refusal only when the deployment says `onCapacityExhausted: fallback`.
 */
export function fallBack(e: InferenceError, policy: CapacityPolicy): boolean {
  // A deployment's exhausted budget falls back only under its `budget.onExceeded: fallback`.
  if (e instanceof BudgetRefusal) return e.fallback;
  if (e.capacity) return policy === 'fallback';
  return e.retryable;
}

interface RunState {
  readonly t0: number;
  ttftMs: number | undefined;
  retries: number;
  counted: boolean;
  replicaId: string | undefined;
  emitted: boolean;
  /** The deployment being tried (the one that served, once it succeeded). */
  served: string | undefined;
  price: PriceSpec | undefined;
  /** When each choice's last chunk arrived (created with the first token), and the gaps between them (ms). */
  lastChunk: Map<number, number> | undefined;
  gaps: number[];
}

export class RequestActor extends Actor<RequestMsg> {
  private readonly abort = new Cancellation();
  private started = false;
  private finished = false;

  constructor(
    private readonly deps: RequestDeps,
    private readonly requestId: string,
    private readonly job: RequestJob,
  ) {
    super();
  }

  receive(m: RequestMsg): void {
    switch (m.type) {
      case 'run':
        if (this.started) {
          m.reply.reject(new InferenceError('internal', 'internal error', { diagnostic: 'request already running' }));
          return;
        }
        this.started = true;
        // Not awaited: the mailbox stays free for 'cancel' while the work runs.
        this.run().then(m.reply.resolve, m.reply.reject).finally(() => {
          this.finished = true;
          void this.context.self.stop();
        });
        return;
      case 'cancel':
        this.abort.abort(new InferenceError('internal', m.reason));
        return;
      default: {
        const never: never = m;
        throw new Error(`unknown message ${JSON.stringify(never)}`);
      }
    }
  }

  override postStop(): void {
    // Work still running when the actor stops (system shutdown) is cancelled.
    if (!this.finished && !this.abort.aborted) this.abort.abort(new InferenceError('internal', 'request ended'));
  }

  private async run(): Promise<RequestResult> {
    const job = this.job;
    const primary = job.req.model;
    const policy = this.deps.policyOf?.(primary);
    const chain = [primary, ...(policy?.fallbacks ?? [])];
    const st: RunState = {
      t0: performance.now(), ttftMs: undefined, retries: 0, counted: false, replicaId: undefined, emitted: false, served: undefined, price: undefined,
      lastChunk: undefined, gaps: [],
    };
    const endpoint: Endpoint = job.kind === 'generate' ? job.endpoint : 'embedding';
    let firstError: InferenceError | undefined;
    try {
      for (let i = 0; ; i++) {
        const deployment = chain[i] ?? primary;
        // One span per deployment tried: the requested one, then each fallback.
        const attrs = { 'inference.deployment': deployment, 'inference.fallback': i > 0 };
        const span = job.trace?.child(i === 0 ? `deployment ${deployment}` : `fallback ${deployment}`, attrs);
        try {
          const out = await this.runAllowed(deployment, primary, endpoint, st, span);
          if (job.trace !== undefined) this.traceOutcome(job.trace, out, st);
          span?.end();
          return out;
        } catch (e) {
          const err = toInferenceError(e);
          span?.fail(err);
          span?.end();
          // A fallback that no longer exists is skipped; the primary's failure is what the client hears.
          const missing = i > 0 && (err.kind === 'not_found' || err.kind === 'forbidden');
          firstError ??= err;
          const next = chain[i + 1];
          if (next === undefined || st.emitted || this.abort.aborted || (!missing && !fallBack(err, policy?.onCapacityExhausted ?? 'queue'))) {
            throw missing ? firstError : err;
          }
          this.observe({ type: 'fallback', deployment: primary, to: next });
        }
      }
    } catch (e) {
      const err = toInferenceError(e);
      job.trace?.fail(err);
      // A client that went away is not an error of the service.
      if (st.counted) this.finish(primary, endpoint, st, this.abort.aborted ? 'cancelled' : err.kind, undefined, undefined, err.message);
      throw err;
    }
  }

  /**
   * Checks the caller may use `deployment`, reserves the request's estimate on its
   * budgets (and the key's), runs it, and settles the reservation however it ends.
   */
  private async runAllowed(deployment: string, primary: string, endpoint: Endpoint, st: RunState, span: TraceSpan | undefined): Promise<RequestResult> {
    const principal = this.job.principal;
    if (principal?.deployments !== undefined && !principal.deployments.includes(deployment)) {
      throw new InferenceError('forbidden', `API key '${principal.name}' may not use deployment '${deployment}'`, { param: 'model' });
    }
    const gate = this.deps.budget;
    if (gate === undefined || !gate.covers(deployment, principal?.name)) return this.runOn(deployment, primary, endpoint, st, span);
    const hold: BudgetHold = await gate.reserve(deployment, principal?.name, this.job.req);
    try {
      const out = await this.runOn(deployment, primary, endpoint, st, span);
      hold.settle({ usage: out.kind === 'generate' ? out.tokens.usage : { promptTokens: out.result.promptTokens, completionTokens: 0 } });
      return out;
    } catch (e) {
      // Output already sent but no usage known: charged at the estimate.
      hold.settle(st.emitted ? 'estimate' : 'none');
      throw e;
    }
  }

  /** Tries `deployment` on up to maxAttempts of its replicas. */
  private async runOn(deployment: string, primary: string, endpoint: Endpoint, st: RunState, span: TraceSpan | undefined): Promise<RequestResult> {
    const exclude = new Set<string>();
    const maxAttempts = this.deps.maxAttempts ?? 2;
    let lastError: InferenceError | undefined;
    for (;;) {
      const routed = this.route(deployment, exclude, span, lastError);
      const replica = routed instanceof Promise ? await routed : routed;
      try {
        return await this.attempt(replica, deployment, primary, endpoint, st, span, exclude.size + 1);
      } catch (e) {
        const err = toInferenceError(e);
        if (st.emitted || this.abort.aborted || !retryElsewhere(err) || exclude.size + 1 >= maxAttempts) throw err;
        exclude.add(replica.id);
        lastError = err;
        st.retries++;
      } finally {
        // However the attempt ended, its pick is handed back once (routing.ts).
        unassign(replica);
      }
    }
  }

  /**
   * Picks a replica under a 'route' span. After a failure, no other replica to
   * try means that failure (`lastError`) stands.
   */
  private route(
    deployment: string, exclude: ReadonlySet<string>, span: TraceSpan | undefined, lastError: InferenceError | undefined,
  ): ReplicaEntry | Promise<ReplicaEntry> {
    const job = this.job;
    const request = job.kind === 'generate' ? job.req : undefined;
    const route = span?.child('route', { 'inference.deployment': deployment, 'inference.excluded': exclude.size });
    const failed = (e: unknown): never => {
      route?.fail(e);
      route?.end();
      throw lastError ?? e;
    };
    const picked = (replica: ReplicaEntry): ReplicaEntry => {
      route?.set({ 'inference.replica.id': replica.id });
      route?.end();
      return replica;
    };
    let out: ReplicaEntry | Promise<ReplicaEntry>;
    try {
      out = pick(this.deps, deployment, exclude, request);
    } catch (e) {
      return failed(e);
    }
    return out instanceof Promise ? out.then(picked, failed) : picked(out);
  }

  /** One try on `replica`: counts the request in flight (once), runs it, and books the outcome when it succeeds. */
  private async attempt(
    replica: ReplicaEntry, deployment: string, primary: string, endpoint: Endpoint, st: RunState, span: TraceSpan | undefined, n: number,
  ): Promise<RequestResult> {
    const job = this.job;
    // One span per replica tried; the runner hangs its queue wait, upstream calls or generation below it.
    const attempt = span?.child(`attempt ${deployment}`, { 'inference.replica.id': replica.id, 'inference.attempt': n });
    const ctx = this.runContext(attempt);
    st.replicaId = replica.id;
    st.served = deployment;
    st.price = this.deps.policyOf?.(deployment)?.price;
    // In flight only once the metrics took 'started' (a full mailbox drops it):
    // then 'finished' balances it, past the bound (kernel.ts, `deliver`).
    if (!st.counted) st.counted = this.observe({ type: 'started', deployment: primary });
    const runner: ModelRunner = replica.runner;
    try {
      if (job.kind === 'embed') {
        const result = await runner.embed(deployment === primary ? job.req : { ...job.req, model: deployment }, ctx);
        attempt?.end();
        this.finish(primary, endpoint, st, undefined, result.promptTokens);
        return { kind: 'embed', result, replica: replica.id, deployment };
      }
      job.onDeployment?.(deployment);
      const req = deployment === primary ? job.req : { ...job.req, model: deployment };
      const tokens = await runner.generate(req, ctx, this.chunkSink(job.sink, primary, st));
      attempt?.end();
      this.finish(primary, endpoint, st, undefined, undefined, tokens);
      return { kind: 'generate', tokens, replica: replica.id, deployment };
    } catch (e) {
      const err = toInferenceError(e);
      attempt?.fail(err);
      attempt?.end();
      throw err;
    }
  }

  /** What the runner gets: the request id, the cancellation, the client's flow, and the attempt's span when traced. */
  private runContext(attempt: TraceSpan | undefined): RunContext {
    const job = this.job;
    const flow = job.kind === 'generate' ? job.flow : undefined;
    const ctx: RunContext = flow === undefined ? { requestId: this.requestId, signal: this.abort } : { requestId: this.requestId, signal: this.abort, flow };
    return attempt === undefined ? ctx : { ...ctx, trace: attempt };
  }

  /** The client's sink, measuring on the way the time to the first chunk and the gaps between a choice's chunks. */
  private chunkSink(sink: ChunkSink, primary: string, st: RunState): ChunkSink {
    return (c) => {
      const now = performance.now();
      if (!st.emitted) {
        st.emitted = true;
        st.ttftMs = now - st.t0;
      }
      if (c.tokens > 0) this.gap(c.index, now, primary, st);
      sink(c);
    };
  }

  /** Buffers the gap since the choice's previous chunk; a full buffer goes to the metrics at once. */
  private gap(index: number, now: number, primary: string, st: RunState): void {
    const last = (st.lastChunk ??= new Map<number, number>());
    const prev = last.get(index);
    last.set(index, now);
    if (prev !== undefined && st.gaps.push(now - prev) >= MAX_GAPS) {
      this.observe({ type: 'interToken', deployment: primary, gapsMs: st.gaps });
      st.gaps = [];
    }
  }

  /** One observation to the metrics: in place where they are local, else by message. */
  private observe(m: RequestMetricsMsg): boolean {
    const recorder = this.deps.recorder;
    return recorder === undefined ? this.deps.metrics.tell(m) : recorder.record(m);
  }

  private traceOutcome(span: TraceSpan, out: RequestResult, st: RunState): void {
    const runtime = this.deps.policyOf?.(out.deployment)?.runtime;
    if (out.kind === 'generate') traceGenerated(span, out.deployment, runtime, out.tokens, st.retries, st.ttftMs);
    else traceEmbedded(span, out.deployment, runtime, out.result.promptTokens, st.retries);
  }

  private finish(
    deployment: string, endpoint: Endpoint, st: RunState, error?: ErrorKind | 'cancelled', embedTokens?: number, tokens?: Tokens, errorMessage?: string,
  ): void {
    const msg: MetricsMsg = { type: 'finished', deployment, endpoint, durationMs: performance.now() - st.t0, retries: st.retries };
    if (st.replicaId !== undefined) msg.replica = st.replicaId;
    if (st.served !== undefined) msg.served = st.served;
    if (st.price !== undefined) msg.price = st.price;
    if (st.gaps.length > 0) msg.interTokenMs = st.gaps;
    if (error === 'cancelled') msg.cancelled = true;
    else if (error !== undefined) {
      msg.error = error;
      if (errorMessage !== undefined) msg.errorMessage = errorMessage;
    }
    if (st.ttftMs !== undefined) msg.ttftMs = st.ttftMs;
    if (tokens !== undefined) msg.usage = tokens.usage;
    if (embedTokens !== undefined) msg.usage = { promptTokens: embedTokens, completionTokens: 0 };
    if (!st.counted) return;
    if (this.deps.recorder === undefined) this.deps.metrics.deliver(msg);
    else this.deps.recorder.record(msg);
  }
}
