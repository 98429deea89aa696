// Readiness in cluster mode, and local (llama) replicas in a cluster: a one-node
// cluster on a real etcd, started by the real CLI with a config file holding a
// remote and a local deployment. From the first /ready 200 on, every request to
// either deployment is served (none answers 404 because the catalog was not yet
// applied), and the local replica answers through the cluster's request path.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster, chat, deploymentView, sleep } from '../support/cluster.js';
import { MODEL } from '../support/cli.js';

let cluster: TestCluster;

beforeAll(async () => {
  cluster = await TestCluster.start();
}, 120_000);

afterAll(async () => {
  await cluster.destroy();
}, 60_000);

describe('a one-node cluster on etcd', () => {
  it('answers /ready 200 only once the config file deployments serve', async () => {
    const node = await cluster.startNode('solo', [
      'deployments:',
      `  - { name: gpt, runtime: openai, endpoint: "${cluster.mock.url}", model: gpt-4o-mini, replicas: 1 }`,
      `  - { name: stories, runtime: llama, model: "${MODEL}", replicas: 1, engine: { contextSize: 1024, maxSequences: 2, threads: 1 } }`,
    ]);
    const deadline = Date.now() + 120_000;
    const seen: number[] = [];
    for (;;) {
      const res = await fetch(`${node.url}/ready`);
      seen.push(res.status);
      if (res.status === 200) break;
      expect(res.status).toBe(503);
      const body = (await res.json()) as { ready: boolean; waiting: string[] };
      expect(body.ready).toBe(false);
      expect(body.waiting.length).toBeGreaterThan(0);
      if (Date.now() > deadline) throw new Error(`never ready: ${node.output}`);
      await sleep(10);
    }
    // At once, without any further wait: every request is served.
    const answers = await Promise.all([
      ...Array.from({ length: 5 }, () => chat(node.url, 'gpt')),
      ...Array.from({ length: 3 }, () => chat(node.url, 'stories')),
    ]);
    expect(answers.map((a) => a.status)).toEqual(Array.from({ length: 8 }, () => 200));
    console.log(`[cluster] /ready polls before 200: ${String(seen.length)}`);
  }, 180_000);

  it('serves a local (llama) deployment in cluster mode, and scales it through the cluster admin', async () => {
    const url = cluster.node('solo').url;
    const d = await deploymentView(url, 'stories');
    expect(d?.replicas.filter((r) => r.state === 'serving').map((r) => r.node)).toEqual(['solo']);
    const stream = await fetch(`${url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'stories', prompt: 'Once upon a time', max_tokens: 16, stream: true }),
    });
    expect(stream.status).toBe(200);
    const text = await stream.text();
    expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true);
    expect(text).toMatch(/"finish_reason":"(length|stop)"/);
    const scaled = await fetch(`${url}/admin/deployments/stories/scale`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ replicas: 2 }),
    });
    expect(scaled.status).toBe(200);
    const deadline = Date.now() + 120_000;
    for (;;) {
      const v = await deploymentView(url, 'stories');
      if ((v?.replicas.filter((r) => r.state === 'serving').length ?? 0) === 2) break;
      if (Date.now() > deadline) throw new Error(`two local replicas never served: ${JSON.stringify(v)}`);
      await sleep(100);
    }
    const answers = await Promise.all(Array.from({ length: 4 }, () => chat(url, 'stories')));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200]);
  }, 180_000);
});
