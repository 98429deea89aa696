#!/usr/bin/env node
// Side by side with llama.cpp's llama-server, built from the same pinned source
// (node scripts/build-llama-tools.mjs; this script builds nothing). Same templated model
// (models/stories260K-qwen-tools.gguf, scripts/make-template-model.mjs), llama-server
// with --jinja, greedy chat requests with and without tools. Prints, per case, whether
//  - the rendered prompts are identical (llama-server's /apply-template against the
//    addon's ChatTemplates.apply, the code the engine host renders with);
//  - the greedy outputs are identical (content, and tool calls parsed to the same JSON);
//  - top_logprobs agree to 1e-3 (same tokens, log-probabilities within 1e-3).
// Usage: node test/bench/llama-parity.mjs   (after pnpm build)
import { existsSync } from 'node:fs';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startProcess, startServer } from './lib.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const MODEL = join(root, 'models', 'stories260K-qwen-tools.gguf');
const SERVER = join(root, 'native', 'vendor', 'tools-build', 'bin', 'llama-server');
const CTX = 1024;
const TOP = 5;
const TOL = 1e-3;

if (!existsSync(SERVER)) throw new Error(`${SERVER} missing: run node scripts/build-llama-tools.mjs`);
if (!existsSync(MODEL)) throw new Error(`${MODEL} missing: run node scripts/make-template-model.mjs`);

