// `inference serve --cluster ...` flag validation through the real CLI: each bad
// flag stops startup with exit code 2 and a message naming it, before anything
// listens or connects; an unreachable etcd is a clear startup error too.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { freePort } from '../support/cluster.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'apps', 'gateway', 'dist', 'cli.js');

function serve(args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, 'serve', '--port', '0', '--quiet', ...args], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stderr: r.stderr };
}

describe('cluster flags', () => {
  it.each([
    [['--cluster', 'http://127.0.0.1:2379', '--node-name', 'a', '--advertise', '127.0.0.1:7000'], /--cluster: .*etcd:\/\/HOST:PORT/],
    [['--cluster', 'etcd://127.0.0.1:2379', '--advertise', '127.0.0.1:7000'], /--node-name: is required/],
    [['--cluster', 'etcd://127.0.0.1:2379', '--node-name', 'a b', '--advertise', '127.0.0.1:7000'], /--node-name: 'a b' may hold/],
    [['--cluster', 'etcd://127.0.0.1:2379', '--node-name', 'a'], /--advertise: is required/],
    [['--cluster', 'etcd://127.0.0.1:2379', '--node-name', 'a', '--advertise', 'localhost'], /--advertise: expected HOST:PORT/],
    [['--node-name', 'a'], /--cluster: is required/],
  ])('%j is refused with a clear message', (args, message) => {
    const r = serve(args);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it('an etcd that does not answer stops startup with an error, not a hang', async () => {
    const etcd = await freePort();
    const advertise = await freePort();
    const file = join(mkdtempSync(join(tmpdir(), 'cluster-flags-')), 'c.yaml');
    writeFileSync(file, 'cluster: { insecure: true }\n');
    const r = serve(['--config', file, '--cluster', `etcd://127.0.0.1:${String(etcd)}`, '--node-name', 'a', '--advertise', `127.0.0.1:${String(advertise)}`]);
    expect(r.status).toBe(2);
    expect(r.stderr.length).toBeGreaterThan(0);
    expect(r.stderr).not.toMatch(/node-to-node authentication/);
  });
});
