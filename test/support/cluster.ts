// Cluster test support: a real etcd (@inference/cluster/testing, not shipped), a mock
// upstream, and gateway nodes run by the real CLI (`inference serve --cluster`)
// on loopback, each a child process that can be killed with SIGKILL and started
// again under the same name. `destroy()` kills every process it started, and a
// process exit hook kills any left, so no gateway or etcd outlives the tests.

import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freeLoopbackPort } from '@inference/cluster';
import { EtcdServer } from '@inference/cluster/testing';
import { type MockUpstream, startMockUpstream } from '@inference/mock-upstream';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'apps', 'gateway', 'dist', 'cli.js');

/** The variable the test nodes' shared secret is passed in. */
export const SECRET_ENV = 'INFERENCE_TEST_CLUSTER_SECRET';

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/** A loopback port that was free a moment ago (for an etcd or advertise address the test names up front). */
export const freePort = freeLoopbackPort;

export interface Node {
  readonly name: string;
  readonly advertisePort: number;
  url: string;
  proc: ChildProcess;
  output: string;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every `everyMs` until it returns a value (not undefined) or `timeoutMs` passes (then throws with `what`). */
export async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
    await sleep(everyMs);
  }
}

export class TestCluster {
  readonly nodes = new Map<string, Node>();

  private constructor(
    readonly etcd: EtcdServer,
    readonly mock: MockUpstream,
    private readonly dir: string,
    readonly clusterName: string,
  ) {}

  /** The nodes' shared secret (every test cluster authenticates its cluster port). */
  readonly secret = `s-${randomBytes(16).toString('hex')}`;
  /** Extra keys of the `cluster:` block of the nodes started next (default: the shared secret). */
  clusterKeys = `secretEnv: ${SECRET_ENV}`;
  /** Extra keys of the `server:` block of the nodes started next (e.g. `tls: { certFile: …, keyFile: … }`). */
  serverKeys = '';

  /** A cluster on a fresh etcd, or on `etcd` when given (e.g. one serving TLS). */
  static async start(etcdServer?: EtcdServer): Promise<TestCluster> {
    const etcd = etcdServer ?? (await EtcdServer.start());
    const mock = await startMockUpstream({ port: 0 });
    const dir = mkdtempSync(join(tmpdir(), 'inference-e2e-cluster-'));
    return new TestCluster(etcd, mock, dir, `t${String(process.pid)}-${String(Date.now())}`);
  }

  /** Writes the node config: short lease (2 s) and counter sync (200 ms) for the tests. */
  private configFile(extra: string[], clusterKeys: string): string {
    const path = join(this.dir, `inference-${String(Math.random()).slice(2)}.yaml`);
    writeFileSync(path, [
      `server: { host: 127.0.0.1, port: 0${this.serverKeys === '' ? '' : `, ${this.serverKeys}`} }`,
      `cluster: { name: ${this.clusterName}, leaseTtlSeconds: 2, counterSyncMs: 200, ${clusterKeys === '' ? this.clusterKeys : clusterKeys} }`,
      ...extra,
      '',
    ].join('\n'));
    return path;
  }

  /** Starts (or restarts, same name and advertise port) a node; resolves when it serves. */
  async startNode(name: string, extraConfig: string[] = [], advertisePort?: number, env: NodeJS.ProcessEnv = process.env, clusterKeys = ''): Promise<Node> {
    const port = advertisePort ?? this.nodes.get(name)?.advertisePort ?? (await freePort());
    const config = this.configFile(extraConfig, clusterKeys);
    // A caller with cluster keys of its own sets the environment they need; else the shared secret.
    const proc = spawn(process.execPath, [
      CLI, 'serve', '--config', config, '--quiet',
      '--cluster', `etcd://${this.etcd.endpoint}`, '--node-name', name, '--advertise', `127.0.0.1:${String(port)}`,
    ], { stdio: ['ignore', 'pipe', 'pipe'], env: clusterKeys === '' ? { ...env, [SECRET_ENV]: this.secret } : env });
    live.add(proc);
    proc.on('exit', () => live.delete(proc));
    const node: Node = { name, advertisePort: port, url: '', proc, output: '' };
    this.nodes.set(name, node);
    node.url = await new Promise<string>((resolve, reject) => {
      const onData = (b: Buffer): void => {
        node.output = (node.output + b.toString('utf8')).slice(-20_000);
        const m = /serving .* on (https?:\/\/\S+)/.exec(node.output);
        if (m?.[1] !== undefined) resolve(m[1]);
      };
      proc.stdout.on('data', onData);
      proc.stderr.on('data', onData);
      proc.once('exit', (code) => { reject(new Error(`node ${name} exited with ${String(code)}: ${node.output}`)); });
    });
    return node;
  }

  node(name: string): Node {
    const n = this.nodes.get(name);
    if (n === undefined) throw new Error(`no node ${name}`);
    return n;
  }

  /** kill -9: no lease revoke, no drain. Resolves when the process is gone. */
  async kill(name: string): Promise<void> {
    const n = this.node(name);
    if (n.proc.exitCode !== null || n.proc.signalCode !== null) return;
    const gone = new Promise<void>((r) => { n.proc.once('exit', () => { r(); }); });
    n.proc.kill('SIGKILL');
    await gone;
  }

  async destroy(): Promise<void> {
    for (const n of this.nodes.values()) {
      if (n.proc.exitCode === null && n.proc.signalCode === null) {
        const gone = new Promise<void>((r) => { n.proc.once('exit', () => { r(); }); });
        n.proc.kill('SIGKILL');
        await gone;
      }
    }
    await this.mock.close();
    await this.etcd.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface ClusterView {
  node: string;
  session: string;
  leader: string | undefined;
  leading: boolean;
  members: { name: string; advertise: string; draining: boolean }[];
  stale: boolean;
}

export async function clusterView(url: string): Promise<ClusterView> {
  const res = await fetch(`${url}/admin/cluster`, { signal: AbortSignal.timeout(5000) });
  if (res.status !== 200) throw new Error(`GET /admin/cluster: ${String(res.status)}`);
  return (await res.json()) as ClusterView;
}

export interface ReplicaView { id: string; state: string; node: string }
export interface DeploymentView { spec: { name: string; replicas: number }; replicas: ReplicaView[]; serving: number; desired: number }

export async function deploymentView(url: string, name: string): Promise<DeploymentView | undefined> {
  const res = await fetch(`${url}/admin/deployments/${encodeURIComponent(name)}`, { signal: AbortSignal.timeout(5000) });
  if (res.status === 404) return undefined;
  if (res.status !== 200) throw new Error(`GET deployment: ${String(res.status)} ${await res.text()}`);
  return (await res.json()) as DeploymentView;
}

/** A non-streamed chat completion; resolves with the status and the body. */
export async function chat(url: string, model: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, ...extra }),
    signal: AbortSignal.timeout(15_000),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown>, headers: res.headers };
}

export async function putDeployment(url: string, name: string, spec: Record<string, unknown>): Promise<Response> {
  return fetch(`${url}/admin/deployments/${encodeURIComponent(name)}`, {
    method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(spec), signal: AbortSignal.timeout(20_000),
  });
}
