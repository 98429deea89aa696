// The README's first command on a full install: `node apps/gateway/dist/cli.js
// serve` with no config serves deployment `stories` on the native engine (the
// port is 0 here so tests never collide). Through that gateway: the model list,
// a chat completion with the openai client, and /v1/embeddings on the local
// deployment. Then SIGTERM ends it with status 0.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { type CliServer, startCli } from '../support/cli.js';
import { waitFor } from '../support/deployments.js';

let cli: CliServer;
let client: OpenAI;

beforeAll(async () => {
  cli = await startCli(['--port', '0', '--quiet']);
  client = new OpenAI({ baseURL: `${cli.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  await waitFor(async () => (await fetch(`${cli.url}/ready`)).status === 200, 120_000, 'ready');
}, 180_000);
afterAll(() => {
  cli.kill();
});

describe('serve with no config', () => {
  it('serves deployment stories on the native engine', async () => {
    expect(cli.output()).toMatch(/serving stories on http:\/\//);
    expect(cli.output()).toMatch(/deployment 'stories' serves .*stories260K\.gguf on the native engine/);
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['stories']);
    const out = await client.completions.create({ model: 'stories', prompt: 'Once upon a time', max_tokens: 8 });
    expect(out.choices[0]?.text.length).toBeGreaterThan(0);
    expect(out.usage?.completion_tokens).toBeGreaterThan(0);
  });

  it('answers /v1/embeddings from the local deployment', async () => {
    const res = await client.embeddings.create({ model: 'stories', input: ['Once upon a time', 'a cat'] });
    expect(res.data.map((d) => d.index)).toEqual([0, 1]);
    const [a, b] = res.data;
    if (a === undefined || b === undefined) throw new Error('two vectors expected');
    expect(a.embedding.length).toBeGreaterThan(0);
    expect(b.embedding.length).toBe(a.embedding.length);
    expect(a.embedding.every((x) => Number.isFinite(x))).toBe(true);
    expect(a.embedding).not.toEqual(b.embedding);
    expect(res.usage.prompt_tokens).toBeGreaterThan(0);
    // base64, as the openai client asks for it by default, decodes to the same floats.
    const raw = await fetch(`${cli.url}/v1/embeddings`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'stories', input: 'Once upon a time', encoding_format: 'float' }),
    });
    expect(raw.status).toBe(200);
    const body = (await raw.json()) as { data: { embedding: number[] }[] };
    expect(body.data[0]?.embedding.length).toBe(a.embedding.length);
  });

  it('ends with status 0 on SIGTERM', async () => {
    cli.child.kill('SIGTERM');
    expect(await cli.exited).toBe(0);
  });
});
