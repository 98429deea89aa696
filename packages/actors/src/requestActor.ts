// RequestActor: one per request. It routes (asks the coordinator for a replica),
// dispatches to the replica's runner, aggregates chunks into Tokens while the sink
// streams them, and cancels the work when the client goes away. A failure before
// the first chunk reached the client is retried once on another replica; after
// the first chunk, nothing is retried (the client already has partial output).

import {
  type ChunkSink, type EmbeddingRequest, type EmbeddingResult, type ErrorKind, type GenerateRequest, InferenceError,
  type ModelRunner, type RunContext, type Tokens, toInferenceError,
} from '@inference/core';
import type { CoordinatorMsg } from './dpCoordinatorActor.js';
import { Actor, type ActorRef, type Reply } from './kernel.js';
import type { Endpoint, MetricsMsg } from './metricsActor.js';
import type { ReplicaEntry } from './routing.js';

export interface RequestDeps {
  readonly coordinator: ActorRef<CoordinatorMsg>;
  readonly metrics: ActorRef<MetricsMsg>;
  /** Replicas tried per request before giving up (first try included). */
  readonly maxAttempts?: number;
}

export type RequestJob =
  | { kind: 'generate'; endpoint: Endpoint; req: GenerateRequest; sink: ChunkSink }
  | { kind: 'embed'; req: EmbeddingRequest };

export type RequestResult =
  | { kind: 'generate'; tokens: Tokens; replica: string }
  | { kind: 'embed'; result: EmbeddingResult; replica: string };

export type RequestMsg = { type: 'run'; reply: Reply<RequestResult> } | { type: 'cancel'; reason: string };

function pick(deps: RequestDeps, deployment: string, exclude: ReadonlySet<string>): Promise<ReplicaEntry> {
  return deps.coordinator.ask<ReplicaEntry>((reply) => ({ type: 'pick', deployment, exclude, reply }), 10_000);
}

/** Whether a failure before any output may be tried on another replica. */
function retryElsewhere(e: InferenceError): boolean {
  return e.retryable && e.kind !== 'rate_limited';
}

export class RequestActor extends Actor<RequestMsg> {
  private readonly abort = new AbortController();
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
    if (!this.finished && !this.abort.signal.aborted) this.abort.abort(new InferenceError('internal', 'request ended'));
  }

  private async run(): Promise<RequestResult> {
    const job = this.job;
    const deployment = job.req.model;
    const t0 = performance.now();
    let ttftMs: number | undefined;
    let retries = 0;
    let counted = false;
    let replicaId: string | undefined;
    const ctx: RunContext = { requestId: this.requestId, signal: this.abort.signal };
    const exclude = new Set<string>();
    const maxAttempts = this.deps.maxAttempts ?? 2;
    const endpoint: Endpoint = job.kind === 'generate' ? job.endpoint : 'embedding';
    let lastError: InferenceError | undefined;
    try {
      for (;;) {
        // After a failure, no other replica to try means the failure stands.
        const replica = await pick(this.deps, deployment, exclude).catch((e: unknown) => {
          throw lastError ?? e;
        });
        replicaId = replica.id;
        if (!counted) {
          counted = true;
          this.deps.metrics.tell({ type: 'started', deployment });
        }
        const runner: ModelRunner = replica.runner;
        let emitted = false;
        const release = (): void => {
          this.deps.coordinator.tell({ type: 'release', replicaId: replica.id });
        };
        try {
          if (job.kind === 'embed') {
            const result = await runner.embed(job.req, ctx).finally(release);
            this.finish(deployment, endpoint, t0, undefined, retries, undefined, result.promptTokens, undefined, replica.id);
            return { kind: 'embed', result, replica: replica.id };
          }
          const sink: ChunkSink = (c) => {
            if (!emitted) {
              emitted = true;
              ttftMs = performance.now() - t0;
            }
            job.sink(c);
          };
          const tokens = await runner.generate(job.req, ctx, sink).finally(release);
          this.finish(deployment, endpoint, t0, ttftMs, retries, undefined, undefined, tokens, replica.id);
          return { kind: 'generate', tokens, replica: replica.id };
        } catch (e) {
          const err = toInferenceError(e);
          if (emitted || this.abort.signal.aborted || !retryElsewhere(err) || exclude.size + 1 >= maxAttempts) throw err;
          exclude.add(replica.id);
          lastError = err;
          retries++;
        }
      }
    } catch (e) {
      const err = toInferenceError(e);
      // A client that went away is not an error of the service.
      if (counted) this.finish(deployment, endpoint, t0, ttftMs, retries, this.abort.signal.aborted ? 'cancelled' : err.kind, undefined, undefined, replicaId);
      throw err;
    }
  }

  private finish(deployment: string, endpoint: Endpoint, t0: number, ttftMs: number | undefined, retries: number, error?: ErrorKind | 'cancelled', embedTokens?: number, tokens?: Tokens, replica?: string): void {
    const msg: MetricsMsg = { type: 'finished', deployment, endpoint, durationMs: performance.now() - t0, retries };
    if (replica !== undefined) msg.replica = replica;
    if (error === 'cancelled') msg.cancelled = true;
    else if (error !== undefined) msg.error = error;
    if (ttftMs !== undefined) msg.ttftMs = ttftMs;
    if (tokens !== undefined) msg.usage = tokens.usage;
    if (embedTokens !== undefined) msg.usage = { promptTokens: embedTokens, completionTokens: 0 };
    this.deps.metrics.tell(msg);
  }
}
