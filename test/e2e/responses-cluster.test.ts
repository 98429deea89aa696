// Stored Responses in cluster mode: a real etcd and two gateway processes (the real
// CLI). A response created on one node is readable, continuable by
// previous_response_id, listable and deletable from the other: storage is etcd
// (under the cluster's `responses/` prefix), not the node's memory.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { TestCluster, clusterView, putDeployment, until } from '../support/cluster.js';

let cluster: TestCluster;

beforeAll(async () => {
  cluster = await TestCluster.start();
  for (const n of ['a', 'b']) await cluster.startNode(n);
  await until('two members', async () => ((await clusterView(cluster.node('a').url)).members.length === 2 ? true : undefined));
  const res = await putDeployment(cluster.node('a').url, 'gpt', { runtime: 'openai', endpoint: cluster.mock.url, model: 'gpt-4o-mini', replicas: 2 });
  expect(res.status).toBe(200);
  await until('gpt serves on both nodes', async () => {
    for (const n of ['a', 'b']) {
      const r = await fetch(`${cluster.node(n).url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'gpt', messages: [{ role: 'user', content: 'x' }], max_tokens: 1 }) });
      if (r.status !== 200) return undefined;
    }
    return true;
  });
}, 120_000);

afterAll(async () => {
  await cluster.destroy();
}, 60_000);

const client = (node: string): OpenAI => new OpenAI({ baseURL: `${cluster.node(node).url}/v1`, apiKey: 'unused', maxRetries: 0 });

describe('stored responses across nodes', () => {
  it('created on a, read, continued, listed and deleted on b', async () => {
    const first = await client('a').responses.create({ model: 'gpt', input: 'remember this', max_output_tokens: 2 });
    const got = await client('b').responses.retrieve(first.id);
    expect(got.output_text).toBe('The quick');
    const items = await client('b').responses.inputItems.list(first.id);
    expect(items.data.map((i) => (i.type === 'message' ? i.content : undefined))).toEqual([[{ type: 'input_text', text: 'remember this' }]]);
    const next = await client('b').responses.create({ model: 'gpt', previous_response_id: first.id, input: 'and this', max_output_tokens: 1 });
    expect(next.previous_response_id).toBe(first.id);
    expect(JSON.stringify(cluster.mock.stats().lastBody)).toContain('remember this');
    await client('b').responses.delete(first.id);
    expect(await client('a').responses.retrieve(first.id).catch((e: unknown) => e)).toBeInstanceOf(OpenAI.NotFoundError);
    expect((await client('a').responses.retrieve(next.id)).id).toBe(next.id);
  });
});

describe('responses.ttlSeconds in a cluster', () => {
  it("a node's stored responses leave etcd once their time is up (lease-bound); the default keeps others'", async () => {
    await cluster.startNode('c', ['responses: { ttlSeconds: 2 }']);
    await until('gpt serves on c', async () => {
      const body = JSON.stringify({ model: 'gpt', messages: [{ role: 'user', content: 'x' }], max_tokens: 1 });
      const r = await fetch(`${cluster.node('c').url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      return r.status === 200 ? true : undefined;
    });
    const brief = await client('c').responses.create({ model: 'gpt', input: 'brief', max_output_tokens: 1 });
    const kept = await client('a').responses.create({ model: 'gpt', input: 'kept', max_output_tokens: 1 });
    // Written with a lease of ttlSeconds plus one bucket (at most 2 s more): etcd drops it after that, on every node.
    await until('the short-lived response is gone from etcd', async () => {
      const e = await client('b').responses.retrieve(brief.id).catch((x: unknown) => x);
      return e instanceof OpenAI.NotFoundError ? true : undefined;
    }, 30_000, 250);
    expect((await client('b').responses.retrieve(kept.id)).id).toBe(kept.id);
  }, 90_000);
});
