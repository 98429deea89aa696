// Two-tier supervision. The WorkerActor is stable and long-lived; it supervises a
// ContextActor that owns a fragile resource (an engine host process, an HTTP
// session with its credentials). A failure the decider maps to Restart replaces
// the context (within the restart budget); when the budget is spent the worker is
// Failed and says so once through `onFailed`. Callers use `withContext`, which
// retries once on a fresh context when the failure asked for a restart.

import { InferenceError } from '@inference/core';
import { Actor, type ActorRef, type Reply } from '@inference/actors';
import { type Decider, type Decision, RestartWindow } from './strategy.js';

export interface ContextResource<R> {
  /** Opens the resource (spawns the host, builds the session). Throws to fail. */
  open(generation: number): Promise<R>;
  close(resource: R): Promise<void>;
}

type ContextMsg<R> = { type: 'get'; reply: Reply<R> };

class ContextActor<R> extends Actor<ContextMsg<R>> {
  private resource: R | undefined;

  constructor(
    private readonly factory: ContextResource<R>,
    private readonly generation: number,
    private readonly onOpenError: (error: unknown) => void,
  ) {
    super();
  }

  override async preStart(): Promise<void> {
    try {
      this.resource = await this.factory.open(this.generation);
    } catch (e) {
      this.onOpenError(e);
      throw e;
    }
  }

  override async postStop(): Promise<void> {
    const r = this.resource;
    this.resource = undefined;
    if (r !== undefined) await this.factory.close(r);
  }

  /** Faults go to the worker (WorkerMsg 'fault'), which replaces this context; it only hands out the resource. */
  receive(m: ContextMsg<R>): void {
    switch (m.type) {
      case 'get':
        if (this.resource === undefined) m.reply.reject(new InferenceError('engine_unavailable', 'engine is not available'));
        else m.reply.resolve(this.resource);
        return;
      default: {
        const never: never = m.type;
        throw new Error(`unknown message ${String(never)}`);
      }
    }
  }
}

export type WorkerState = 'starting' | 'serving' | 'restarting' | 'failed' | 'stopped';

export type WorkerMsg<R> =
  | { type: 'context'; reply: Reply<{ resource: R; generation: number }> }
  | { type: 'fault'; error: unknown; generation: number; opening?: boolean };

export interface WorkerEvents {
  onRestart?(error: unknown, restarts: number): void;
  onFailed?(error: unknown, reason: string): void;
}

export class WorkerActor<R> extends Actor<WorkerMsg<R>> {
  private generation = 0;
  private ctx: ActorRef<ContextMsg<R>> | undefined;
  /** Why the context of a generation could not open, for callers waiting on it. */
  private openError: { generation: number; error: unknown } | undefined;
  private readonly window: RestartWindow;
  state: WorkerState = 'starting';
  restarts = 0;

  constructor(
    private readonly factory: ContextResource<R>,
    private readonly decider: Decider,
    budget: { maxRestarts: number; windowMs: number },
    private readonly events: WorkerEvents = {},
  ) {
    super();
    this.window = new RestartWindow(budget.maxRestarts, budget.windowMs);
  }

  override preStart(): void {
    this.spawnContext();
  }

  private spawnContext(): void {
    const generation = ++this.generation;
    const name = `context-${generation}`;
    // Context failures are decided here, by message, not by the kernel: the worker
    // answers every failure with a new generation, so a late fault of an old one
    // can never restart a healthy context.
    const self = this.context.self;
    const onOpenError = (error: unknown): void => {
      this.openError = { generation, error };
      self.tell({ type: 'fault', error, generation, opening: true });
    };
    this.ctx = this.context.spawn(name, () => new ContextActor(this.factory, generation, onOpenError), { mailbox: 4096 });
    this.ctx.started().then(
      () => {
        if (this.generation === generation && this.state !== 'failed' && this.state !== 'stopped') this.state = 'serving';
      },
      () => undefined,
    );
  }

  receive(m: WorkerMsg<R>): Promise<void> | void {
    switch (m.type) {
      case 'context':
        return this.getContext(m.reply);
      case 'fault':
        this.onFault(m.error, m.generation, m.opening === true);
        return;
      default: {
        const never: never = m;
        throw new Error(`unknown message ${JSON.stringify(never)}`);
      }
    }
  }

  private async getContext(reply: Reply<{ resource: R; generation: number }>): Promise<void> {
    const ctx = this.ctx;
    if (ctx === undefined || this.state === 'failed' || this.state === 'stopped') {
      reply.reject(new InferenceError('engine_unavailable', 'replica has failed', { diagnostic: `worker ${this.context.name} is ${this.state}` }));
      return;
    }
    const generation = this.generation;
    // Wait outside the mailbox: a context still loading must not block faults.
    ctx.started().then(
      () => {
        // started() settles after preStart even when it threw: say why it failed.
        if (this.openError?.generation === generation) {
          reply.reject(this.openError.error);
          return;
        }
        ctx.ask<R>((r) => ({ type: 'get', reply: r }), 30_000).then((resource) => { reply.resolve({ resource, generation }); }, reply.reject);
      },
      reply.reject,
    );
    return Promise.resolve();
  }

