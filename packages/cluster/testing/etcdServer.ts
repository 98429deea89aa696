// A real etcd server for tests: free loopback ports, a temporary data dir, and
// stop/start on the same ports and data (to simulate etcd going away and coming
// back). Every process it starts is killed by stop()/destroy(), and on the test
// process's exit as a last resort, so no etcd outlives the tests.

import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeLoopbackPort } from '../src/loopbackPort.js';

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

/** Client TLS for the test etcd: its certificate and key, and the CA client certificates must chain to. */
export interface EtcdTlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  /** With it, clients must present a certificate signed by this CA (--client-cert-auth). */
  readonly clientCaFile?: string;
}

async function healthy(client: string, tls: EtcdTlsFiles | undefined): Promise<boolean> {
  if (tls === undefined) {
    const res = await fetch(`${client}/health`);
    return ((await res.json()) as { health?: string }).health === 'true';
  }
  // The probe shows the server's own certificate as its client certificate (same CA in the tests).
  const ca = readFileSync(tls.clientCaFile ?? tls.certFile);
  return new Promise((resolve, reject) => {
    const req = httpsRequest(`${client}/health`, { ca, cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile), rejectUnauthorized: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => { resolve(body.includes('"health":"true"')); });
    });
    req.on('error', reject);
    req.end();
  });
}

export class EtcdServer {
  private proc: ChildProcess | undefined;

  private constructor(
    readonly clientPort: number,
    readonly peerPort: number,
    readonly dataDir: string,
    readonly tls?: EtcdTlsFiles,
  ) {}

  /** host:port for clients. */
  get endpoint(): string {
    return `127.0.0.1:${this.clientPort}`;
  }

  static async start(binary = 'etcd', tls?: EtcdTlsFiles): Promise<EtcdServer> {
    const s = new EtcdServer(await freeLoopbackPort(), await freeLoopbackPort(), mkdtempSync(join(tmpdir(), 'etcd-test-')), tls);
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
    const tls = this.tls;
    const client = `${tls === undefined ? 'http' : 'https'}://127.0.0.1:${this.clientPort}`;
    const tlsFlags = tls === undefined ? [] : [
      `--cert-file=${tls.certFile}`, `--key-file=${tls.keyFile}`,
      ...(tls.clientCaFile === undefined ? [] : [`--trusted-ca-file=${tls.clientCaFile}`, '--client-cert-auth']),
    ];
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
        ...tlsFlags,
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
        if (await healthy(client, tls)) return;
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
