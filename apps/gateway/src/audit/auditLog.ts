// The audit trail: one record per admin change (deployment apply, scale and
// remove; key create, update, rotate and revoke; budget reset) with who made it
// (the admin key's NAME), when, and the value before and after. Values are the
// views the admin API shows: a key appears by name and display prefix, never
// with its secret or hash; a deployment by its spec, which names environment
// variables, never their values. Records are kept newest `maxRecords` only:
// - StoreAuditLog (one process): the catalog storage (SQLite file or memory);
// - ClusterAuditLog: `audit/<id>` in etcd, written through the manager leader and
//   watched by every node, so any node pages through the same trail.
// Ids sort in time order (ms since the epoch, then a per-process sequence), so a
// page is "the newest `limit` records older than the cursor".

import { randomBytes } from 'node:crypto';
import type { Json, PrefixWatch } from '@inference/cluster';
import type { Store } from '@inference/storage';
import { SHARED_PREFIX, type SharedState } from '@inference/runtime';

export const AUDIT_ACTIONS = [
  'deployment.apply', 'deployment.scale', 'deployment.remove',
  'key.create', 'key.update', 'key.rotate', 'key.revoke',
  'budget.reset',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/** What the caller of `append` provides. */
export interface AuditEntry {
  readonly action: AuditAction;
  /** The deployment, key or budget changed. */
  readonly target: string;
  /** The admin key's name; null when the admin API runs without keys. */
  readonly actor: string | null;
  readonly requestId: string | null;
  readonly before: unknown;
  readonly after: unknown;
}

export interface AuditRecord extends AuditEntry {
  readonly id: string;
  /** ISO 8601. */
  readonly at: string;
  /** The node that made the change (cluster mode), else null. */
  readonly node: string | null;
}

export interface AuditLog {
  append(entry: AuditEntry): Promise<AuditRecord>;
  /** Newest first: up to `limit` records with ids below `before` (all when undefined). */
  page(before: string | undefined, limit: number): Promise<AuditRecord[]>;
}

export const DEFAULT_AUDIT_RECORDS = 10_000;

let seq = 0;
const PROCESS_TAG = randomBytes(3).toString('hex');

export function newAuditId(now: number): string {
  seq = (seq + 1) % 1_000_000;
  return `${String(now).padStart(13, '0')}-${String(seq).padStart(6, '0')}-${PROCESS_TAG}`;
}

/** Ids are made by newAuditId; a cursor from a client must look like one. */
export const AUDIT_ID = /^\d{13}-\d{6}-[0-9a-f]{6}$/;

function recordOf(entry: AuditEntry, now: number, node: string | null): AuditRecord {
  // A plain JSON copy: what is stored is exactly what is served.
  return JSON.parse(
    JSON.stringify({ id: newAuditId(now), at: new Date(now).toISOString(), node, ...entry, before: entry.before ?? null, after: entry.after ?? null }),
  ) as AuditRecord;
}

export class StoreAuditLog implements AuditLog {
  constructor(private readonly store: Store, private readonly keep: number, private readonly now: () => number = Date.now) {}

  append(entry: AuditEntry): Promise<AuditRecord> {
    const now = this.now();
    const r = recordOf(entry, now, null);
    this.store.appendAudit({ id: r.id, at: now, record: r }, this.keep);
    return Promise.resolve(r);
  }

  page(before: string | undefined, limit: number): Promise<AuditRecord[]> {
    return Promise.resolve(this.store.auditPage(before, limit).map((row) => row.record as AuditRecord));
  }
}

export class ClusterAuditLog implements AuditLog {
  private readonly watch: PrefixWatch;

  constructor(private readonly shared: SharedState, private readonly keep: number, private readonly now: () => number = Date.now) {
    this.watch = shared.watch(SHARED_PREFIX.audit);
  }

  async append(entry: AuditEntry): Promise<AuditRecord> {
    const r = recordOf(entry, this.now(), this.shared.node);
    await this.shared.put(SHARED_PREFIX.audit + r.id, r as unknown as Json);
    // Retention: the oldest records beyond `keep` go (usually one per append).
    const ids = [...this.watch.entries().keys()].sort();
    for (const id of ids.slice(0, Math.max(0, ids.length - this.keep))) await this.shared.delete(SHARED_PREFIX.audit + id);
    return r;
  }

  page(before: string | undefined, limit: number): Promise<AuditRecord[]> {
    const ids = [...this.watch.entries().keys()].filter((id) => before === undefined || id < before).sort().reverse().slice(0, limit);
    const out: AuditRecord[] = [];
    for (const id of ids) {
      const e = this.watch.entries().get(id);
      if (e !== undefined) out.push(e.value as unknown as AuditRecord);
    }
    return Promise.resolve(out);
  }
}
