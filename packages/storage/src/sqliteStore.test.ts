// The SQLite store against real files: what is written survives reopening, and a
// bad file is a clear error naming storage.path.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errorOf } from '@inference/core/testing';
import pkg from 'node-sqlite3-wasm';
import { afterEach, describe, expect, it } from 'vitest';
import { SCHEMA_VERSION, SqliteStore } from './sqliteStore.js';
import { MemoryStore, type SpendRow, type Store } from './store.js';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'inference-store-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const row: SpendRow = { scope: 'key', name: 'team-a', window: '1h', windowStart: 3_600_000, windowEnd: 7_200_000, tokens: 120, costUsd: 0.25 };

describe.each<[string, () => Store]>([
  ['memory', () => new MemoryStore()],
  ['sqlite', () => new SqliteStore(join(tmp(), 'a.db'))],
])('%s store', (_name, make) => {
  it('puts, overwrites and deletes catalog entries; a tombstone has a null spec', () => {
    const s = make();
    s.putCatalog({ name: 'a', spec: { name: 'a', replicas: 1 }, source: 'config', updatedAt: 1 });
    s.putCatalog({ name: 'b', spec: null, source: 'admin', updatedAt: 2 });
    s.putCatalog({ name: 'a', spec: { name: 'a', replicas: 3 }, source: 'admin', updatedAt: 3 });
    expect(s.catalog().sort((x, y) => x.name.localeCompare(y.name))).toEqual([
      { name: 'a', spec: { name: 'a', replicas: 3 }, source: 'admin', updatedAt: 3 },
      { name: 'b', spec: null, source: 'admin', updatedAt: 2 },
    ]);
    s.deleteCatalog('a');
    expect(s.catalog().map((e) => e.name)).toEqual(['b']);
    s.close();
  });

  it('keeps one row per window, absolute totals, and prunes ended windows', () => {
    const s = make();
    s.putSpend(row);
    s.putSpend({ ...row, tokens: 200, costUsd: 0.5 });
    s.putSpend({ ...row, windowStart: 0, windowEnd: 3_600_000, tokens: 7 });
    expect(s.spend(3_600_000)).toEqual([{ ...row, tokens: 200, costUsd: 0.5 }]);
    expect(s.spend(0)).toHaveLength(2);
    s.pruneSpend(3_600_000);
    expect(s.spend(0)).toEqual([{ ...row, tokens: 200, costUsd: 0.5 }]);
    s.close();
  });

  it('puts and overwrites virtual keys by name', () => {
    const s = make();
    s.putKey({ name: 'k1', record: { name: 'k1', hash: 'aa' }, updatedAt: 1 });
    s.putKey({ name: 'k2', record: { name: 'k2', hash: 'bb' }, updatedAt: 2 });
    s.putKey({ name: 'k1', record: { name: 'k1', hash: 'cc', revokedAt: 3 }, updatedAt: 3 });
    expect(s.keys().sort((x, y) => x.name.localeCompare(y.name))).toEqual([
      { name: 'k1', record: { name: 'k1', hash: 'cc', revokedAt: 3 }, updatedAt: 3 },
      { name: 'k2', record: { name: 'k2', hash: 'bb' }, updatedAt: 2 },
    ]);
    s.close();
  });

  it('pages audit records newest first below a cursor and keeps only the newest `keep`', () => {
    const s = make();
    for (let i = 1; i <= 7; i++) s.appendAudit({ id: `a${String(i).padStart(3, '0')}`, at: i, record: { n: i } }, 5);
    const first = s.auditPage(undefined, 2);
    expect(first.map((r) => r.id)).toEqual(['a007', 'a006']);
    expect(first[0]?.record).toEqual({ n: 7 });
    expect(s.auditPage('a006', 2).map((r) => r.id)).toEqual(['a005', 'a004']);
    // Retention: 7 appended, 5 kept.
    expect(s.auditPage('a004', 10).map((r) => r.id)).toEqual(['a003']);
    expect(s.auditPage(undefined, 100)).toHaveLength(5);
    s.close();
  });
});

describe('SqliteStore files', () => {
  it('what was written is there after reopening the file', () => {
    const path = join(tmp(), 'nested', 'dir', 'inference.db');
    const a = new SqliteStore(path);
    a.putCatalog({ name: 'gpt', spec: { name: 'gpt', runtime: 'openai' }, source: 'admin', updatedAt: 5 });
    a.putSpend(row);
    a.putKey({ name: 'k', record: { name: 'k', hash: 'ab' }, updatedAt: 4 });
    a.appendAudit({ id: 'a1', at: 6, record: { action: 'key.create' } }, 10);
    a.close();
    const b = new SqliteStore(path);
    expect(b.catalog()).toEqual([{ name: 'gpt', spec: { name: 'gpt', runtime: 'openai' }, source: 'admin', updatedAt: 5 }]);
    expect(b.spend(0)).toEqual([row]);
    expect(b.keys()).toEqual([{ name: 'k', record: { name: 'k', hash: 'ab' }, updatedAt: 4 }]);
    expect(b.auditPage(undefined, 10)).toEqual([{ id: 'a1', at: 6, record: { action: 'key.create' } }]);
    b.close();
  });

  it('a file of the first schema is migrated and keeps its rows', () => {
    const path = join(tmp(), 'v1.db');
    const db = new pkg.Database(path);
    db.exec(`CREATE TABLE catalog (name TEXT PRIMARY KEY, spec TEXT, source TEXT NOT NULL, updated_at INTEGER NOT NULL);
      CREATE TABLE spend (scope TEXT NOT NULL, name TEXT NOT NULL, window TEXT NOT NULL, window_start INTEGER NOT NULL,
        window_end INTEGER NOT NULL, tokens INTEGER NOT NULL, cost_usd REAL NOT NULL, PRIMARY KEY (scope, name, window, window_start));
      INSERT INTO catalog VALUES ('gpt', NULL, 'admin', 1);
      PRAGMA user_version = 1;`);
    db.close();
    const s = new SqliteStore(path);
    expect(s.catalog().map((e) => e.name)).toEqual(['gpt']);
    s.putKey({ name: 'k', record: {}, updatedAt: 1 });
    expect(s.keys()).toHaveLength(1);
    s.close();
  });

  it('a file that is not a database is an invalid_request naming storage.path', () => {
    const path = join(tmp(), 'garbage.db');
    writeFileSync(path, 'this is not sqlite, just text that is long enough to look like a header '.repeat(20));
    const e = errorOf(() => new SqliteStore(path));
    expect(e.kind).toBe('invalid_request');
    expect(e.param).toBe('storage.path');
    expect(e.message).toContain(path);
    expect(e.message).toContain('not a readable SQLite database');
  });

  it('a path that cannot be created is a clear error', () => {
    const file = join(tmp(), 'plain-file');
    writeFileSync(file, 'x');
    const e = errorOf(() => new SqliteStore(join(file, 'sub', 'x.db')));
    expect(e.kind).toBe('invalid_request');
    expect(e.message).toContain('storage.path');
  });

  it('a file from a newer schema is refused, not guessed at', () => {
    const path = join(tmp(), 'newer.db');
    const db = new pkg.Database(path);
    db.exec(`PRAGMA user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    const e = errorOf(() => new SqliteStore(path));
    expect(e.message).toContain(`schema version ${SCHEMA_VERSION + 1}`);
  });

  it('stamps the schema version on a new file', () => {
    const path = join(tmp(), 'v.db');
    new SqliteStore(path).close();
    const db = new pkg.Database(path);
    expect(db.get('PRAGMA user_version')).toEqual({ user_version: SCHEMA_VERSION });
    db.close();
  });
});
