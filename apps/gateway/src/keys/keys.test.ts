// Virtual keys without HTTP: records and their validation, the registry's lookup
// by hash (rotation drops the old hash, revocation and expiry are reported), the
// per-key rpm/tpm window on a fake clock, and the service's rules and audit records.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { errorOf } from '@inference/core/testing';
import { MemoryStore } from '@inference/storage';
import { StoreAuditLog } from '../audit/auditLog.js';
import { StoreKeyBackend } from './keyBackend.js';
import { KeyLimits } from './keyLimits.js';
import { KeyRegistry } from './keyRegistry.js';
import { KeyService } from './keyService.js';
import { SECRET_PREFIX, createRecord, hashSecret, newSecret, parseCreateBody, parseStoredKey, parseUpdateBody, viewOf, withSettings } from './virtualKey.js';

const NOW = Date.UTC(2030, 0, 1, 12, 0, 30);

describe('virtual key records', () => {
  it('a new secret is sk-inf- with 256 random bits; the record keeps its hash and a short prefix, the view neither hash nor secret', () => {
    const s = newSecret();
    expect(s.secret).toMatch(/^sk-inf-[A-Za-z0-9_-]{43}$/);
    expect(s.hash).toBe(hashSecret(s.secret));
    expect(s.prefix).toBe(s.secret.slice(0, SECRET_PREFIX.length + 5));
    const k = createRecord('a', { rpm: 5, metadata: { team: 't' } }, NOW, s);
    expect(parseStoredKey(JSON.parse(JSON.stringify(k)))).toEqual(k);
    const view = JSON.stringify(viewOf(k, NOW));
    expect(view).not.toContain(s.hash);
    expect(view).not.toContain(s.secret.slice(SECRET_PREFIX.length + 5));
  });

  it('bodies are validated by field; update clears with null and bumps the version', () => {
    expect(errorOf(() => parseCreateBody({ name: 'a', rpm: 1.5 }, NOW)).param).toBe('rpm');
    expect(errorOf(() => parseCreateBody({ name: 'a', deployments: null }, NOW)).param).toBe('deployments');
    expect(errorOf(() => parseCreateBody({ name: 'a', expiresAt: 'tomorrow' }, NOW)).param).toBe('expiresAt');
    expect(errorOf(() => parseCreateBody({}, NOW)).param).toBe('name');
    expect(errorOf(() => parseUpdateBody({ name: 'b' }, NOW)).param).toBe('name');
    const k = createRecord('a', parseCreateBody({ name: 'a', rpm: 3, deployments: ['x'] }, NOW).settings, NOW, newSecret());
    const u = withSettings(k, parseUpdateBody({ rpm: null, tpm: 9 }, NOW), NOW + 1);
    expect(u).toMatchObject({ tpm: 9, deployments: ['x'], version: 2, updatedAt: NOW + 1 });
    expect('rpm' in u).toBe(false);
  });
});

describe('KeyRegistry', () => {
  it('finds a key by its secret; after rotation only the new secret; reports revoked and expired keys', () => {
    const r = new KeyRegistry();
    const s1 = newSecret();
    const k = createRecord('a', { expiresAt: NOW + 1000 }, NOW, s1);
    r.upsert(k);
    expect(r.match(s1.secret, NOW)).toMatchObject({ kind: 'active', principal: { name: 'a' } });
    expect(r.match(s1.secret, NOW + 1000)?.kind).toBe('expired');
    const s2 = newSecret();
    r.upsert({ ...k, hash: s2.hash, prefix: s2.prefix, version: 2 });
    expect(r.match(s1.secret, NOW)).toBeUndefined();
    expect(r.match(s2.secret, NOW)?.kind).toBe('active');
    r.upsert({ ...k, hash: s2.hash, revokedAt: NOW, version: 3 });
    expect(r.match(s2.secret, NOW)?.kind).toBe('revoked');
    expect(r.size).toBe(1);
  });

  it('replaceAll follows a new snapshot: a vanished record no longer matches', () => {
    const r = new KeyRegistry();
    const a = newSecret();
    const b = newSecret();
    r.replaceAll([createRecord('a', {}, NOW, a), createRecord('b', {}, NOW, b)]);
    const changed: string[] = [];
    r.onChange((k) => changed.push(`${k.name}:${k.revokedAt === undefined ? 'live' : 'gone'}`));
    r.replaceAll([createRecord('b', {}, NOW, b)]);
    expect(r.match(a.secret, NOW)).toBeUndefined();
    expect(r.match(b.secret, NOW)?.kind).toBe('active');
    expect(changed).toEqual(['a:gone']);
  });
});

