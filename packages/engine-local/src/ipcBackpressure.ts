// IPC back-pressure of the engine host (docs/flow-control.md, "Back-pressure"). The
// host's output travels to the parent over the IPC channel; when the parent reads
// it more slowly than the engine produces it (its event loop is busy), `process.send`
// answers false: the channel's write queue holds 128 KiB or more beyond what the
// socket took. The host then holds every sequence it runs (the engine leaves them
// out of the batch) until everything it sent has been written, and resumes them,
// except those the parent itself paused for their slow client. So what waits in the
// host is bounded by that threshold plus the steps decoded before the hold reached
// the engine (at most the addon's event queue, see native/engine_wrap.h).
//
// Two small pieces, each with its invariant:
//  - IpcOutbox counts messages handed to the channel and not yet written; it is held
//    from a `false` answer until that count is back to zero.
//  - SequenceHolds decides pause/resume per sequence from two causes (the parent's
//    pause, the channel's hold): a sequence runs only when neither holds it.

/** What the outbox needs of `process` (a child's IPC channel). */
export interface IpcChannel {
  readonly connected: boolean;
  send(message: unknown, sendHandle: undefined, options: undefined, callback: (error: Error | null) => void): boolean;
}

export class IpcOutbox {
  private unsent = 0;
  private heldNow = false;
  private waiters: (() => void)[] = [];
  /** Times the channel backed up (for stats and tests). */
  holds = 0;

  constructor(private readonly channel: IpcChannel, private readonly onHold: (held: boolean) => void) {}

  get held(): boolean {
    return this.heldNow;
  }

  /** Sends when connected; a `false` answer holds the output until the queue is written. */
  send(message: unknown): void {
    if (!this.channel.connected) return;
    this.unsent++;
    // The callback runs once the message is written (or failed: the channel closed).
    if (!this.channel.send(message, undefined, undefined, this.written) && !this.heldNow) {
      this.heldNow = true;
      this.holds++;
      this.onHold(true);
    }
  }

  /** Resolves at once when not held, else once the channel has drained. */
  drained(): Promise<void> {
    if (!this.heldNow) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private readonly written = (): void => {
    this.unsent--;
    if (!this.heldNow || this.unsent > 0) return;
    this.heldNow = false;
    this.onHold(false);
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  };
}

/** What SequenceHolds drives: the engine's per-sequence pause. */
export interface Pausable {
  pause(id: number): void;
  resume(id: number): void;
}

export class SequenceHolds {
  private readonly live = new Set<number>();
  private readonly byParent = new Set<number>();
  private channelHeld = false;

  constructor(private readonly engine: Pausable) {}

  /** Sequences running or held (bounded by the generations in flight). */
  get size(): number {
    return this.live.size;
  }

  /** A sequence was submitted: held at once while the channel is. */
  started(id: number): void {
    this.live.add(id);
    if (this.channelHeld) this.engine.pause(id);
  }

  /** A sequence finished, failed or was cancelled. */
  ended(id: number): void {
    this.live.delete(id);
    this.byParent.delete(id);
  }

  /** The parent's back-pressure for one sequence (its client is behind, or caught up). */
  parent(id: number, paused: boolean): void {
    if (!this.live.has(id)) return;
    if (paused) {
      this.byParent.add(id);
      this.engine.pause(id);
      return;
    }
    this.byParent.delete(id);
    if (!this.channelHeld) this.engine.resume(id);
  }

  /** The channel backed up (true) or drained (false). */
  channel(held: boolean): void {
    if (held === this.channelHeld) return;
    this.channelHeld = held;
    for (const id of this.live) {
      if (this.byParent.has(id)) continue;
      if (held) this.engine.pause(id);
      else this.engine.resume(id);
    }
  }
}
