// RequestRun: one request, a plain object owned by whoever started it (the
// gateway). It routes (picks a replica), reserves the request's budgets,
// dispatches to the replica's runner, measures the time to the first chunk and
// the gaps between a choice's chunks while the sink streams them, and cancels the
// work when told (the client went away, the owner stops). A failure before the
// first chunk reached the client is retried once on another replica, then the
// deployment's `fallbacks` are tried in order (each with the same replica retry);
// after the first chunk, nothing is retried (the client already has partial output).
//
// Not an actor, and not a chain of async functions: each step continues the last
// with `.then`, so a run with no budget on its deployment, a synchronous pick and
// no fallback waits on one promise only, the runner's (docs/architecture.md, "The
// request lifecycle", says what a spawned actor, its mailbox and the nested async
// functions cost per request and per idle stream).
//
// Invariants: every pick is handed back exactly once (`unassign`), every budget
// hold is settled exactly once, 'finished' balances 'started' exactly when
// 'started' was counted, and a run leaves its owner's `live` set exactly once,
// when it settles.

import {
  Cancellation, type ChunkSink, type EmbeddingResult, type ErrorKind, InferenceError, type RunContext, type Tokens, type TraceSpan, toInferenceError,
} from '@inference/core';
import type { BudgetHold } from './budget.js';
import type { Endpoint, MetricsMsg, RequestMetricsMsg } from './metricsActor.js';
import { type DeploymentPolicy, type RequestDeps, type RequestJob, type RequestResult, fallBack, retryElsewhere } from './requestJob.js';
import { traceEmbedded, traceGenerated } from './requestTrace.js';
import { type ReplicaEntry, unassign } from './routing.js';

/** Inter-token gaps a request buffers before it flushes them to the metrics. */
const MAX_GAPS = 1024;

type Phase = 'new' | 'running' | 'settled';

export class RequestRun {
  private readonly abort = new Cancellation();
  private phase: Phase = 'new';
  private readonly primary: string;
  /** The requested deployment's policy: its fallbacks and capacity policy rule the whole run. */
  private policy: DeploymentPolicy | undefined;
  /** The deployment being tried (the one that served, once it succeeded) and its place in [primary, ...fallbacks]. */
  private deployment: string;
  private index = 0;
  /** The first deployment's failure: what the client hears when a fallback turns out not to exist. */
  private firstError: InferenceError | undefined;
  /** The deployment's span, its budget hold, the replicas it already failed on, and the last of those failures. */
  private span: TraceSpan | undefined;
  private hold: BudgetHold | undefined;
  private exclude: Set<string> | undefined;
  private lastError: InferenceError | undefined;
  /** The span of the attempt in progress. */
  private attemptSpan: TraceSpan | undefined;
  /** What the metrics get. `replicaId`, `served` and `price`: those of the last attempt. */
  private t0 = 0;
  private ttftMs: number | undefined;
  private retries = 0;
  private counted = false;
  private emitted = false;
  private replicaId: string | undefined;
  private served: string | undefined;
  private price: DeploymentPolicy['price'];
  /**
   * When each choice's last chunk arrived: choice 0 in a field (most requests have one
   * choice), any other in a map made with its first chunk; and the gaps between them (ms) not yet flushed.
   */
  private lastChunk0: number | undefined;
  private lastChunk: Map<number, number> | undefined;
  private gaps: number[] | undefined;
  /** The client's sink wrapped to measure (made with the first attempt of a generate job). */
  private sink: ChunkSink | undefined;

  constructor(
    private readonly deps: RequestDeps,
    private readonly requestId: string,
    private readonly job: RequestJob,
  ) {
    this.primary = job.req.model;
    this.deployment = this.primary;
  }

  /** Runs the request, once: a second call, or a call after `cancel`, is refused. */
  run(): Promise<RequestResult> {
    if (this.phase !== 'new') return Promise.reject(new InferenceError('internal', 'internal error', { diagnostic: 'request already running' }));
    if (this.abort.aborted) {
      this.phase = 'settled';
      return Promise.reject(toInferenceError(this.abort.reason));
    }
    this.phase = 'running';
    this.t0 = performance.now();
    this.deps.live?.add(this);
    try {
      this.policy = this.deps.policyOf?.(this.primary);
      return this.tryDeployment();
    } catch (e) {
      return Promise.reject(this.failure(e));
    }
  }

