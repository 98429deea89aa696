// The actor kernel: a bounded mailbox per actor, one message handled at a time,
// `tell` and `ask` (with timeout), lifecycle hooks, a tree of children, and
// supervision: a failing handler is reported to the parent, whose strategy
// answers resume / stop / escalate. Replacing a failed resource is not the
// kernel's business: WorkerActor (packages/supervision) does it, one child
// generation at a time, with a restart budget; that is the one restart
// mechanism. Invariants: a stopped actor processes nothing; children stop
// before their parent's postStop runs.
//
// A full mailbox (docs/flow-control.md): `tell` answers false and drops
// the message, `ask` rejects with `overloaded` (retry-after). Only `deliver`
// goes past the bound: it is for messages that balance a grant the actor already
// made (a settlement, a release), whose number is bounded by the grants
// outstanding, so they can never be lost to a burst of new work. An `ask` whose
// asker gave up (timed out) tells the callee so: `reply.resolve` answers false,
// and the callee undoes whatever its answer granted.

import { type Deadline, InferenceError, deadlines } from '@inference/core';

export type Directive = 'resume' | 'stop' | 'escalate';

/** Decides what happens to a child whose handler (or lifecycle hook) failed. */
export interface SupervisorStrategy {
  decide(child: ActorRef<never>, error: unknown): Directive;
}

export const stopOnFailure: SupervisorStrategy = { decide: () => 'stop' };

export interface Reply<R> {
  /**
   * Answers the asker. False when nobody takes the answer any more (the ask timed
   * out, or was answered already): whatever the answer granted must then be undone
   * by the caller of resolve.
   */
  readonly resolve: (value: R) => boolean;
  readonly reject: (error: unknown) => void;
}

export abstract class Actor<M> {
  /** Set by the kernel before preStart. */
  protected context!: ActorContext<M>;

  /** @internal */
  attach(ctx: ActorContext<M>): void {
    this.context = ctx;
  }

  preStart(): void | Promise<void> {
    return undefined;
  }

  postStop(): void | Promise<void> {
    return undefined;
  }

  abstract receive(message: M): void | Promise<void>;
}

export interface SpawnOptions {
  /** Mailbox bound; `tell` returns false when full. */
  readonly mailbox?: number;
  /** How this actor supervises its own children. */
  readonly strategy?: SupervisorStrategy;
}

export interface ActorContext<M> {
  readonly self: ActorRef<M>;
  readonly name: string;
  spawn<C>(name: string, factory: () => Actor<C>, options?: SpawnOptions): ActorRef<C>;
  children(): ActorRef<unknown>[];
  child(name: string): ActorRef<unknown> | undefined;
}

type Status = 'starting' | 'running' | 'stopping' | 'stopped';

export type ActorFailureListener = (path: string, error: unknown, directive: Directive) => void;

class Cell<M> implements ActorContext<M> {
  readonly self: ActorRef<M>;
  private instance: Actor<M>;
  /** Ring buffer; starts small and doubles up to `bound` (most actors see few messages). */
  private queue: (M | undefined)[];
  private readonly bound: number;
  private head = 0;
  private size = 0;
  private processing = false;
  private status: Status = 'starting';
  /** Created with the first child (most actors, one per request among them, have none). */
  private kids: Map<string, Cell<unknown>> | undefined;
  /** The stop in progress or done; created by the first stop(). */
  private stopping: Promise<void> | undefined;
  /** Resolves waiters of whenStopped() that came before any stop. */
  private onStopped: (() => void) | undefined;
  private stoppedWaiter: Promise<void> | undefined;
  /** Pending while an asynchronous preStart runs; undefined once started (or when preStart was synchronous). */
  private started: Promise<void> | undefined;

  constructor(
    readonly name: string,
    readonly path: string,
    private readonly factory: () => Actor<M>,
    private readonly parent: Cell<unknown> | null,
    private readonly system: ActorSystem,
    readonly options: SpawnOptions,
  ) {
    this.bound = Math.max(1, options.mailbox ?? 1024);
    this.queue = new Array<M | undefined>(Math.min(this.bound, 8));
    this.self = new ActorRef(this);
    this.instance = factory();
    this.started = this.start();
  }

