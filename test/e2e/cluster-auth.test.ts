// The cluster port (the node-to-node listener on the advertise address) with a
// real etcd and a node run by the real CLI: every caller must authenticate.
// Without the shared secret, or with a wrong one, both admin writes
// (/cluster/v1/admin) and runs (/cluster/v1/run) are refused and nothing is
// applied; with the secret the same write goes through. A cluster node with
// neither mTLS nor a secret refuses to start unless `cluster.insecure: true`.

import { spawnSync } from 'node:child_process';
import http2 from 'node:http2';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SECRET_ENV, TestCluster, deploymentView, freePort, putDeployment } from '../support/cluster.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'apps', 'gateway', 'dist', 'cli.js');

let cluster: TestCluster;

beforeAll(async () => {
  cluster = await TestCluster.start();
  await cluster.startNode('a');
}, 120_000);

afterAll(async () => {
  await cluster.destroy();
}, 60_000);

/** One POST on the cluster port over h2c; resolves with the status and body. */
async function clusterPost(port: number, path: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  const session = http2.connect(`http://127.0.0.1:${String(port)}`);
  try {
    return await new Promise((resolve, reject) => {
      session.on('error', reject);
      const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/json', ...headers });
      let status = 0;
      let text = '';
      stream.setEncoding('utf8');
      stream.on('response', (h) => { status = Number(h[':status']); });
      stream.on('data', (d: string) => { text += d; });
      stream.on('error', reject);
      stream.on('close', () => { resolve({ status, text }); });
      stream.end(JSON.stringify(body));
    });
  } finally {
    session.close();
  }
}

const applyOp = (name: string): unknown => ({ op: 'apply', spec: { name, runtime: 'openai', endpoint: cluster.mock.url, replicas: 1 } });
const runBody = { replica: 'r1', kind: 'generate', req: { kind: 'chat', model: 'x', messages: [{ role: 'user', content: 'hi' }] } };

describe('the cluster port authenticates every caller', () => {
  it('refuses admin writes without the secret or with a wrong one, and applies nothing', async () => {
    const port = cluster.node('a').advertisePort;
    const tries: Record<string, string>[] = [{}, { 'x-inference-cluster-secret': 'wrong' }, { 'x-inference-cluster-secret': `${cluster.secret}x` }];
    for (const headers of tries) {
      const r = await clusterPost(port, '/cluster/v1/admin', applyOp('intruder'), headers);
      expect(r.status).toBe(401);
      expect(r.text).toMatch(/unauthorized/);
      expect(r.text).not.toContain(cluster.secret);
    }
    expect(await deploymentView(cluster.node('a').url, 'intruder')).toBeUndefined();
  });

  it('refuses runs without the secret', async () => {
    const r = await clusterPost(cluster.node('a').advertisePort, '/cluster/v1/run', runBody);
    expect(r.status).toBe(401);
    expect(r.text).toMatch(/unauthorized/);
  });

  it('accepts the same admin write with the secret (the control)', async () => {
    const r = await clusterPost(cluster.node('a').advertisePort, '/cluster/v1/admin', applyOp('admitted'), { 'x-inference-cluster-secret': cluster.secret });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text)).toHaveProperty('revision');
  });
});

describe('the secrets allow-list in cluster mode', () => {
  const spec = (apiKeyEnv: string): Record<string, unknown> => ({ name: 'leak', runtime: 'openai', endpoint: cluster.mock.url, replicas: 1, apiKeyEnv });

  it('an authenticated apply through the cluster port naming another variable is refused with 400 naming it', async () => {
    const r = await clusterPost(cluster.node('a').advertisePort, '/cluster/v1/admin', { op: 'apply', spec: spec('HOME') }, { 'x-inference-cluster-secret': cluster.secret });
    expect(r.status).toBe(400);
    expect(r.text).toMatch(/apiKeyEnv/);
    expect(r.text).toContain('HOME');
    const secret = await clusterPost(cluster.node('a').advertisePort, '/cluster/v1/admin', { op: 'apply', spec: spec(SECRET_ENV) }, { 'x-inference-cluster-secret': cluster.secret });
    expect(secret.status).toBe(400);
    expect(secret.text).not.toContain(cluster.secret);
    expect(await deploymentView(cluster.node('a').url, 'leak')).toBeUndefined();
  });

  it('the same through the node\'s public admin API', async () => {
    const { name: _, ...body } = spec('HOME');
    const res = await putDeployment(cluster.node('a').url, 'leak', body);
    expect(res.status).toBe(400);
    const err = ((await res.json()) as { error: { param: string; message: string } }).error;
    expect(err.param).toBe('apiKeyEnv');
    expect(err.message).toContain('HOME');
  });
});

describe('cluster mode without node authentication', () => {
  function serveWith(clusterKeys: string): { status: number | null; stderr: string; stdout: string } {
    const dir = mkdtempSync(join(tmpdir(), 'cluster-auth-'));
    const file = join(dir, 'c.yaml');
    writeFileSync(file, `server: { host: 127.0.0.1, port: 0 }\ncluster: { etcd: "etcd://${cluster.etcd.endpoint}", nodeName: lone, leaseTtlSeconds: 2${clusterKeys} }\n`);
    return { ...spawnSync(process.execPath, [CLI, 'serve', '--config', file, '--quiet', '--advertise', '127.0.0.1:1'], { encoding: 'utf8', timeout: 30_000 }) };
  }

  it('refuses to start, saying why and what to set', () => {
    const r = serveWith('');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/cluster: cluster mode needs node-to-node authentication: set cluster\.tls .* or cluster\.secretEnv .* or cluster\.insecure: true/);
  });

  it('starts with cluster.insecure: true, and says the port is open', async () => {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'cluster-auth-'));
    const file = join(dir, 'c.yaml');
    writeFileSync(file, `server: { host: 127.0.0.1, port: 0 }\ncluster: { name: insecure-${String(port)}, etcd: "etcd://${cluster.etcd.endpoint}", nodeName: open, leaseTtlSeconds: 2, insecure: true }\n`);
    const { spawn } = await import('node:child_process');
    const proc = spawn(process.execPath, [CLI, 'serve', '--config', file, '--quiet', '--advertise', `127.0.0.1:${String(port)}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    try {
      await new Promise<void>((resolve, reject) => {
        const on = (b: Buffer): void => {
          out += b.toString('utf8');
          if (/serving .* on http/.test(out)) resolve();
        };
        proc.stdout.on('data', on);
        proc.stderr.on('data', on);
        proc.once('exit', (code) => { reject(new Error(`exited ${String(code)}: ${out}`)); });
      });
      expect(out).toMatch(/cluster\.insecure: the cluster port .* accepts unauthenticated/);
    } finally {
      proc.kill('SIGKILL');
    }
  });
});
