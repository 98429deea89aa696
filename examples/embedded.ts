// The runtime as a library: build the whole actor topology from a config object,
// serve it, and talk to it with the official openai SDK. Run it with
//   node --experimental-strip-types examples/embedded.ts   (Node >= 22.6)
// or through its test (pnpm --filter @inference/examples test).

import { parseConfig, serve } from '@inference/gateway';
import { startMockUpstream } from '@inference/mock-upstream';
import OpenAI from 'openai';

export async function main(log: (line: string) => void = console.log): Promise<string> {
  // Any OpenAI-compatible upstream works; the bundled mock keeps this self-contained.
  const upstream = await startMockUpstream({ port: 0 });

  // The same keys as the YAML config file (docs/config.md), as an object.
  const config = parseConfig({
    server: { port: 0 },
    deployments: [{ name: 'assistant', runtime: 'openai', endpoint: upstream.url, replicas: 2 }],
  });

  const server = await serve(config);
  try {
    log(`serving on ${server.url}`);
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'not-needed' });
    const stream = await client.chat.completions.create({
      model: 'assistant',
      messages: [{ role: 'user', content: 'Tell me something.' }],
      max_completion_tokens: 6,
      stream: true,
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    log(`answer: ${text}`);

    // Deployments can be changed at run time, as the admin API does.
    const status = await server.runtime.get('assistant');
    log(`replicas: ${status.replicas.map((r) => `${r.id}=${r.state}`).join(', ')}`);
    return text;
  } finally {
    await server.close();
    await upstream.close();
  }
}

if (process.argv[1]?.endsWith('embedded.ts') === true) await main();
