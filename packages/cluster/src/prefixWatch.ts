// A current copy of every key under one prefix: a snapshot (one range read at
// one revision), then the store's changes from the next revision on, in order.
// Invariants:
// - no change is applied twice: a batch whose revision is not above the copy's
//   revision is dropped (a resumed stream may repeat what was delivered);
// - no change is lost: the stream starts at snapshot revision + 1 and resumes
//   from the last delivered revision; when that is impossible (compacted), the
//   copy is rebuilt from a new snapshot, which subscribers receive as such;
// - while the store is unreachable the copy is kept as it was and marked stale.

import type { KvBackend, KvEvent, KvWatch } from './kv.js';
import { Listeners, sleep } from './listeners.js';
import type { Entry, Json, PrefixWatch, Unsubscribe, WatchUpdate } from './types.js';

const RETRY_MS = 250;

export class KvPrefixWatch implements PrefixWatch {
  readonly ready: Promise<void>;
  private readonly copy = new Map<string, Entry>();
  private rev = 0;
  private isStale = false;
  private held = false;
  private stream: KvWatch | undefined;
  private readonly closer = new AbortController();
  private readonly listeners = new Listeners<WatchUpdate>();

  constructor(
    private readonly kv: KvBackend,
    readonly prefix: string,
  ) {
    this.ready = this.resnapshot();
  }

  entries(): ReadonlyMap<string, Entry> {
    return this.copy;
  }

  revision(): number {
    return this.rev;
  }

  stale(): boolean {
    return this.isStale;
  }

  subscribe(listener: (update: WatchUpdate) => void): Unsubscribe {
    if (this.held) listener({ type: 'snapshot', entries: [...this.copy.values()], revision: this.rev });
    if (this.held && this.isStale) listener({ type: 'stale' });
    return this.listeners.add(listener);
  }

  close(): void {
    this.closer.abort();
    this.stream?.close();
    this.stream = undefined;
    this.listeners.clear();
  }

  /** Read the prefix at one revision, replace the copy, and stream from the next revision. */
  private async resnapshot(): Promise<void> {
    this.stream?.close();
    this.stream = undefined;
    while (!this.closer.signal.aborted) {
      try {
        const { records, revision } = await this.kv.range(this.prefix);
        if (this.closer.signal.aborted) return;
        this.copy.clear();
        for (const r of records) {
          const e = toEntry(r.key.slice(this.prefix.length), r.value, r.createRevision, r.modRevision);
          if (e !== undefined) this.copy.set(e.key, e);
        }
        this.rev = revision;
        this.held = true;
        this.listeners.emit({ type: 'snapshot', entries: [...this.copy.values()], revision });
        this.setStale(false);
        this.stream = this.kv.watch(this.prefix, revision + 1, {
          onEvents: (events) => {
            this.apply(events);
          },
          onConnection: (live) => {
            this.setStale(!live);
          },
          onBroken: () => {
            this.setStale(true);
            void this.resnapshot();
          },
        });
        return;
      } catch {
        if (this.held) this.setStale(true);
        await sleep(RETRY_MS, this.closer.signal);
      }
    }
  }

  private apply(events: readonly KvEvent[]): void {
    const base = this.rev;
    let top = base;
    for (const ev of events) {
      const revision = ev.type === 'put' ? ev.record.modRevision : ev.modRevision;
      if (revision <= base) continue;
      top = Math.max(top, revision);
      switch (ev.type) {
        case 'put': {
          const key = ev.record.key.slice(this.prefix.length);
          const entry = toEntry(key, ev.record.value, ev.record.createRevision, ev.record.modRevision);
          if (entry === undefined) continue;
          this.copy.set(key, entry);
          this.listeners.emit({ type: 'put', entry, revision });
          break;
        }
        case 'delete': {
          const key = ev.key.slice(this.prefix.length);
          if (!this.copy.delete(key)) continue;
          this.listeners.emit({ type: 'delete', key, revision });
          break;
        }
        default: {
          const never: never = ev;
          throw new Error(`unknown event ${JSON.stringify(never)}`);
        }
      }
    }
    this.rev = top;
    this.setStale(false);
  }

  private setStale(stale: boolean): void {
    if (stale === this.isStale || !this.held) return;
    this.isStale = stale;
    this.listeners.emit(stale ? { type: 'stale' } : { type: 'live' });
  }
}

/** A value that is not JSON (written by something else) is skipped, not fatal. */
function toEntry(key: string, value: string, createRevision: number, modRevision: number): Entry | undefined {
  try {
    return { key, value: JSON.parse(value) as Json, createRevision, modRevision };
  } catch {
    return undefined;
  }
}
