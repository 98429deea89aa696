// The last N request errors (time, deployment, kind, client-safe message) for the
// status page. A fixed-size ring: older entries are overwritten. Messages are the
// ones clients already see (never diagnostics, prompts or keys), cut to a bound.

export interface RecentError {
  /** Epoch milliseconds. */
  readonly time: number;
  readonly deployment: string;
  readonly kind: string;
  readonly message: string;
}

export const MAX_ERROR_MESSAGE = 300;

export class RecentErrors {
  private readonly ring: RecentError[] = [];
  private next = 0;

  constructor(private readonly capacity = 50) {}

  add(e: RecentError): void {
    if (this.capacity <= 0) return;
    const message = e.message.length > MAX_ERROR_MESSAGE ? `${e.message.slice(0, MAX_ERROR_MESSAGE - 1)}…` : e.message;
    const entry: RecentError = { time: e.time, deployment: e.deployment, kind: e.kind, message };
    if (this.ring.length < this.capacity) this.ring.push(entry);
    else this.ring[this.next] = entry;
    this.next = (this.next + 1) % this.capacity;
  }

  /** Newest first. */
  list(): RecentError[] {
    const n = this.ring.length;
    const out: RecentError[] = [];
    for (let i = 1; i <= n; i++) {
      const e = this.ring[(this.next - i + n * 2) % n];
      if (e !== undefined) out.push(e);
    }
    return out;
  }
}
