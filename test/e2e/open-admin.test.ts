// `inference serve` on an address other hosts can reach, with admin routes and
// no admin keys, is refused at start-up with a message saying why; the operator
// opens it on purpose with --allow-open-admin (or server.allowOpenAdmin), or
// configures admin keys. The real CLI, a real listener on 0.0.0.0.

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'apps', 'gateway', 'dist', 'cli.js');

function configFile(text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'open-admin-')), 'c.yaml');
  writeFileSync(file, text);
  return file;
}

/** Starts the CLI; resolves with the URL it serves on (the caller kills it). */
function started(args: string[], env: Record<string, string> = {}): Promise<{ proc: ChildProcess; url: string }> {
  const proc = spawn(process.execPath, [CLI, 'serve', '--quiet', '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  return new Promise((resolve, reject) => {
    const on = (b: Buffer): void => {
      out += b.toString('utf8');
      const m = /serving .* on (http\S+)/.exec(out);
      if (m?.[1] !== undefined) resolve({ proc, url: m[1] });
    };
    proc.stdout.on('data', on);
    proc.stderr.on('data', on);
    proc.once('exit', (code) => { reject(new Error(`exited ${String(code)}: ${out}`)); });
  });
}

describe('admin API without keys on a reachable address', () => {
  it('is refused at start-up, naming what to do', () => {
    const r = spawnSync(process.execPath, [CLI, 'serve', '--quiet', '--port', '0', '--host', '0.0.0.0'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/server\.allowOpenAdmin: the admin API .* without auth\.adminKeys on 0\.0\.0\.0/);
    expect(r.stderr).toMatch(/--allow-open-admin/);
  });

  it('starts with --allow-open-admin, and with server.allowOpenAdmin: true', async () => {
    for (const args of [['--host', '0.0.0.0', '--allow-open-admin'], ['--config', configFile('server: { host: 0.0.0.0, allowOpenAdmin: true }\n')]]) {
      const { proc, url } = await started(args);
      try {
        const port = new URL(url).port;
        const res = await fetch(`http://127.0.0.1:${port}/admin/deployments`);
        expect(res.status).toBe(200);
      } finally {
        proc.kill('SIGKILL');
      }
    }
  }, 60_000);

  it('starts with admin keys configured, and the admin API asks for them', async () => {
    const file = configFile('server: { host: 0.0.0.0 }\nauth: { adminKeys: [{ name: ops, keyEnv: OPEN_ADMIN_TEST_KEY }] }\n');
    const { proc, url } = await started(['--config', file], { OPEN_ADMIN_TEST_KEY: 'k-open-admin-test' });
    try {
      const port = new URL(url).port;
      expect((await fetch(`http://127.0.0.1:${port}/admin/deployments`)).status).toBe(401);
      expect((await fetch(`http://127.0.0.1:${port}/admin/deployments`, { headers: { authorization: 'Bearer k-open-admin-test' } })).status).toBe(200);
    } finally {
      proc.kill('SIGKILL');
    }
  }, 60_000);
});
