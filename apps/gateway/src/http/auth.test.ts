// Key matching and key loading: digests compared against every key, names only
// in what comes out, unset or repeated keys refused at startup.
import { describe, expect, it } from 'vitest';
import { KeyRing, loadAuthKeys, mayUse } from './auth.js';

describe('KeyRing', () => {
  const ring = new KeyRing([
    { name: 'a', value: 'sk-aaaa', deployments: ['gpt'] },
    { name: 'b', value: 'sk-bbbb' },
  ]);

  it('matches exact keys only and yields the principal, never the key', () => {
    expect(ring.match('sk-aaaa')).toEqual({ name: 'a', deployments: ['gpt'] });
    expect(ring.match('sk-bbbb')).toEqual({ name: 'b', deployments: undefined });
    for (const wrong of ['', 'sk-aaa', 'sk-aaaaa', 'SK-AAAA', ' sk-aaaa']) expect(ring.match(wrong)).toBeUndefined();
    expect(JSON.stringify(ring.match('sk-aaaa'))).not.toContain('sk-aaaa');
  });

  it('a key restricted to deployments may use only those', () => {
    expect(mayUse({ name: 'a', deployments: ['gpt'] }, 'gpt')).toBe(true);
    expect(mayUse({ name: 'a', deployments: ['gpt'] }, 'other')).toBe(false);
    expect(mayUse({ name: 'b' }, 'other')).toBe(true);
    expect(mayUse(undefined, 'other')).toBe(true);
  });
});

describe('loadAuthKeys', () => {
  const auth = { apiKeys: [{ name: 'team', keyEnv: 'K1' }], adminKeys: [{ name: 'ops', keyEnv: 'K2' }] };

  it('reads the named variables', () => {
    const keys = loadAuthKeys(auth, { K1: 'one', K2: 'two' });
    expect(keys.api.match('one')?.name).toBe('team');
    expect(keys.api.match('two')).toBeUndefined();
    expect(keys.admin.match('two')?.name).toBe('ops');
  });

  it('an unset or empty variable names the key that needs it', () => {
    expect(() => loadAuthKeys(auth, { K1: 'one' })).toThrow('auth.adminKeys[0].keyEnv: environment variable K2 is not set');
    expect(() => loadAuthKeys(auth, { K1: '', K2: 'two' })).toThrow('auth.apiKeys[0].keyEnv: environment variable K1 is not set');
  });

  it('the same key in two places is refused, without showing it', () => {
    let message = '';
    try {
      loadAuthKeys(auth, { K1: 'same', K2: 'same' });
    } catch (e) {
      message = e instanceof Error ? e.message : '';
    }
    expect(message).toBe('auth.adminKeys[0].keyEnv: holds the same key as auth.apiKeys[0].keyEnv; every key must be distinct');
  });
});