describe('KeyLimits', () => {
  it('never admits more than rpm in any 60 s of a request stream (property)', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 20 }), fc.array(fc.integer({ min: 0, max: 5000 }), { minLength: 1, maxLength: 200 }), (rpm, gaps) => {
      const r = new KeyRegistry();
      r.upsert(createRecord('k', { rpm }, 0, newSecret()));
      let clock = NOW;
      const limits = new KeyLimits(r, () => clock);
      const admitted: number[] = [];
      for (const g of gaps) {
        clock += g;
        try {
          limits.admit('k');
          admitted.push(clock);
        } catch (e) {
          expect(e).toMatchObject({ kind: 'rate_limited' });
        }
      }
      // The weighted window counts the previous bucket's admissions as if spread evenly, so
      // the bound is checked on the window it counts: no more than rpm within one bucket pair's weight.
      for (let i = 0; i < admitted.length; i++) {
        const inMinute = admitted.filter((t) => t > (admitted[i] ?? 0) - 60_000 && t <= (admitted[i] ?? 0)).length;
        expect(inMinute).toBeLessThanOrEqual(rpm * 2);
      }
      // Within one bucket the count is exact.
      const perBucket = new Map<number, number>();
      for (const t of admitted) perBucket.set(Math.floor(t / 60_000), (perBucket.get(Math.floor(t / 60_000)) ?? 0) + 1);
      for (const n of perBucket.values()) expect(n).toBeLessThanOrEqual(rpm);
    }));
  });

  it('tpm refuses once the minute\'s tokens are used, and frees up as the window slides', () => {
    const r = new KeyRegistry();
    r.upsert(createRecord('k', { tpm: 100 }, 0, newSecret()));
    let clock = Date.UTC(2030, 0, 1, 12, 0, 0);
    const limits = new KeyLimits(r, () => clock);
    limits.admit('k');
    limits.used('k', 100);
    expect(() => { limits.admit('k'); }).toThrow(/tpm/);
    clock += 90_000; // half of the previous bucket still counts: 50 < 100
    limits.admit('k');
    expect(limits.limited('k')).toBe(true);
    expect(limits.limited('nobody')).toBe(false);
  });
});

describe('KeyService', () => {
  it('creates, refuses reserved and duplicate names, rotates, revokes, and audits each change without secrets', async () => {
    const store = new MemoryStore();
    const registry = new KeyRegistry();
    const backend = new StoreKeyBackend(store, registry, () => undefined);
    const audit = new StoreAuditLog(store, 100, () => NOW);
    const svc = new KeyService(registry, backend, audit, new Set(['from-file']), () => NOW);
    const ctx = { actor: 'ops', requestId: 'r1' };
    const a = await svc.create({ name: 'a' }, ctx);
    await expect(svc.create({ name: 'a' }, ctx)).rejects.toMatchObject({ kind: 'invalid_request', param: 'name' });
    await expect(svc.create({ name: 'from-file' }, ctx)).rejects.toMatchObject({ param: 'name' });
    const b = await svc.rotate('a', ctx);
    await svc.revoke('a', ctx);
    await expect(svc.revoke('a', ctx)).rejects.toMatchObject({ kind: 'invalid_request' });
    await expect(svc.update('nope', { rpm: 1 }, ctx)).rejects.toMatchObject({ kind: 'not_found' });
    const records = await audit.page(undefined, 10);
    expect(records.map((x) => x.action)).toEqual(['key.revoke', 'key.rotate', 'key.create']);
    const text = JSON.stringify(records) + JSON.stringify(store.keys());
    expect(text).not.toContain(a.secret);
    expect(text).not.toContain(b.secret);
    // A restart on the same store finds the record (revoked).
    const again = new KeyRegistry();
    new StoreKeyBackend(store, again, () => undefined);
    expect(again.match(b.secret, NOW)?.kind).toBe('revoked');
  });
});
