// A runtime of one's own: an in-process "echo" model served through the gateway
// with the built-in runtimes' routing, supervision, budgets, metrics and status
// page. `supervisedRuntime` gives each replica a supervised resource (here a
// trivial one); a crash of the runner's code restarts the resource within the
// restart budget. Run it with
//   node --experimental-strip-types examples/custom-runner.ts   (Node >= 22.6)
// or through its test (pnpm --filter @inference/examples test).

import { type RunnerDefinition, parseConfig, serve, supervisedRuntime } from '@inference/gateway';
import OpenAI from 'openai';

/** The resource a replica holds: here only a counter; a real one holds a client or a model. */
interface Echo {
  readonly generation: number;
  served: number;
}

const echo: RunnerDefinition<Echo> = {
  open: (_spec, generation) => Promise.resolve({ generation, served: 0 }),
  generate: async (resource, req, ctx, sink) => {
    const last = req.kind === 'chat' ? (req.messages.at(-1)?.content ?? '') : req.prompt;
    const words = last.split(/\s+/).filter((w) => w !== '').slice(0, req.sampling.maxTokens ?? 64);
    let text = '';
    for (const [i, word] of words.entries()) {
      if (ctx.signal.aborted) break;
      const piece = i === 0 ? word : ` ${word}`;
      text += piece;
      sink({ index: 0, text: piece, tokens: 1 });
      await new Promise((r) => setImmediate(r));
    }
    resource.served++;
    return { choices: [{ index: 0, text, finishReason: 'stop' }], usage: { promptTokens: words.length, completionTokens: words.length } };
  },
  capacity: 8,
};

export async function main(log: (line: string) => void = console.log): Promise<string> {
  const runtimes = { echo: supervisedRuntime(echo) };
  // Configs name the registered runtime like a built-in one.
  const config = parseConfig({ server: { port: 0 }, deployments: [{ name: 'echo', runtime: 'echo', replicas: 2 }] }, { runtimes });
  const server = await serve(config, { runtimes });
  try {
    log(`serving on ${server.url}`);
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'not-needed' });
    const stream = await client.chat.completions.create({
      model: 'echo',
      messages: [{ role: 'user', content: 'hello from my own runner' }],
      stream: true,
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    log(`answer: ${text}`);
    const status = await server.runtime.get('echo');
    log(`replicas: ${status.replicas.map((r) => `${r.id}=${r.state}`).join(', ')}`);
    return text;
  } finally {
    await server.close();
  }
}

if (process.argv[1]?.endsWith('custom-runner.ts') === true) await main();