  /** Runs preStart; without a promise from it, the actor runs at once (no microtask per spawn). */
  private start(): Promise<void> | undefined {
    this.instance.attach(this);
    let pending: void | Promise<void>;
    try {
      pending = this.instance.preStart();
    } catch (e) {
      // Supervision acts on a failed start once spawn() has returned, as for an asynchronous one.
      return Promise.resolve().then(() => { this.afterStart(e, true); });
    }
    if (pending === undefined) {
      this.afterStart(undefined, false);
      return undefined;
    }
    return pending.then(() => { this.afterStart(undefined, false); }, (e: unknown) => { this.afterStart(e, true); });
  }

  private afterStart(error: unknown, failed: boolean): void {
    this.started = undefined;
    if (failed) {
      this.status = 'running';
      this.fail(error);
    } else if (this.status === 'starting') {
      this.status = 'running';
    }
    this.schedule();
  }

  get running(): boolean {
    return this.status === 'starting' || this.status === 'running';
  }

  whenStarted(): Promise<void> {
    return this.started ?? Promise.resolve();
  }

  /** `pastBound`: a balancing message (see `deliver`), accepted whatever the bound. */
  enqueue(m: M, pastBound = false): boolean {
    if (!this.running) return false;
    if (this.size >= this.bound && !pastBound) return false;
    if (this.size === this.queue.length) this.grow();
    this.queue[(this.head + this.size) % this.queue.length] = m;
    this.size++;
    this.schedule();
    return true;
  }

  private grow(): void {
    // Past the bound (balancing messages only) the ring keeps doubling.
    const next = new Array<M | undefined>(this.queue.length >= this.bound ? this.queue.length * 2 : Math.min(this.bound, this.queue.length * 2));
    for (let i = 0; i < this.size; i++) next[i] = this.queue[(this.head + i) % this.queue.length];
    this.queue = next;
    this.head = 0;
  }

  get mailboxSize(): number {
    return this.size;
  }

  private schedule(): void {
    if (this.processing || this.size === 0 || this.status !== 'running') return;
    this.processing = true;
    void this.drain();
  }

  private async drain(): Promise<void> {
    while (this.size > 0 && this.status === 'running') {
      const m = this.queue[this.head] as M;
      this.queue[this.head] = undefined;
      this.head = (this.head + 1) % this.queue.length;
      this.size--;
      try {
        const r = this.instance.receive(m);
        if (r !== undefined) await r;
      } catch (e) {
        this.fail(e);
      }
    }
    this.processing = false;
  }

  private fail(error: unknown): void {
    const parent = this.parent;
    const directive: Directive =
      parent === null ? 'stop' : (parent.options.strategy ?? this.system.defaultStrategy).decide(this.self as ActorRef<never>, error);
    this.system.reportFailure(this.path, error, directive);
    switch (directive) {
      case 'resume':
        return;
      case 'stop':
        void this.stop();
        return;
      case 'escalate':
        void this.stop();
        if (parent !== null) parent.fail(error);
        return;
      default: {
        const never: never = directive;
        throw new Error(`unknown directive ${String(never)}`);
      }
    }
  }

  private stopKids(): Promise<unknown> | undefined {
    const kids = this.kids;
    return kids === undefined || kids.size === 0 ? undefined : Promise.all([...kids.values()].map((k) => k.stop()));
  }

  /** A stopped child leaves its parent's table. */
  private forget(name: string, cell: Cell<unknown>): void {
    if (this.kids?.get(name) === cell) this.kids.delete(name);
  }

  spawn<C>(name: string, factory: () => Actor<C>, options: SpawnOptions = {}): ActorRef<C> {
    const kids = (this.kids ??= new Map<string, Cell<unknown>>());
    if (kids.has(name)) throw new InferenceError('internal', 'internal error', { diagnostic: `actor ${this.path}/${name} already exists` });
    const cell = new Cell<C>(name, `${this.path}/${name}`, factory, this, this.system, options);
    kids.set(name, cell);
    return cell.self;
  }

  children(): ActorRef<unknown>[] {
    return this.kids === undefined ? [] : [...this.kids.values()].map((k) => k.self);
  }

  child(name: string): ActorRef<unknown> | undefined {
    return this.kids?.get(name)?.self;
  }

  stop(): Promise<void> {
    return (this.stopping ??= this.stopOnce());
  }