  /** Cancels the work (down to the engine or the upstream call); the run then fails. Nothing once it settled. */
  cancel(reason: string): void {
    if (this.phase === 'settled' || this.abort.aborted) return;
    this.abort.abort(new InferenceError('internal', reason));
  }

  // Each step below returns the run's remaining promise, or throws (synchronously, or
  // from inside a `.then` callback: a rejection) what the client hears once the run
  // has failed for good (`failure`).

  /** Checks the caller may use the deployment, reserves the request's estimate on its budgets (and the key's), runs it. */
  private tryDeployment(): Promise<RequestResult> {
    const deployment = this.deployment;
    const trace = this.job.trace;
    if (trace !== undefined) {
      // One span per deployment tried: the requested one, then each fallback.
      const fallback = this.index > 0;
      const attrs = { 'inference.deployment': deployment, 'inference.fallback': fallback };
      this.span = trace.child(fallback ? `fallback ${deployment}` : `deployment ${deployment}`, attrs);
    }
    const principal = this.job.principal;
    if (principal?.deployments !== undefined && !principal.deployments.includes(deployment)) {
      return this.deploymentFailed(new InferenceError('forbidden', `API key '${principal.name}' may not use deployment '${deployment}'`, { param: 'model' }));
    }
    const gate = this.deps.budget;
    if (gate === undefined || !gate.covers(deployment, principal?.name)) return this.tryReplica();
    return gate.reserve(deployment, principal?.name, this.job.req).then((hold) => {
      this.hold = hold;
      return this.tryReplica();
    }, (e: unknown) => this.deploymentFailed(e));
  }

  /** Picks a replica of the deployment under a 'route' span (in place where the table is local, else asked) and tries it. */
  private tryReplica(): Promise<RequestResult> {
    const deployment = this.deployment;
    const exclude = this.exclude;
    const job = this.job;
    const request = job.kind === 'generate' ? job.req : undefined;
    const route = this.span?.child('route', { 'inference.deployment': deployment, 'inference.excluded': exclude?.size ?? 0 });
    const router = this.deps.router;
    let picked: ReplicaEntry | Promise<ReplicaEntry>;
    try {
      picked = router !== undefined
        ? router.pick(deployment, exclude, request)
        : this.deps.coordinator.ask<ReplicaEntry>((reply) => ({ type: 'pick', deployment, exclude, request, reply }), 10_000);
    } catch (e) {
      return this.routeFailed(e, route);
    }
    if (picked instanceof Promise) return picked.then((r) => this.attempt(r, route), (e: unknown) => this.routeFailed(e, route));
    return this.attempt(picked, route);
  }

  /** No replica to try: after a failure on one, that failure (`lastError`) stands. */
  private routeFailed(e: unknown, route: TraceSpan | undefined): Promise<RequestResult> {
    route?.fail(e);
    route?.end();
    return this.leaveDeployment(this.lastError ?? e);
  }

  /** One try on `replica`: counts the request in flight (once) and runs it. */
  private attempt(replica: ReplicaEntry, route: TraceSpan | undefined): Promise<RequestResult> {
    if (route !== undefined) {
      route.set({ 'inference.replica.id': replica.id });
      route.end();
    }
    const deployment = this.deployment;
    const primary = this.primary;
    this.replicaId = replica.id;
    // One span per replica tried; the runner hangs its queue wait, upstream calls or generation below it.
    const attempt = this.span?.child(`attempt ${deployment}`, { 'inference.replica.id': replica.id, 'inference.attempt': (this.exclude?.size ?? 0) + 1 });
    this.attemptSpan = attempt;
    this.served = deployment;
    this.price = (deployment === primary ? this.policy : this.deps.policyOf?.(deployment))?.price;
    // In flight only once the metrics took 'started' (a full mailbox drops it):
    // then 'finished' balances it, past the bound (kernel.ts, `deliver`).
    if (!this.counted) this.counted = this.observe({ type: 'started', deployment: primary });
    const ctx = this.runContext(attempt);
    const job = this.job;
    try {
      if (job.kind === 'embed') {
        const req = deployment === primary ? job.req : { ...job.req, model: deployment };
        return replica.runner.embed(req, ctx).then((result) => this.embedded(result, replica), (e: unknown) => this.attemptFailed(e, replica));
      }
      job.onDeployment?.(deployment);
      const req = deployment === primary ? job.req : { ...job.req, model: deployment };
      const sink = (this.sink ??= this.measured(job.sink));
      return replica.runner.generate(req, ctx, sink).then((tokens) => this.generated(tokens, replica), (e: unknown) => this.attemptFailed(e, replica));
    } catch (e) {
      // A runner that throws instead of rejecting fails the attempt the same way.
      return this.attemptFailed(e, replica);
    }
  }

