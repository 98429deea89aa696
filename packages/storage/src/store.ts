// What the runtime keeps across restarts: the deployment catalog (desired state,
// with where each entry came from) and spend per budget window. `Store` is the
// one interface; `MemoryStore` (no `storage` in the config) and `SqliteStore`
// implement it. Every write is one small, complete change (a row put or deleted),
// so a crash between writes leaves the previous consistent state.

/** `config`: seeded from the config file; `admin`: applied, scaled or removed through the admin API. */
export type CatalogSource = 'config' | 'admin';

export interface CatalogEntry {
  readonly name: string;
  /** The deployment spec as JSON; `null` is a tombstone: removed through the admin API. */
  readonly spec: unknown;
  readonly source: CatalogSource;
  readonly updatedAt: number;
}

export type SpendScope = 'deployment' | 'key';

/** One budget window's spend for one deployment or API key (by key name, never the key). */
export interface SpendRow {
  readonly scope: SpendScope;
  readonly name: string;
  /** The budget's window as configured, e.g. `1h`. */
  readonly window: string;
  /** Start and end of the fixed window, ms since the epoch. */
  readonly windowStart: number;
  readonly windowEnd: number;
  readonly tokens: number;
  readonly costUsd: number;
}

export interface Store {
  readonly kind: 'memory' | 'sqlite';
  catalog(): CatalogEntry[];
  putCatalog(entry: CatalogEntry): void;
  deleteCatalog(name: string): void;
  /** Every stored spend row whose window has not ended at `now`. */
  spend(now: number): SpendRow[];
  /** Sets a window's totals (absolute, so a repeated write is harmless). */
  putSpend(row: SpendRow): void;
  /** Drops rows whose window ended at or before `now`. */
  pruneSpend(now: number): void;
  /** A stored record (a Responses API object or item: opaque JSON text), unless absent or expired at `now`. */
  getRecord(key: string, now: number): string | undefined;
  /** Stores a record until `expiresAt`; the store may drop its oldest records to stay within its bound. */
  putRecord(key: string, value: string, expiresAt: number): void;
  /** True when a record was there. */
  deleteRecord(key: string): boolean;
  /** Drops records expired at `now`. */
  pruneRecords(now: number): void;
  close(): void;
}

/** At most this many records in memory; past it the oldest go first. */
export const MEMORY_RECORD_LIMIT = 10_000;

function spendKey(r: Pick<SpendRow, 'scope' | 'name' | 'window' | 'windowStart'>): string {
  return `${r.scope}\u0000${r.name}\u0000${r.window}\u0000${String(r.windowStart)}`;
}

export class MemoryStore implements Store {
  readonly kind = 'memory';
  private readonly entries = new Map<string, CatalogEntry>();
  private readonly rows = new Map<string, SpendRow>();
  /** Insertion-ordered, so the first entry is the oldest. */
  private readonly records = new Map<string, { value: string; expiresAt: number }>();

  constructor(private readonly recordLimit = MEMORY_RECORD_LIMIT) {}

  catalog(): CatalogEntry[] {
    return [...this.entries.values()];
  }

  putCatalog(entry: CatalogEntry): void {
    this.entries.set(entry.name, entry);
  }

  deleteCatalog(name: string): void {
    this.entries.delete(name);
  }

  spend(now: number): SpendRow[] {
    return [...this.rows.values()].filter((r) => r.windowEnd > now);
  }

  putSpend(row: SpendRow): void {
    this.rows.set(spendKey(row), row);
  }

  pruneSpend(now: number): void {
    for (const [k, r] of this.rows) if (r.windowEnd <= now) this.rows.delete(k);
  }

  getRecord(key: string, now: number): string | undefined {
    const r = this.records.get(key);
    if (r === undefined) return undefined;
    if (r.expiresAt <= now) {
      this.records.delete(key);
      return undefined;
    }
    return r.value;
  }

  putRecord(key: string, value: string, expiresAt: number): void {
    this.records.delete(key);
    this.records.set(key, { value, expiresAt });
    while (this.records.size > this.recordLimit) {
      const oldest = this.records.keys().next();
      if (oldest.done === true) break;
      this.records.delete(oldest.value);
    }
  }

  deleteRecord(key: string): boolean {
    return this.records.delete(key);
  }

  pruneRecords(now: number): void {
    for (const [k, r] of this.records) if (r.expiresAt <= now) this.records.delete(k);
  }

  close(): void {
    // Nothing to release.
  }
}
