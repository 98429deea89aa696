// A real etcd server for tests: free loopback ports, a temporary data dir, and
// stop/start on the same ports and data (to simulate etcd going away and coming
// back). Every process it starts is killed by stop()/destroy(), and on the test
// process's exit as a last resort, so no etcd outlives the tests.

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      s.close(() => {
        resolve(port);
      });
    });
  });
}

export class EtcdServer {
  private proc: ChildProcess | undefined;

  private constructor(
    readonly clientPort: number,
    readonly peerPort: number,
    readonly dataDir: string,
  ) {}

  /** host:port for clients. */
  get endpoint(): string {
    return `127.0.0.1:${this.clientPort}`;
  }

  static async start(binary = 'etcd'): Promise<EtcdServer> {
    const s = new EtcdServer(await freePort(), await freePort(), mkdtempSync(join(tmpdir(), 'etcd-test-')));
    await s.start(binary);
    return s;
  }

  running(): boolean {
    return this.proc !== undefined;
  }

  /** (Re)start on the same ports and data dir; resolves when etcd answers /health. */
  async start(binary = 'etcd'): Promise<void> {
    if (this.proc !== undefined) return;
    const peer = `http://127.0.0.1:${this.peerPort}`;
    const client = `http://127.0.0.1:${this.clientPort}`;
    const p = spawn(
      binary,
      [
        '--name=test',
        `--data-dir=${this.dataDir}`,
        `--listen-client-urls=${client}`,
        `--advertise-client-urls=${client}`,
        `--listen-peer-urls=${peer}`,
        `--initial-advertise-peer-urls=${peer}`,
        `--initial-cluster=test=${peer}`,
        '--logger=zap',
        '--log-level=error',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    p.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    live.add(p);
    this.proc = p;
    p.once('exit', () => {
      live.delete(p);
      if (this.proc === p) this.proc = undefined;
    });
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (this.proc !== p) throw new Error(`etcd exited during start: ${stderr}`);
      try {
        const res = await fetch(`${client}/health`);
        const body = (await res.json()) as { health?: string };
        if (body.health === 'true') return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    await this.stop();
    throw new Error(`etcd did not become healthy within 30 s: ${stderr}`);
  }

  /** Kill etcd (SIGKILL: as abrupt as a crash); the data dir is kept. */
  async stop(): Promise<void> {
    const p = this.proc;
    if (p === undefined) return;
    const exited = new Promise<void>((resolve) => {
      p.once('exit', () => {
        resolve();
      });
    });
    p.kill('SIGKILL');
    await exited;
  }

  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
