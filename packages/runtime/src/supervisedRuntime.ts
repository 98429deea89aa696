// A runtime of one's own with the built-in runtimes' supervision: the user
// describes a resource (a client, a model in memory, a session) and how to run a
// request on it; each replica gets a WorkerActor that owns the resource in a
// restartable context. A failure the decider answers with Restart (by default
// any error that is not an InferenceError: a crash of the user's code) replaces
// the resource within the restart budget and is counted as a restart; when the
// budget is spent the replica is failed and the manager places a new one
// (docs/architecture.md, "Pluggable runtimes").

import type { ReplicaEvents } from '@inference/actors';
import {
  type ChunkSink, type DeploymentSpec, type EmbeddingRequest, type EmbeddingResult, type GenerateRequest, InferenceError, type ModelRunner,
  type ReplicaLoad, type RunContext, type Tokens, toInferenceError,
} from '@inference/core';
import { DEFAULT_STRATEGY, type Decider, WorkerActor, WorkerHandle, type WorkerMsg } from '@inference/supervision';
import type { RuntimeFactory } from './replicaFactories.js';

export interface RunnerDefinition<R> {
  /** Opens a replica's resource; called again (with the next generation) after a restart. Throws to fail. */
  open(spec: DeploymentSpec, generation: number): Promise<R>;
  close?(resource: R): Promise<void>;
  generate(resource: R, req: GenerateRequest, ctx: RunContext, sink: ChunkSink): Promise<Tokens>;
  /** Absent: embeddings are refused with `invalid_request` naming `model`. */
  readonly embed?: (resource: R, req: EmbeddingRequest, ctx: RunContext) => Promise<EmbeddingResult>;
  /** Requests one replica runs at once; more are refused as `overloaded` (default 16). */
  readonly capacity?: number;
  /** Which failures replace the resource (default: errors that are not InferenceErrors restart). */
  readonly decider?: Decider;
  /** Restart budget (default: 3 within 60 s). */
  readonly restarts?: { readonly maxRestarts: number; readonly windowMs: number };
}

/** InferenceErrors are one request's outcome; anything else thrown is a fault of the resource. */
export const customRunnerDecider: Decider = (e) => (e instanceof InferenceError ? 'Resume' : 'Restart');

const reasonOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));

class SupervisedRunner<R> implements ModelRunner {
  private active = 0;
  private stopped = false;

  constructor(
    readonly id: string,
    readonly deployment: string,
    private readonly def: RunnerDefinition<R>,
    private readonly worker: WorkerHandle<R>,
    private readonly state: () => string,
  ) {}

  private async run<T>(fn: (resource: R) => Promise<T>, retry: () => boolean): Promise<T> {
    if (this.active >= (this.def.capacity ?? 16)) throw new InferenceError('overloaded', 'replica is at capacity, try again', { retryAfterMs: 1000 });
    this.active++;
    try {
      return await this.worker.withContext(fn, retry);
    } catch (e) {
      throw toInferenceError(e);
    } finally {
      this.active--;
    }
  }

  generate(req: GenerateRequest, ctx: RunContext, sink: ChunkSink): Promise<Tokens> {
    let emitted = false;
    const counted: ChunkSink = (c) => {
      emitted = true;
      sink(c);
    };
    // After a restart the request runs once more on the new resource, unless output already went out.
    return this.run((r) => this.def.generate(r, req, ctx, counted), () => !emitted);
  }

  embed(req: EmbeddingRequest, ctx: RunContext): Promise<EmbeddingResult> {
    const embed = this.def.embed;
    if (embed === undefined) return Promise.reject(new InferenceError('invalid_request', `deployment '${this.deployment}' does not serve embeddings`, { param: 'model' }));
    return this.run((r) => embed(r, req, ctx), () => true);
  }

  load(): ReplicaLoad {
    return { outstanding: this.active, queued: 0, capacity: this.def.capacity ?? 16 };
  }

  healthy(): boolean {
    return !this.stopped && this.worker.ref.alive && this.state() !== 'failed';
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.worker.ref.stop();
  }
}

/**
 * Turns a runner definition into a runtime factory for `createRuntime({ runtimes })`.
 * A replica is ready once its first resource opened.
 */
export function supervisedRuntime<R>(def: RunnerDefinition<R>): RuntimeFactory {
  const decider = def.decider ?? customRunnerDecider;
  const budget = def.restarts ?? DEFAULT_STRATEGY;
  return ({ spec, replicaId, events, system, actorName }) => {
    const reporting = (ev: ReplicaEvents) => ({
      onRestart: (e: unknown) => { ev.restarted(reasonOf(e)); },
      onFailed: (_e: unknown, reason: string) => { ev.failed(reason); },
    });
    const worker = new WorkerActor<R>({
      open: (generation) => def.open(spec, generation),
      close: (r) => def.close?.(r) ?? Promise.resolve(),
    }, decider, budget, reporting(events));
    const ref = system.spawn<WorkerMsg<R>>(actorName, () => worker, { mailbox: 4096 });
    const handle = new WorkerHandle<R>(ref, decider);
    const runner = new SupervisedRunner(replicaId, spec.name, def, handle, () => worker.state);
    const ready = ref.started().then(async () => { await handle.context(); });
    return { runner, ready };
  };
}
