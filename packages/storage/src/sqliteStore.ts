// The catalog and spend in one SQLite file, through node-sqlite3-wasm (SQLite
// compiled to WebAssembly with real file access: no native build). The schema is
// versioned with `PRAGMA user_version`; migrations run in order inside one
// transaction at open, and a file written by a newer schema is refused rather than
// guessed at. A file that is not a database, or cannot be opened, is a clear
// `invalid_request` error naming `storage.path` — the process stops once with that
// message instead of crash-looping. Each write is one statement (SQLite makes each
// statement its own transaction), so a crash never leaves half a change.

import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { InferenceError } from '@inference/core';
import type { Database as SqliteDatabase } from 'node-sqlite3-wasm';
import { type AuditRow, type CatalogEntry, type CatalogSource, type KeyRow, MemoryStore, type SpendRow, type SpendScope, type Store } from './store.js';

// The package is CommonJS without named ESM exports.
const require = createRequire(import.meta.url);
const sqlite = require('node-sqlite3-wasm') as typeof import('node-sqlite3-wasm');

/** Migration n takes the schema from version n to n + 1. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE catalog (
     name TEXT PRIMARY KEY,
     spec TEXT,
     source TEXT NOT NULL CHECK (source IN ('config', 'admin')),
     updated_at INTEGER NOT NULL
   );
   CREATE TABLE spend (
     scope TEXT NOT NULL CHECK (scope IN ('deployment', 'key')),
     name TEXT NOT NULL,
     window TEXT NOT NULL,
     window_start INTEGER NOT NULL,
     window_end INTEGER NOT NULL,
     tokens INTEGER NOT NULL,
     cost_usd REAL NOT NULL,
     PRIMARY KEY (scope, name, window, window_start)
   );`,
  `CREATE TABLE records (
     key TEXT PRIMARY KEY,
     value TEXT NOT NULL,
     expires_at INTEGER NOT NULL
   );
   CREATE INDEX records_expiry ON records (expires_at);`,
  `CREATE TABLE api_keys (
     name TEXT PRIMARY KEY,
     record TEXT NOT NULL,
     updated_at INTEGER NOT NULL
   );
   CREATE TABLE audit (
     id TEXT PRIMARY KEY,
     at INTEGER NOT NULL,
     record TEXT NOT NULL
   );`,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

function storageError(path: string, what: string, e: unknown): InferenceError {
  const detail = e instanceof Error ? e.message : String(e);
  return new InferenceError('invalid_request', `storage.path: ${path} ${what}: ${detail}`, { param: 'storage.path', diagnostic: detail, cause: e });
}

function str(v: unknown, field: string): string {
  if (typeof v !== 'string') throw new InferenceError('internal', `storage: column ${field} is not text`);
  return v;
}

function num(v: unknown, field: string): number {
  if (typeof v === 'bigint') return Number(v);
  if (typeof v !== 'number') throw new InferenceError('internal', `storage: column ${field} is not a number`);
  return v;
}

export class SqliteStore implements Store {
  readonly kind = 'sqlite';
  private readonly db: SqliteDatabase;

  /** Opens (creating if absent) and migrates the file; throws a clear error if it cannot. */
  constructor(readonly path: string) {
    try {
      mkdirSync(dirname(path), { recursive: true });
    } catch (e) {
      throw storageError(path, 'cannot create its directory', e);
    }
    let db: SqliteDatabase;
    try {
      db = new sqlite.Database(path);
    } catch (e) {
      throw storageError(path, 'cannot be opened', e);
    }
    this.db = db;
    try {
      this.migrate();
    } catch (e) {
      db.close();
      if (e instanceof InferenceError) throw e;
      throw storageError(path, 'is not a readable SQLite database', e);
    }
  }

  private migrate(): void {
    const row = this.db.get('PRAGMA user_version');
    const version = num(row?.user_version ?? 0, 'user_version');
    if (version > SCHEMA_VERSION) {
      const why = `has schema version ${version}, newer than this build supports (${SCHEMA_VERSION})`;
      throw new InferenceError('invalid_request', `storage.path: ${this.path} ${why}`, { param: 'storage.path' });
    }
    if (version === SCHEMA_VERSION) return;
    this.db.exec('BEGIN IMMEDIATE');
    try {
      for (let v = version; v < SCHEMA_VERSION; v++) this.db.exec(MIGRATIONS[v] ?? '');
      this.db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
      this.db.exec('COMMIT');
    } catch (e) {
      this.db.exec('ROLLBACK');
      throw e;
    }
  }

  catalog(): CatalogEntry[] {
    return this.db.all('SELECT name, spec, source, updated_at FROM catalog ORDER BY name').map((r) => {
      const spec = r.spec === null ? null : (JSON.parse(str(r.spec, 'spec')) as unknown);
      const source = str(r.source, 'source') as CatalogSource;
      return { name: str(r.name, 'name'), spec, source, updatedAt: num(r.updated_at, 'updated_at') };
    });
  }

  putCatalog(entry: CatalogEntry): void {
    this.db.run(
      'INSERT INTO catalog (name, spec, source, updated_at) VALUES (?, ?, ?, ?) '
        + 'ON CONFLICT(name) DO UPDATE SET spec = excluded.spec, source = excluded.source, updated_at = excluded.updated_at',
      [entry.name, entry.spec === null ? null : JSON.stringify(entry.spec), entry.source, entry.updatedAt],
    );
  }

  deleteCatalog(name: string): void {
    this.db.run('DELETE FROM catalog WHERE name = ?', [name]);
  }

  spend(now: number): SpendRow[] {
    return this.db.all('SELECT scope, name, window, window_start, window_end, tokens, cost_usd FROM spend WHERE window_end > ?', [now]).map((r) => ({
      scope: str(r.scope, 'scope') as SpendScope,
      name: str(r.name, 'name'),
      window: str(r.window, 'window'),
      windowStart: num(r.window_start, 'window_start'),
      windowEnd: num(r.window_end, 'window_end'),
      tokens: num(r.tokens, 'tokens'),
      costUsd: num(r.cost_usd, 'cost_usd'),
    }));
  }

  putSpend(row: SpendRow): void {
    this.db.run(
      'INSERT INTO spend (scope, name, window, window_start, window_end, tokens, cost_usd) VALUES (?, ?, ?, ?, ?, ?, ?) '
        + 'ON CONFLICT(scope, name, window, window_start) '
        + 'DO UPDATE SET tokens = excluded.tokens, cost_usd = excluded.cost_usd, window_end = excluded.window_end',
      [row.scope, row.name, row.window, row.windowStart, row.windowEnd, row.tokens, row.costUsd],
    );
  }

  pruneSpend(now: number): void {
    this.db.run('DELETE FROM spend WHERE window_end <= ?', [now]);
  }

  getRecord(key: string, now: number): string | undefined {
    const row = this.db.get('SELECT value FROM records WHERE key = ? AND expires_at > ?', [key, now]);
    return row === null || row === undefined ? undefined : str(row.value, 'value');
  }

  putRecord(key: string, value: string, expiresAt: number): void {
    this.db.run(
      'INSERT INTO records (key, value, expires_at) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at',
      [key, value, expiresAt],
    );
  }

  deleteRecord(key: string): boolean {
    const had = this.db.get('SELECT 1 AS x FROM records WHERE key = ?', [key]);
    this.db.run('DELETE FROM records WHERE key = ?', [key]);
    return had !== null && had !== undefined;
  }

  pruneRecords(now: number): void {
    this.db.run('DELETE FROM records WHERE expires_at <= ?', [now]);
  }

  keys(): KeyRow[] {
    return this.db.all('SELECT name, record, updated_at FROM api_keys ORDER BY name').map((r) => ({
      name: str(r.name, 'name'),
      record: JSON.parse(str(r.record, 'record')) as unknown,
      updatedAt: num(r.updated_at, 'updated_at'),
    }));
  }

  putKey(row: KeyRow): void {
    this.db.run(
      'INSERT INTO api_keys (name, record, updated_at) VALUES (?, ?, ?) ' +
        'ON CONFLICT(name) DO UPDATE SET record = excluded.record, updated_at = excluded.updated_at',
      [row.name, JSON.stringify(row.record), row.updatedAt],
    );
  }

  appendAudit(row: AuditRow, keep: number): void {
    this.db.run('INSERT INTO audit (id, at, record) VALUES (?, ?, ?)', [row.id, row.at, JSON.stringify(row.record)]);
    // Retention: the newest `keep` rows stay.
    this.db.run('DELETE FROM audit WHERE id <= (SELECT id FROM audit ORDER BY id DESC LIMIT 1 OFFSET ?)', [keep]);
  }

  auditPage(before: string | undefined, limit: number): AuditRow[] {
    const rows = before === undefined
      ? this.db.all('SELECT id, at, record FROM audit ORDER BY id DESC LIMIT ?', [limit])
      : this.db.all('SELECT id, at, record FROM audit WHERE id < ? ORDER BY id DESC LIMIT ?', [before, limit]);
    return rows.map((r) => ({ id: str(r.id, 'id'), at: num(r.at, 'at'), record: JSON.parse(str(r.record, 'record')) as unknown }));
  }

  close(): void {
    if (this.db.isOpen) this.db.close();
  }
}

/** The store a config asks for: a SQLite file at `path`, or memory when absent. */
export function openStore(storage: { path: string } | undefined): Store {
  return storage === undefined ? new MemoryStore() : new SqliteStore(storage.path);
}
