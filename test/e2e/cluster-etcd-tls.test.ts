// Nodes reach etcd over TLS with client certificates (cluster.etcdTls) and with
// a user and password (cluster.etcdAuth), against a real etcd started here with
// --cert-file/--key-file/--trusted-ca-file/--client-cert-auth and auth enabled;
// certificates made by openssl at test time. A node that does not speak TLS,
// shows a certificate from another CA, or gives a wrong password cannot join.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EtcdServer } from '@inference/cluster/testing';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SECRET_ENV, TestCluster, chat, freePort, putDeployment, until } from '../support/cluster.js';
import { type CertFiles, Pki } from '../support/pki.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'apps', 'gateway', 'dist', 'cli.js');
const PASSWORD = 'etcd-test-password';

let pki: Pki;
let ca: string;
let client: CertFiles;
let rogue: CertFiles;
let etcd: EtcdServer;
let cluster: TestCluster;

const etcdTls = (c: CertFiles): string => `etcdTls: { caFile: "${ca}", certFile: "${c.certFile}", keyFile: "${c.keyFile}" }`;

beforeAll(async () => {
  pki = Pki.create();
  ca = pki.ca('etcd-ca');
  const server = pki.leaf('etcd-ca', 'etcd-server');
  client = pki.leaf('etcd-ca', 'etcd-client');
  pki.ca('rogue-ca');
  rogue = pki.leaf('rogue-ca', 'rogue');
  etcd = await EtcdServer.start('etcd', { ...server, clientCaFile: ca });
  // Auth on: a root user with the root role, then auth enable (as etcdctl does).
  const admin = new Etcd3({ hosts: `https://${etcd.endpoint}`, credentials: { rootCertificate: Pki.read(ca), certChain: Pki.read(client.certFile), privateKey: Pki.read(client.keyFile) } });
  await admin.role('root').create();
  await admin.user('root').create(PASSWORD);
  await admin.user('root').addRole('root');
  await admin.auth.authEnable();
  admin.close();
  cluster = await TestCluster.start(etcd);
}, 120_000);

afterAll(async () => {
  await cluster.destroy();
  pki.destroy();
}, 60_000);

/** `inference serve` with this cluster block; resolves with the exit status and stderr (the caller expects a failure). */
async function serveFails(clusterKeys: string): Promise<{ status: number | null; stderr: string }> {
  const port = await freePort();
  const file = join(mkdtempSync(join(tmpdir(), 'etcd-tls-')), 'c.yaml');
  writeFileSync(file, `server: { host: 127.0.0.1, port: 0 }\ncluster: { name: ${cluster.clusterName}, leaseTtlSeconds: 2, secretEnv: ${SECRET_ENV}, ${clusterKeys} }\n`);
  const r = spawnSync(process.execPath, [CLI, 'serve', '--config', file, '--quiet', '--cluster', `etcd://${etcd.endpoint}`, '--node-name', 'x', '--advertise', `127.0.0.1:${String(port)}`], {
    encoding: 'utf8', timeout: 60_000, env: { ...process.env, [SECRET_ENV]: cluster.secret, ETCD_TEST_PASSWORD: PASSWORD, ETCD_WRONG_PASSWORD: 'wrong' },
  });
  return { status: r.status, stderr: r.stderr };
}

describe('etcd over TLS with client certificates and a password', () => {
  it('a node with the client certificate and the password joins and serves', async () => {
    process.env.ETCD_TEST_PASSWORD = PASSWORD;
    cluster.clusterKeys = `secretEnv: ${SECRET_ENV}, ${etcdTls(client)}, etcdAuth: { username: root, passwordEnv: ETCD_TEST_PASSWORD }`;
    const a = await cluster.startNode('a');
    // A node that has just joined may not lead yet (503 until it does): the write is retried until accepted.
    const status = await until('the write accepted', async () => {
      const res = await putDeployment(a.url, 'gpt', { runtime: 'openai', endpoint: cluster.mock.url, model: 'gpt-4o-mini', replicas: 1 });
      return res.status === 503 ? undefined : res.status;
    });
    expect(status).toBe(200);
    await until('gpt serving', async () => ((await chat(a.url, 'gpt')).status === 200 ? true : undefined));
  });

  it.each([
    ['plaintext to a TLS etcd', 'etcdAuth: { username: root, passwordEnv: ETCD_TEST_PASSWORD }'],
    ['a client certificate from another CA', `etcdTls: { caFile: "CA", certFile: "ROGUE_CERT", keyFile: "ROGUE_KEY" }, etcdAuth: { username: root, passwordEnv: ETCD_TEST_PASSWORD }`],
    ['no password', 'ETCDTLS'],
    ['a wrong password', 'ETCDTLS, etcdAuth: { username: root, passwordEnv: ETCD_WRONG_PASSWORD }'],
  ])('%s cannot join', async (_what, keys) => {
    const text = keys.replace('ETCDTLS', etcdTls(client)).replace('CA', ca).replace('ROGUE_CERT', rogue.certFile).replace('ROGUE_KEY', rogue.keyFile);
    const r = await serveFails(text);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/inference: /);
    expect(r.stderr).not.toContain(PASSWORD);
  });

  it('a missing etcd CA file stops start-up naming the key', async () => {
    const r = await serveFails('etcdTls: { caFile: /nonexistent/ca.pem }');
    expect(r.stderr).toMatch(/cluster\.etcdTls\.caFile: cannot read \/nonexistent\/ca\.pem/);
  });
});