  private onFault(error: unknown, generation: number, opening: boolean): void {
    if (generation !== this.generation || this.state === 'failed' || this.state === 'stopped') return;
    let decision: Decision = this.decider(error);
    // A context that cannot even open is not resumable: restart it or give up.
    if (opening && decision !== 'Restart') decision = 'Stop';
    switch (decision) {
      case 'Resume':
        return;
      case 'Restart': {
        const old = this.ctx;
        if (!this.window.tryRestart()) {
          this.fail(error, `restart budget spent (${this.window.maxRestarts} within ${this.window.windowMs / 1000} s)`);
          return;
        }
        this.restarts++;
        this.state = 'restarting';
        if (old !== undefined) void old.stop();
        this.spawnContext();
        this.events.onRestart?.(error, this.restarts);
        return;
      }
      case 'Stop':
        this.fail(error, `${opening ? 'failed to open' : 'unrecoverable failure'}: ${error instanceof Error ? error.message : String(error)}`);
        return;
      case 'Escalate':
        throw error;
      default: {
        const never: never = decision;
        throw new Error(`unknown decision ${String(never)}`);
      }
    }
  }

  private fail(error: unknown, reason: string): void {
    this.state = 'failed';
    const old = this.ctx;
    this.ctx = undefined;
    if (old !== undefined) void old.stop();
    this.events.onFailed?.(error, reason);
  }

  override async postStop(): Promise<void> {
    this.state = 'stopped';
    await this.ctx?.stop();
  }
}

/**
 * The caller's side of a worker: runs work on the current context; on a failure
 * that the decider answers with Restart, reports it, waits for the new context
 * and tries once more (when `retry` allows).
 */
export class WorkerHandle<R> {
  /** The last context handed out; dropped on any reported fault, so it is asked anew. */
  private cached: { resource: R; generation: number } | undefined;

  constructor(
    readonly ref: ActorRef<WorkerMsg<R>>,
    private readonly decider: Decider,
  ) {}

  /** The current context if one is open and known, without asking. */
  peek(): R | undefined {
    return this.ref.alive ? this.cached?.resource : undefined;
  }

  async context(timeoutMs = 120_000): Promise<{ resource: R; generation: number }> {
    if (this.cached !== undefined && this.ref.alive) return this.cached;
    const c = await this.ref.ask<{ resource: R; generation: number }>((reply) => ({ type: 'context', reply }), timeoutMs);
    this.cached = c;
    return c;
  }

  report(error: unknown, generation: number): void {
    if (this.cached?.generation === generation) this.cached = undefined;
    this.ref.tell({ type: 'fault', error, generation });
  }

  /**
   * A failure of the context itself (as opposed to one request's failure: a
   * cancelled request, a bad prompt) is one with an engine fault attached, or one
   * the decider answers with Restart (e.g. a remote 401).
   */
  private contextFailure(e: unknown): boolean {
    return (e instanceof InferenceError && e.fault !== undefined) || this.decider(e) === 'Restart';
  }

  withContext<T>(fn: (resource: R) => Promise<T>, retry: (error: unknown) => boolean = () => true): Promise<T> {
    // The common case (a context already known): no round trip through context(), and no suspended async
    // function for the call's whole life (a long stream would hold its frame), one derived promise instead.
    const first = this.cached !== undefined && this.ref.alive ? this.cached : undefined;
    if (first === undefined) return this.withNewContext(fn, retry);
    const onFailure = (e: unknown): Promise<T> => this.afterFailure(e, first, fn, retry);
    try {
      return fn(first.resource).then(undefined, onFailure);
    } catch (e) {
      return onFailure(e);
    }
  }

  private async withNewContext<T>(fn: (resource: R) => Promise<T>, retry: (error: unknown) => boolean): Promise<T> {
    const first = await this.context();
    try {
      return await fn(first.resource);
    } catch (e) {
      return this.afterFailure(e, first, fn, retry);
    }
  }

  /** A call on `first` failed: a context failure is reported, and the call runs once more on a new context when it may. */
  private async afterFailure<T>(
    e: unknown, first: { resource: R; generation: number }, fn: (resource: R) => Promise<T>, retry: (error: unknown) => boolean,
  ): Promise<T> {
    if (!this.contextFailure(e)) throw e;
    this.report(e, first.generation);
    if (this.decider(e) !== 'Restart' || !retry(e)) throw e;
    const second = await this.context();
    if (second.generation === first.generation) throw e;
    return fn(second.resource);
  }
}
