import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { paramOf, rejectionOf } from '@inference/core/testing';
import { checkEnv, loadConfigFile, parseConfig } from './config.js';

function write(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
  const p = join(dir, 'c.yaml');
  writeFileSync(p, text);
  return p;
}

/** The contract example shipped with the project (every key of docs/config.md). */
const CONTRACT_FILE = fileURLToPath(new URL('../../../examples/config.yaml', import.meta.url));

describe('config contract', () => {
  it('accepts every key of the contract example', async () => {
    const cfg = await loadConfigFile(CONTRACT_FILE, { TEAM_A_KEY: 'a', ADMIN_KEY: 'b', OPENAI_API_KEY: 'c' });
    expect(cfg.deployments.map((d) => d.name)).toEqual(['smollm', 'gpt-4o-mini']);
    expect(cfg.auth.apiKeys[0]?.deployments).toEqual(['smollm']);
    expect(cfg.storage?.path).toBe('data/inference.db');
    expect(cfg.deployments[0]?.engine.chatTemplate).toBe('chatml');
    expect(cfg.responses).toEqual({ ttlSeconds: 2_592_000 });
  });

  it('responses.ttlSeconds: whole seconds, 1 s to 366 days; absent, each store keeps its default', () => {
    expect(parseConfig({ responses: { ttlSeconds: 3600 } }).responses).toEqual({ ttlSeconds: 3600 });
    expect(parseConfig({}).responses).toBeUndefined();
    for (const bad of [0, 1.5, 366 * 86_400 + 1, '1d']) {
      expect(() => parseConfig({ responses: { ttlSeconds: bad } })).toThrow(expect.objectContaining({ param: 'responses.ttlSeconds' }));
    }
    expect(() => parseConfig({ responses: { ttl: 1 } })).toThrow(expect.objectContaining({ param: 'responses.ttl' }));
  });

  it('names the missing environment variable and the key that needs it', async () => {
    const e = await rejectionOf(loadConfigFile(CONTRACT_FILE, { TEAM_A_KEY: 'a', ADMIN_KEY: 'b' }));
    expect(e.param).toBe('deployments[1].apiKeyEnv');
    expect(e.message).toContain('OPENAI_API_KEY');
  });

  it('rejects unknown keys by name, at any depth', () => {
    const bad = (doc: unknown): string | null => paramOf(() => parseConfig(doc));
    expect(bad({ sever: {} })).toBe('sever');
    expect(bad({ server: { prot: 1 } })).toBe('server.prot');
    expect(bad({ deployments: [{ name: 'a', runtime: 'openai', endpoint: 'http://x', remote: { timeouts: { conectMs: 1 } } }] })).toBe(
      'deployments[0].remote.timeouts.conectMs',
    );
    expect(
      bad({
        deployments: [
          { name: 'a', runtime: 'openai', endpoint: 'http://x' },
          { name: 'a', runtime: 'openai', endpoint: 'http://y' },
        ],
      }),
    ).toBe('deployments[1].name');
  });

  it('reports unreadable files and YAML errors clearly', async () => {
    expect((await rejectionOf(loadConfigFile('/nonexistent/c.yaml'))).message).toMatch(/cannot read config file/);
    expect((await rejectionOf(loadConfigFile(write('deployments: [\n')))).message).toMatch(/not valid YAML/);
    expect((await rejectionOf(loadConfigFile(write('a: 1\na: 2\n')))).message).toMatch(/not valid YAML/);
  });

  it('validates budgets and key names: windows <n>m|h|d|mo or the unit words; a key budget has no onExceeded', () => {
    const cfg = parseConfig({
      auth: { apiKeys: [{ name: 'team-a', keyEnv: 'K', budget: { window: 'month', maxCostUsd: 10 } }] },
      deployments: [{ name: 'a', runtime: 'openai', endpoint: 'http://x', budget: { window: '15m', maxTokens: 10, onExceeded: 'fallback' } }],
    });
    expect(cfg.auth.apiKeys[0]?.budget).toEqual({ window: 'month', maxCostUsd: 10, onExceeded: 'reject' });
    expect(cfg.deployments[0]?.budget).toEqual({ window: '15m', maxTokens: 10, onExceeded: 'fallback' });
    const param = (doc: unknown): string | null => paramOf(() => parseConfig(doc));
    expect(param({ deployments: [{ name: 'a', runtime: 'openai', endpoint: 'http://x', budget: { window: '0h' } }] })).toBe('deployments[0].budget.window');
    expect(param({ deployments: [{ name: 'a', runtime: 'openai', endpoint: 'http://x', budget: { window: '1w' } }] })).toBe('deployments[0].budget.window');
    expect(param({ auth: { apiKeys: [{ name: 'k', keyEnv: 'K', budget: { window: '1d', onExceeded: 'fallback' } }] } })).toBe(
      'auth.apiKeys[0].budget.onExceeded',
    );
    expect(param({ auth: { apiKeys: [{ name: 'k', keyEnv: 'K' }, { name: 'k', keyEnv: 'L' }] } })).toBe('auth.apiKeys[1].name');
    expect(param({ auth: { apiKeys: [{ name: 'has space', keyEnv: 'K' }] } })).toBe('auth.apiKeys[0].name');
  });

  it('checkEnv passes when everything is set', () => {
    expect(() => {
      checkEnv(parseConfig({ deployments: [{ name: 'a', runtime: 'openai', endpoint: 'http://x', apiKeyEnv: 'K' }] }), { K: 'v' });
    }).not.toThrow();
  });
});
