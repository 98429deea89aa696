// `cluster.secretEnv` through the real CLI on a real etcd: a variable that is
// not set stops startup with the variable named; nodes that share the secret
// forward requests to each other; the forwarding listener refuses a stream
// without the secret or with a wrong one (401), and lets the right one through.

import { connect } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster, chat, deploymentView, putDeployment, until } from '../support/cluster.js';

const SECRET_ENV = 'INFERENCE_TEST_CLUSTER_SECRET';
const SECRET = 's3cret-for-the-test';
const WITH_SECRET = `secretEnv: ${SECRET_ENV}`;

let cluster: TestCluster;

beforeAll(async () => {
  cluster = await TestCluster.start();
}, 120_000);

afterAll(async () => {
  await cluster.destroy();
}, 60_000);

/** POSTs to a node's forwarding listener (HTTP/2 cleartext) and resolves with the status. */
function forwardStatus(port: number, path: string, secret: string | undefined): Promise<number> {
  return new Promise((resolve, reject) => {
    const session = connect(`http://127.0.0.1:${String(port)}`);
    session.on('error', reject);
    const req = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/json', ...(secret === undefined ? {} : { 'x-inference-cluster-secret': secret }) });
    req.on('response', (h) => {
      resolve(Number(h[':status']));
      req.close();
      session.close();
    });
    req.on('error', reject);
    req.end('{}');
  });
}

describe('cluster.secretEnv', () => {
  it('refuses to start when the variable is not set, naming it', async () => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== SECRET_ENV));
    const err = await cluster.startNode('unset', [], undefined, env, WITH_SECRET).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/exited with 2/);
    expect((err as Error).message).toMatch(new RegExp(`cluster\\.secretEnv.*${SECRET_ENV} is not set`));
  }, 60_000);

  it('nodes sharing the secret forward to each other; the listener refuses a missing or wrong secret', async () => {
    const env = { ...process.env, [SECRET_ENV]: SECRET };
    const a = await cluster.startNode('a', [], undefined, env, WITH_SECRET);
    const b = await cluster.startNode('b', [], undefined, env, WITH_SECRET);
    const put = await putDeployment(a.url, 'solo', { runtime: 'openai', endpoint: cluster.mock.url, model: 'gpt-4o-mini', replicas: 1 });
    expect(put.status).toBe(200);
    const holder = await until('solo serving', async () => {
      const d = await deploymentView(a.url, 'solo');
      return d?.replicas.find((r) => r.state === 'serving')?.node;
    }, 60_000);
    const other = holder === 'a' ? b : a;
    const held = holder === 'a' ? a : b;
    // Accepted: the node without the replica forwards, with the secret.
    await until('forwarded request served', async () => ((await chat(other.url, 'solo')).status === 200 ? true : undefined), 30_000);
    for (let i = 0; i < 3; i++) expect((await chat(other.url, 'solo')).status).toBe(200);
    // Refused: no secret, a wrong one (same length and not), on the holder's listener.
    expect(await forwardStatus(held.advertisePort, '/no-such-route', undefined)).toBe(401);
    expect(await forwardStatus(held.advertisePort, '/no-such-route', 'x'.repeat(SECRET.length))).toBe(401);
    expect(await forwardStatus(held.advertisePort, '/no-such-route', 'wrong')).toBe(401);
    // The right secret passes the check and reaches routing.
    expect(await forwardStatus(held.advertisePort, '/no-such-route', SECRET)).toBe(404);
    // The secret never reaches the node's output.
    expect(a.output + b.output).not.toContain(SECRET);
  }, 120_000);
});