  /** The attempt failed: another replica of the deployment while the failure allows, else the next deployment. */
  private attemptFailed(e: unknown, replica: ReplicaEntry): Promise<RequestResult> {
    const err = toInferenceError(e);
    const attempt = this.attemptSpan;
    if (attempt !== undefined) {
      attempt.fail(err);
      attempt.end();
      this.attemptSpan = undefined;
    }
    const tried = (this.exclude?.size ?? 0) + 1;
    // However the attempt ended, its pick is handed back once (routing.ts).
    unassign(replica);
    if (this.emitted || this.abort.aborted || !retryElsewhere(err) || tried >= (this.deps.maxAttempts ?? 2)) return this.leaveDeployment(err);
    (this.exclude ??= new Set<string>()).add(replica.id);
    this.lastError = err;
    this.retries++;
    return this.tryReplica();
  }

  /** Gives up on the deployment: settles its reservation (output already sent but no usage known: the estimate is charged). */
  private leaveDeployment(e: unknown): Promise<RequestResult> {
    const hold = this.hold;
    if (hold !== undefined) {
      this.hold = undefined;
      hold.settle(this.emitted ? 'estimate' : 'none');
    }
    return this.deploymentFailed(e);
  }

  /** The deployment failed: the next fallback where the failure allows, else the run fails. */
  private deploymentFailed(e: unknown): Promise<RequestResult> {
    const err = toInferenceError(e);
    const span = this.span;
    if (span !== undefined) {
      span.fail(err);
      span.end();
      this.span = undefined;
    }
    const i = this.index;
    // A fallback that no longer exists is skipped; the primary's failure is what the client hears.
    const missing = i > 0 && (err.kind === 'not_found' || err.kind === 'forbidden');
    const first = (this.firstError ??= err);
    const policy = this.policy;
    const next = policy?.fallbacks[i];
    if (next === undefined || this.emitted || this.abort.aborted || (!missing && !fallBack(err, policy?.onCapacityExhausted ?? 'queue'))) {
      throw this.failure(missing ? first : err);
    }
    this.observe({ type: 'fallback', deployment: this.primary, to: next });
    this.index = i + 1;
    this.deployment = next;
    this.exclude = undefined;
    this.lastError = undefined;
    return this.tryDeployment();
  }

  /** Ends a failed run (once): the request span and the metrics learn how; returns what the client hears. */
  private failure(e: unknown): InferenceError {
    const err = toInferenceError(e);
    if (this.phase !== 'running') return err;
    this.settle();
    this.job.trace?.fail(err);
    // A client that went away is not an error of the service.
    this.finish(this.abort.aborted ? 'cancelled' : err.kind, undefined, undefined, err.message);
    return err;
  }

  private generated(tokens: Tokens, replica: ReplicaEntry): RequestResult {
    this.attemptSpan?.end();
    this.finish(undefined, undefined, tokens);
    return this.succeeded({ kind: 'generate', tokens, replica: replica.id, deployment: this.deployment }, replica, tokens.usage);
  }

  private embedded(result: EmbeddingResult, replica: ReplicaEntry): RequestResult {
    this.attemptSpan?.end();
    this.finish(undefined, result.promptTokens);
    const out: RequestResult = { kind: 'embed', result, replica: replica.id, deployment: this.deployment };
    return this.succeeded(out, replica, { promptTokens: result.promptTokens, completionTokens: 0 });
  }