const WEATHER = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather of a city',
    parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } }, required: ['city', 'unit'] },
  },
};
const MESSAGES = [
  { role: 'system', content: 'You are a storyteller.' },
  { role: 'user', content: 'Tell me about a little dog and the weather in Paris.' },
];
const LOOP = [
  ...MESSAGES,
  { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris","unit":"celsius"}' } }] },
  { role: 'tool', tool_call_id: 'call_1', content: 'Sunny, 21C' },
];
const CASES = [
  { name: 'plain chat', body: { messages: MESSAGES, max_tokens: 48 } },
  { name: 'tools, auto', body: { messages: MESSAGES, tools: [WEATHER], tool_choice: 'auto', parallel_tool_calls: false, max_tokens: 48 } },
  { name: 'tools, required', body: { messages: MESSAGES, tools: [WEATHER], tool_choice: 'required', parallel_tool_calls: false, max_tokens: 96 } },
  { name: 'tool result turn', body: { messages: LOOP, tools: [WEATHER], tool_choice: 'none', parallel_tool_calls: false, max_tokens: 48 } },
];

async function post(origin, path, body) {
  const res = await fetch(`${origin}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const json = await res.json();
  if (!res.ok) throw new Error(`${origin}${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** Our rendering: the addon's ChatTemplates over the same model, as the engine host calls it. */
async function ourRenderer() {
  const { tryLoadAddon } = await import(join(root, 'packages', 'engine-local', 'dist', 'native.js'));
  const load = tryLoadAddon();
  if (load.addon === null) throw new Error(load.reason);
  const e = new load.addon.Engine({ modelPath: MODEL, contextSize: 64, maxSequences: 1, gpuLayers: 0, threads: 1, batchTokens: 16, embeddings: false }, () => undefined);
  await e.ready();
  const t = e.chatTemplates();
  return {
    render: (b) => t.apply({
      messages: JSON.stringify(b.messages),
      ...(b.tools !== undefined ? { tools: JSON.stringify(b.tools) } : {}),
      toolChoice: b.tool_choice ?? 'auto',
      parallelToolCalls: b.parallel_tool_calls ?? true,
    }).prompt,
    close: () => e.close(),
  };
}

const calls = (m) => JSON.stringify((m.tool_calls ?? []).map((c) => ({ name: c.function.name, arguments: JSON.parse(c.function.arguments) })));

function compareLogprobs(a, b) {
  const x = a?.content ?? [];
  const y = b?.content ?? [];
  let worst = 0;
  let sameTokens = x.length === y.length && x.length > 0;
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i].token !== y[i].token) sameTokens = false;
    worst = Math.max(worst, Math.abs(x[i].logprob - y[i].logprob));
    const tx = x[i].top_logprobs;
    const ty = y[i].top_logprobs;
    for (let j = 0; j < Math.min(tx.length, ty.length); j++) {
      if (tx[j].token !== ty[j].token) sameTokens = false;
      worst = Math.max(worst, Math.abs(tx[j].logprob - ty[j].logprob));
    }
  }
  return { ok: sameTokens && worst <= TOL, worst, n: Math.min(x.length, y.length) };
}

const port = await freePort();
const llama = await startServer(SERVER, ['-m', MODEL, '--jinja', '-c', String(CTX), '-np', '1', '--port', String(port), '--host', '127.0.0.1', '-t', '1', '--no-webui'], port);
const cfg = join(mkdtempSync(join(tmpdir(), 'parity-')), 'config.yaml');
writeFileSync(cfg, `server: { port: 0 }\ndeployments:\n  - name: m\n    runtime: llama\n    model: ${MODEL}\n    replicas: 1\n    engine: { contextSize: ${CTX}, maxSequences: 1, threads: 1 }\n`);
const gw = await startProcess('node', [join(root, 'apps/gateway/dist/cli.js'), 'serve', '--config', cfg, '--quiet'], /on (http:\/\/\S+)/);
const ours = await ourRenderer();
let allOk = true;
try {
  for (const g of [0, 1, 2]) {
    const ready = await fetch(`${gw.url}/ready`).then((r) => r.ok, () => false);
    if (ready) break;
    await new Promise((r) => setTimeout(r, 1000 * (g + 1)));
  }
  console.log(`llama-parity: ${MODEL.slice(root.length + 1)}, llama-server --jinja vs the gateway, temperature 0, top_logprobs ${TOP}, tolerance ${TOL}`);
  for (const c of CASES) {
    const theirsPrompt = (await post(llama.origin, '/apply-template', c.body)).prompt;
    const oursPrompt = ours.render(c.body);
    const body = { ...c.body, temperature: 0, logprobs: true, top_logprobs: TOP };
    const a = await post(llama.origin, '/v1/chat/completions', { ...body, model: 'm' });
    const b = await post(gw.url, '/v1/chat/completions', { ...body, model: 'm' });
    const ma = a.choices[0].message;
    const mb = b.choices[0].message;
    const prompt = theirsPrompt === oursPrompt;
    const content = (ma.content ?? '') === (mb.content ?? '');
    const tools = calls(ma) === calls(mb);
    const lp = compareLogprobs(a.choices[0].logprobs, b.choices[0].logprobs);
    allOk &&= prompt && content && tools && lp.ok;
    console.log(
      `${c.name.padEnd(18)} prompt ${prompt ? 'identical' : 'DIFFERENT'} | output ${content ? 'identical' : 'DIFFERENT'}` +
        ` | tool calls ${tools ? 'same JSON' : 'DIFFERENT'} (${(ma.tool_calls ?? []).length}/${(mb.tool_calls ?? []).length})` +
        ` | top_logprobs ${lp.ok ? 'agree' : 'DISAGREE'} (max |diff| ${lp.worst.toExponential(2)} over ${lp.n} tokens)` +
        ` | finish ${a.choices[0].finish_reason}/${b.choices[0].finish_reason}`,
    );
    if (!prompt) console.log(`  llama-server: ${JSON.stringify(theirsPrompt)}\n  ours:         ${JSON.stringify(oursPrompt)}`);
    if (!content) console.log(`  llama-server: ${JSON.stringify(ma.content)}\n  ours:         ${JSON.stringify(mb.content)}`);
  }
  console.log(allOk ? 'llama-parity: all identical' : 'llama-parity: differences above');
} finally {
  ours.close();
  await gw.stop();
  await llama.stop();
}