  private async stopOnce(): Promise<void> {
    this.status = 'stopping';
    if (this.started !== undefined) await this.started;
    await this.stopKids();
    try {
      await this.instance.postStop();
    } catch (e) {
      this.system.reportFailure(this.path, e, 'stop');
    }
    this.queue.fill(undefined);
    this.size = 0;
    this.status = 'stopped';
    this.parent?.forget(this.name, this);
    this.onStopped?.();
  }

  whenStopped(): Promise<void> {
    if (this.status === 'stopped') return Promise.resolve();
    return (this.stoppedWaiter ??= new Promise((r) => { this.onStopped = r; }));
  }
}

export class ActorRef<M> {
  /** @internal */
  constructor(private readonly cell: Cell<M>) {}

  get path(): string {
    return this.cell.path;
  }

  get name(): string {
    return this.cell.name;
  }

  get alive(): boolean {
    return this.cell.running;
  }

  get mailboxSize(): number {
    return this.cell.mailboxSize;
  }

  /** Enqueues without waiting; false (the message dropped) when the mailbox is full or the actor stopped. */
  tell(message: M): boolean {
    return this.cell.enqueue(message);
  }

  /**
   * Enqueues a message that balances a grant the actor made earlier (a settlement,
   * a release), even past the mailbox bound: such messages are bounded by the
   * grants outstanding, and losing one would leak the grant for good. False only
   * when the actor is stopped (its state, grants included, is gone with it).
   */
  deliver(message: M): boolean {
    return this.cell.enqueue(message, true);
  }

  /**
   * Sends a message carrying a reply and waits for it. Rejects with `overloaded`
   * when the mailbox is full, `engine_unavailable` when the actor is stopped, and
   * `internal` after `timeoutMs`. `Infinity` sets no timer: for asks whose
   * answer is bounded by the callee itself (a request with its own deadlines).
   */
  ask<R>(make: (reply: Reply<R>) => M, timeoutMs = 30_000): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      let done = false;
      // On the shared deadline wheel (never early, at most one tick late): most asks are answered at once.
      const timer: Deadline | undefined = Number.isFinite(timeoutMs) ? deadlines.add(timeoutMs, () => {
        if (done) return;
        done = true;
        reject(new InferenceError('internal', 'internal error', { diagnostic: `ask to ${this.cell.path} timed out after ${timeoutMs} ms` }));
      }) : undefined;
      const reply: Reply<R> = {
        resolve: (v) => {
          if (done) return false;
          done = true;
          timer?.cancel();
          resolve(v);
          return true;
        },
        reject: (e) => {
          if (done) return;
          done = true;
          timer?.cancel();
          reject(e instanceof Error ? e : new Error(String(e)));
        },
      };
      if (!this.cell.enqueue(make(reply))) {
        const alive = this.cell.running;
        reply.reject(alive
          ? new InferenceError('overloaded', 'server is overloaded, try again', { retryAfterMs: 1000, diagnostic: `mailbox of ${this.cell.path} is full` })
          : new InferenceError('engine_unavailable', 'service is shutting down', { diagnostic: `${this.cell.path} is stopped` }));
      }
    });
  }

  started(): Promise<void> {
    return this.cell.whenStarted();
  }

  stop(): Promise<void> {
    return this.cell.stop();
  }

  stopped(): Promise<void> {
    return this.cell.whenStopped();
  }
}

class RootActor extends Actor<never> {
  receive(): void {
    /* the root guardian takes no messages */
  }
}

/** The root of an actor tree. */
export class ActorSystem {
  private readonly root: Cell<never>;
  private readonly listeners: ActorFailureListener[] = [];

  constructor(
    readonly name = 'system',
    readonly defaultStrategy: SupervisorStrategy = stopOnFailure,
  ) {
    this.root = new Cell<never>(name, `/${name}`, () => new RootActor(), null, this, { mailbox: 1, strategy: defaultStrategy });
  }

  spawn<M>(name: string, factory: () => Actor<M>, options?: SpawnOptions): ActorRef<M> {
    return this.root.spawn(name, factory, options);
  }

  onFailure(listener: ActorFailureListener): void {
    this.listeners.push(listener);
  }

  /** @internal */
  reportFailure(path: string, error: unknown, directive: Directive): void {
    for (const l of this.listeners) l(path, error, directive);
  }

  stop(): Promise<void> {
    return this.root.stop();
  }
}
