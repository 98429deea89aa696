#!/usr/bin/env node
// Cost of the chat output parser on the engine host's thread: a templated chat's text is
// re-parsed (llama.cpp's common_chat_parse) at every decode step, as llama-server does.
// Prints the time per push for answers of 500 and 2000 one-word tokens, without and with
// tools (Qwen2.5's template). Usage: node test/bench/chat-parse.mjs (after pnpm build and
// node scripts/make-template-model.mjs).
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { tryLoadAddon } = await import(join(root, 'packages', 'engine-local', 'dist', 'native.js'));
const load = tryLoadAddon();
if (load.addon === null) throw new Error(load.reason);
const a = load.addon;
const e = new a.Engine({ modelPath: join(root, 'models', 'stories260K-qwen-tools.gguf'), contextSize: 64, maxSequences: 1, gpuLayers: 0, threads: 1, batchTokens: 16, embeddings: false }, () => undefined);
await e.ready();
const t = e.chatTemplates();
const tool = { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } };
for (const tools of [false, true]) {
  const p = t.apply({ messages: JSON.stringify([{ role: 'user', content: 'Hi' }]), ...(tools ? { tools: JSON.stringify([tool]) } : {}) });
  for (const n of [500, 2000]) {
    const parser = new a.ChatParser({ format: p.format, generationPrompt: p.generationPrompt, parser: p.parser, parseToolCalls: true, continuation: false });
    const t0 = performance.now();
    for (let i = 0; i < n; i++) parser.push(' word', true);
    parser.push('', false);
    const ms = performance.now() - t0;
    console.log(`tools ${tools ? 'yes' : 'no '} ${String(n).padStart(4)} pushes: ${ms.toFixed(0)} ms, ${((ms / n) * 1000).toFixed(0)} us per push`);
  }
}
e.close();
