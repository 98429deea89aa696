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
