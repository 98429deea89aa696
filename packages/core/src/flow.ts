// Back-pressure of one request's output (docs/flow-control.md). The HTTP edge
// pauses it when the client's socket buffer is full and resumes it on 'drain';
// the engine producing the output (an upstream read, a local sequence) follows:
// a slow client holds back only its own request. Listeners run synchronously,
// once per change.

export type FlowListener = (paused: boolean) => void;

/** What producers read and watch. */
export interface FlowSignal {
  readonly paused: boolean;
  /** Returns the function that removes the listener. */
  onChange(listener: FlowListener): () => void;
  /** Removes a listener: a watcher that keeps its listener needs no closure from onChange. */
  off(listener: FlowListener): void;
}

/**
 * Most flows have one watcher (the engine reading for that request): it is kept in a
 * field, and an array is made only for a second (docs/benchmarks.md, "Idle
 * concurrent streams": thousands of idle streams each hold one).
 */
export class Flow implements FlowSignal {
  private state = false;
  private first: FlowListener | undefined;
  private rest: FlowListener[] | undefined;

  get paused(): boolean {
    return this.state;
  }

  pause(): void {
    this.set(true);
  }

  resume(): void {
    this.set(false);
  }

  onChange(listener: FlowListener): () => void {
    if (this.first === undefined && (this.rest === undefined || this.rest.length === 0)) this.first = listener;
    // An array literal holds just its element (a push onto [] would reserve 17 slots).
    else if (this.rest === undefined) this.rest = [listener];
    else this.rest.push(listener);
    return () => { this.off(listener); };
  }

  off(listener: FlowListener): void {
    if (this.first === listener) this.first = undefined;
    else if (this.rest !== undefined) this.rest = this.rest.filter((l) => l !== listener);
  }

  private set(paused: boolean): void {
    if (this.state === paused) return;
    this.state = paused;
    const first = this.first;
    const rest = this.rest === undefined ? undefined : [...this.rest];
    first?.(paused);
    if (rest !== undefined) for (const l of rest) l(paused);
  }
}
