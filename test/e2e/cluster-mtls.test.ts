// Node-to-node mutual TLS (cluster.tls) with certificates made by openssl at
// test time, a real etcd and nodes run by the real CLI. Two nodes with
// certificates from the cluster CA serve a deployment spread over both (every
// forwarded request and the admin write through the non-leader cross the port
// over mTLS, with no shared secret). The port refuses plaintext, TLS without a
// client certificate and a certificate from another CA, for admin writes and
// runs alike; a node holding such a certificate can neither write through the
// leader nor forward.

import http2 from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster, chat, clusterView, deploymentView, putDeployment, until } from '../support/cluster.js';
import { type CertFiles, Pki } from '../support/pki.js';

let cluster: TestCluster;
let pki: Pki;
let caFile: string;
let rogueCa: string;
let nodeCert: CertFiles;
let rogue: CertFiles;

const tlsKeys = (ca: string, c: CertFiles): string => `tls: { caFile: "${ca}", certFile: "${c.certFile}", keyFile: "${c.keyFile}" }`;

beforeAll(async () => {
  pki = Pki.create();
  caFile = pki.ca('cluster-ca');
  rogueCa = pki.ca('rogue-ca');
  nodeCert = pki.leaf('cluster-ca', 'node-client');
  rogue = pki.leaf('rogue-ca', 'rogue');
  cluster = await TestCluster.start();
  for (const n of ['a', 'b']) {
    cluster.clusterKeys = tlsKeys(caFile, pki.leaf('cluster-ca', `node-${n}`));
    await cluster.startNode(n);
  }
  await until('two members', async () => ((await clusterView(cluster.node('a').url)).members.length === 2 ? true : undefined));
}, 120_000);

afterAll(async () => {
  await cluster.destroy();
  pki.destroy();
}, 60_000);

interface Answer { status: number; text: string }

/** One POST on a node's cluster port; `tls` undefined: h2c. Rejects when the connection fails. */
function clusterPost(port: number, path: string, body: unknown, tls?: { ca: Buffer; cert?: Buffer; key?: Buffer }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const session = tls === undefined ? http2.connect(`http://127.0.0.1:${String(port)}`) : http2.connect(`https://127.0.0.1:${String(port)}`, tls);
    session.on('error', reject);
    const req = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/json' });
    let status = 0;
    let text = '';
    req.setEncoding('utf8');
    req.on('response', (h) => { status = Number(h[':status']); });
    req.on('data', (d: string) => { text += d; });
    req.on('error', (e: Error) => { session.destroy(); reject(e); });
    req.on('close', () => {
      session.close();
      if (status === 0) reject(new Error('no answer'));
      else resolve({ status, text });
    });
    req.end(JSON.stringify(body));
  });
}

const remote = (replicas: number): Record<string, unknown> => ({ runtime: 'openai', endpoint: cluster.mock.url, model: 'gpt-4o-mini', replicas });
const runBody = { replica: 'r1', kind: 'generate', req: { kind: 'chat', model: 'x', messages: [{ role: 'user', content: 'hi' }] } };

describe('cluster traffic over mutual TLS', () => {
  it('a write through the follower reaches the leader, and a node without a replica forwards to the one with it, over mTLS', async () => {
    const view = await clusterView(cluster.node('a').url);
    const follower = view.leader === 'a' ? 'b' : 'a';
    const res = await putDeployment(cluster.node(follower).url, 'gpt', remote(1));
    expect(res.status).toBe(200);
    const holder = await until('the replica serving', async () => {
      const d = await deploymentView(cluster.node('a').url, 'gpt');
      return d?.replicas.find((r) => r.state === 'serving')?.node;
    });
    const other = holder === 'a' ? 'b' : 'a';
    await until(`${other} routes gpt`, async () => ((await chat(cluster.node(other).url, 'gpt')).status === 200 ? true : undefined));
    for (let i = 0; i < 3; i++) expect((await chat(cluster.node(other).url, 'gpt')).status).toBe(200);
  });

  it('the port refuses plaintext, no client certificate and a certificate from another CA, for admin and run', async () => {
    const port = cluster.node('a').advertisePort;
    const ca = Pki.read(caFile);
    const refused = [
      undefined,
      { ca },
      { ca, cert: Pki.read(rogue.certFile), key: Pki.read(rogue.keyFile) },
    ];
    for (const tls of refused) {
      for (const [path, body] of [['/cluster/v1/admin', { op: 'apply', spec: { name: 'intruder', ...remote(1) } }], ['/cluster/v1/run', runBody]] as const) {
        await expect(clusterPost(port, path, body, tls), `${path} with ${tls === undefined ? 'h2c' : Object.keys(tls).join('+')}`).rejects.toThrow();
      }
    }
    expect(await deploymentView(cluster.node('a').url, 'intruder')).toBeUndefined();
    // The control: a certificate from the cluster CA gets an answer.
    const ok = await clusterPost(port, '/cluster/v1/run', runBody, { ca, cert: Pki.read(nodeCert.certFile), key: Pki.read(nodeCert.keyFile) });
    expect(ok.status).toBe(400);
    expect(ok.text).not.toMatch(/unauthorized/);
  });

  it('a node with a certificate from another CA can neither write through the leader nor forward', async () => {
    cluster.clusterKeys = tlsKeys(rogueCa, rogue);
    const c = await cluster.startNode('c');
    const res = await putDeployment(c.url, 'rogue-write', remote(1));
    expect(res.status).toBe(503);
    expect(await deploymentView(cluster.node('a').url, 'rogue-write')).toBeUndefined();
    // Requests landing on c for gpt (whose replicas are on a and b) cannot be forwarded.
    const r = await chat(c.url, 'gpt');
    expect(r.status).toBe(503);
    await cluster.kill('c');
  });
});
