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
}

export class Flow implements FlowSignal {
  private state = false;
  private listeners: FlowListener[] = [];

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
    this.listeners.push(listener);
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  private set(paused: boolean): void {
    if (this.state === paused) return;
    this.state = paused;
    for (const l of [...this.listeners]) l(paused);
  }
}