  /** Hands the pick back, settles the reservation with the real usage, and ends the spans. */
  private succeeded(out: RequestResult, replica: ReplicaEntry, usage: Tokens['usage']): RequestResult {
    unassign(replica);
    this.settle();
    const hold = this.hold;
    if (hold !== undefined) {
      this.hold = undefined;
      hold.settle({ usage });
    }
    const trace = this.job.trace;
    if (trace !== undefined) {
      const runtime = this.deps.policyOf?.(out.deployment)?.runtime;
      if (out.kind === 'generate') traceGenerated(trace, out.deployment, runtime, out.tokens, this.retries, this.ttftMs);
      else traceEmbedded(trace, out.deployment, runtime, out.result.promptTokens, this.retries);
    }
    this.span?.end();
    this.span = undefined;
    return out;
  }

  private settle(): void {
    this.phase = 'settled';
    this.deps.live?.delete(this);
  }

  /** What the runner gets: the request id, the cancellation, the client's flow, and the attempt's span when traced. */
  private runContext(attempt: TraceSpan | undefined): RunContext {
    const job = this.job;
    const flow = job.kind === 'generate' ? job.flow : undefined;
    const ctx: RunContext = flow === undefined ? { requestId: this.requestId, signal: this.abort } : { requestId: this.requestId, signal: this.abort, flow };
    return attempt === undefined ? ctx : { ...ctx, trace: attempt };
  }

  /** The client's sink, measuring on the way the time to the first chunk and the gaps between a choice's chunks. */
  private measured(sink: ChunkSink): ChunkSink {
    return (c) => {
      const now = performance.now();
      if (!this.emitted) {
        this.emitted = true;
        this.ttftMs = now - this.t0;
      }
      if (c.tokens > 0) this.gap(c.index, now);
      sink(c);
    };
  }

  /** Buffers the gap since the choice's previous chunk; a full buffer goes to the metrics at once. */
  private gap(index: number, now: number): void {
    let prev: number | undefined;
    if (index === 0) {
      prev = this.lastChunk0;
      this.lastChunk0 = now;
    } else {
      const last = (this.lastChunk ??= new Map<number, number>());
      prev = last.get(index);
      last.set(index, now);
    }
    if (prev === undefined) return;
    const gaps = (this.gaps ??= []);
    if (gaps.push(now - prev) >= MAX_GAPS) {
      this.observe({ type: 'interToken', deployment: this.primary, gapsMs: gaps });
      this.gaps = undefined;
    }
  }

  /** One observation to the metrics: in place where they are local, else by message. */
  private observe(m: RequestMetricsMsg): boolean {
    const recorder = this.deps.recorder;
    return recorder === undefined ? this.deps.metrics.tell(m) : recorder.record(m);
  }

  /** 'finished', when 'started' was counted: the outcome, the usage, the timings and what the request cost. */
  private finish(error: ErrorKind | 'cancelled' | undefined, embedTokens?: number, tokens?: Tokens, errorMessage?: string): void {
    if (!this.counted) return;
    const endpoint: Endpoint = this.job.kind === 'generate' ? this.job.endpoint : 'embedding';
    const msg: MetricsMsg = { type: 'finished', deployment: this.primary, endpoint, durationMs: performance.now() - this.t0, retries: this.retries };
    if (this.replicaId !== undefined) msg.replica = this.replicaId;
    if (this.served !== undefined) msg.served = this.served;
    if (this.price !== undefined) msg.price = this.price;
    if (this.gaps !== undefined && this.gaps.length > 0) msg.interTokenMs = this.gaps;
    if (error === 'cancelled') msg.cancelled = true;
    else if (error !== undefined) {
      msg.error = error;
      if (errorMessage !== undefined) msg.errorMessage = errorMessage;
    }
    if (this.ttftMs !== undefined) msg.ttftMs = this.ttftMs;
    if (tokens !== undefined) msg.usage = tokens.usage;
    if (embedTokens !== undefined) msg.usage = { promptTokens: embedTokens, completionTokens: 0 };
    if (this.deps.recorder === undefined) this.deps.metrics.deliver(msg);
    else this.deps.recorder.record(msg);
  }
}
