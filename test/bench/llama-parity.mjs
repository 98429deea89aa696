#!/usr/bin/env node
// Side by side with llama.cpp's llama-server, built from the same pinned source
// (node scripts/build-llama-tools.mjs; this script builds nothing). Same templated model
// (models/stories260K-qwen-tools.gguf, scripts/make-template-model.mjs), llama-server
// with --jinja, greedy chat requests with and without tools. Prints, per case, whether
//  - the rendered prompts are identical (llama-server's /apply-template against the
//    addon's ChatTemplates.apply, the code the engine host renders with);
//  - the greedy outputs are identical (content, and tool calls parsed to the same JSON);
//  - top_logprobs agree to 1e-3 (same tokens, log-probabilities within 1e-3; two
//    candidates whose log-probabilities are within 1e-3 of each other may come in either
//    order, and the last place may hold either of them);
// and, beside those, whether both servers counted the same prompt tokens (the gateway's
// prompt is rendered on the engine host, not by this script), and whether the streamed
// answers agree: each case again with stream: true (no logprobs: llama-server refuses
// them with tools and stream), the content deltas and tool-call deltas joined per call
// as a client joins them; on each side the streamed answer must equal the non-streamed
// one, and the two sides' streamed answers must equal each other.
// A named tool_choice ({type: 'function', function: {name}}) is compared where it can be:
// llama-server has no named choice (it reads a non-string tool_choice as 'auto'), and the
// engine renders only the named tool and forces a call to it, so llama-server renders the
// same conversation with that one tool and 'required', and (as 'required, same grammar')
// generates from the engine's prompt and grammar.
// Both engines run with the same numerics: one thread, flash attention off (the engine's
// CPU default; llama-server's default is auto), context 1024, one sequence.
// The prompts and both servers' answers go to docs/bench-raw/llama-parity.json.
// Exits 1 when any case differs.
// Usage: node test/bench/llama-parity.mjs   (after pnpm build, node scripts/build-llama-tools.mjs
//        and node scripts/make-template-model.mjs)
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, saveRaw, startProcess, startServer } from './lib.mjs';

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
const TIME = {
  type: 'function',
  function: {
    name: 'get_time', description: 'Current time in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
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
  // The engine forces a required call from the first token (one call when
  // parallel_tool_calls is false); llama.cpp's own grammar for this template lets free
  // text precede the call and repeats it (docs/chat-templates.md), so here the outputs
  // differ by design. The next case gives llama-server the engine's grammar.
  { name: 'tools, required', body: { messages: MESSAGES, tools: [WEATHER], tool_choice: 'required', parallel_tool_calls: false, max_tokens: 96 }, divergence: "the engine's grammar forces the call first; llama.cpp's admits free text before it" },
  { name: 'required, same grammar', body: { messages: MESSAGES, tools: [WEATHER], tool_choice: 'required', parallel_tool_calls: false, max_tokens: 96 }, sameGrammar: true },
  {
    name: 'named, same grammar',
    body: {
      messages: MESSAGES, tools: [WEATHER, TIME], tool_choice: { type: 'function', function: { name: 'get_weather' } },
      parallel_tool_calls: false, max_tokens: 96,
    },
    llamaBody: { messages: MESSAGES, tools: [WEATHER], tool_choice: 'required', parallel_tool_calls: false, max_tokens: 96 },
    sameGrammar: true,
  },
  // llama.cpp's chat layer lets a response format replace the tools (its grammar admits only
  // the JSON, in or out of a Markdown fence); the engine's admits a call or the unfenced JSON
  // (docs/chat-templates.md). When the greedy model answers JSON both agree; a call only the engine can make.
  {
    name: 'tools + json_schema',
    body: {
      messages: MESSAGES, tools: [WEATHER], tool_choice: 'auto', parallel_tool_calls: false, max_tokens: 48,
      response_format: {
        type: 'json_schema',
        json_schema: { name: 'sky', schema: { type: 'object', properties: { sky: { enum: ['sunny', 'rainy'] } }, required: ['sky'] } },
      },
    },
    divergence: "llama.cpp drops the tools when a response format is set; the engine's grammar admits a call or the JSON",
  },
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
    apply: (b) => {
      // A named choice renders only that tool and forces it (packages/engine-local/src/localEngineCore.ts, toolSelection).
      const named = typeof b.tool_choice === 'object' ? b.tool_choice.function.name : undefined;
      const tools = named === undefined ? b.tools : b.tools.filter((x) => x.function.name === named);
      const schema = b.response_format?.json_schema?.schema;
      return t.apply({
        ...(schema !== undefined ? { jsonSchema: JSON.stringify(schema) } : {}),
        messages: JSON.stringify(b.messages),
        ...(tools !== undefined ? { tools: JSON.stringify(tools) } : {}),
        toolChoice: named !== undefined ? 'required' : (b.tool_choice ?? 'auto'),
        parallelToolCalls: b.parallel_tool_calls ?? true,
      });
    },
    close: () => e.close(),
  };
}

const calls = (m) => JSON.stringify((m.tool_calls ?? []).map((c) => ({ name: c.function.name, arguments: JSON.parse(c.function.arguments) })));

/** The SSE `data:` payloads of a streamed POST, parsed (until [DONE]). */
async function streamEvents(origin, path, body) {
  const init = { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...body, stream: true }) };
  const res = await fetch(`${origin}${path}`, init);
  if (!res.ok) throw new Error(`${origin}${path} (stream): ${res.status} ${await res.text()}`);
  const events = [];
  for (const line of (await res.text()).split('\n')) {
    if (!line.startsWith('data: ')) continue;
    const data = line.slice(6).trim();
    if (data === '[DONE]') break;
    const ev = JSON.parse(data);
    if (ev.error !== undefined) throw new Error(`${origin}${path} (stream): ${JSON.stringify(ev.error)}`);
    events.push(ev);
  }
  return events;
}

/** A streamed chat answer as a client joins it: content, and each call's name and arguments by index. */
async function streamedChat(origin, body) {
  let content = '';
  let finish = null;
  const byIndex = [];
  for (const ev of await streamEvents(origin, '/v1/chat/completions', body)) {
    const ch = ev.choices?.[0];
    if (ch === undefined) continue;
    if (typeof ch.delta?.content === 'string') content += ch.delta.content;
    for (const d of ch.delta?.tool_calls ?? []) {
      const c = (byIndex[d.index] ??= { function: { name: '', arguments: '' } });
      if (d.function?.name) c.function.name += d.function.name;
      if (d.function?.arguments) c.function.arguments += d.function.arguments;
    }
    if (ch.finish_reason) finish = ch.finish_reason;
  }
  return { content, tool_calls: byIndex.filter((c) => c !== undefined), finish };
}

/** A streamed completion's text, joined. */
async function streamedText(origin, body) {
  let text = '';
  let finish = null;
  for (const ev of await streamEvents(origin, '/v1/completions', body)) {
    const ch = ev.choices?.[0];
    if (ch === undefined) continue;
    if (typeof ch.text === 'string') text += ch.text;
    if (ch.finish_reason) finish = ch.finish_reason;
  }
  return { text, finish };
}

/** The call in llama-server's raw completion text (the template's <tool_call> JSON), as a chat message. */
function callOf(text) {
  const m = /<tool_call>\s*(\{[\s\S]*\})\s*(?:<\/tool_call>|<\/tool_ca|$)/.exec(text);
  const call = m === null ? null : JSON.parse(m[1]);
  return { content: null, tool_calls: call === null ? [] : [{ function: { name: call.name, arguments: JSON.stringify(call.arguments) } }] };
}

/** Same content and the same calls (arguments compared as JSON). */
const sameAnswer = (x, y) => (x.content ?? '') === (y.content ?? '') && calls(x) === calls(y);

/**
 * Compares two `logprobs.content` lists: the sampled tokens must be the same, their
 * log-probabilities within TOL, and so must every top candidate's. Candidates whose
 * log-probabilities are within TOL of each other may come in either order, and one
 * that only one side lists must sit within TOL of the other side's last place.
 */
function compareLogprobs(a, b) {
  const x = a?.content ?? [];
  const y = b?.content ?? [];
  let worst = 0;
  let reordered = 0;
  const problems = [];
  if (x.length !== y.length) problems.push(`${x.length} vs ${y.length} tokens`);
  if (x.length === 0 || y.length === 0) problems.push('no logprobs');
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i].token !== y[i].token) problems.push(`token ${i}: ${JSON.stringify(x[i].token)} vs ${JSON.stringify(y[i].token)}`);
    worst = Math.max(worst, Math.abs(x[i].logprob - y[i].logprob));
    const tx = x[i].top_logprobs ?? [];
    const ty = y[i].top_logprobs ?? [];
    if (tx.length !== ty.length || tx.length === 0) problems.push(`token ${i}: ${tx.length} vs ${ty.length} top_logprobs`);
    const mx = new Map(tx.map((t) => [t.token, t.logprob]));
    const my = new Map(ty.map((t) => [t.token, t.logprob]));
    for (let j = 0; j < Math.min(tx.length, ty.length); j++) {
      if (tx[j].token !== ty[j].token) reordered++;
    }
    for (const [tok, lx] of mx) {
      const ly = my.get(tok);
      if (ly !== undefined) {
        worst = Math.max(worst, Math.abs(lx - ly));
      } else if (ty.length === 0 || Math.abs(lx - ty[ty.length - 1].logprob) > TOL) {
        problems.push(`token ${i}: candidate ${JSON.stringify(tok)} (${lx}) only on llama-server`);
      }
    }
    for (const [tok, ly] of my) {
      if (!mx.has(tok) && (tx.length === 0 || Math.abs(ly - tx[tx.length - 1].logprob) > TOL)) {
        problems.push(`token ${i}: candidate ${JSON.stringify(tok)} (${ly}) only in ours`);
      }
    }
  }
  if (worst > TOL) problems.push(`max |diff| ${worst} above ${TOL}`);
  return { ok: problems.length === 0, worst, reordered, n: Math.min(x.length, y.length), problems };
}

const port = await freePort();
const LLAMA_ARGS = ['--jinja', '-c', String(CTX), '-np', '1', '-t', '1', '-tb', '1', '-fa', 'off', '--no-webui'];
const ENGINE = { contextSize: CTX, maxSequences: 1, threads: 1 };
const llama = await startServer(SERVER, ['-m', MODEL, ...LLAMA_ARGS, '--port', String(port), '--host', '127.0.0.1'], port);
const cfg = join(mkdtempSync(join(tmpdir(), 'parity-')), 'config.yaml');
writeFileSync(cfg, `server: { port: 0 }\ndeployments:\n  - name: m\n    runtime: llama\n    model: ${MODEL}\n    replicas: 1\n    engine: ${JSON.stringify(ENGINE)}\n`);
const gw = await startProcess('node', [join(root, 'apps/gateway/dist/cli.js'), 'serve', '--config', cfg, '--quiet'], /on (http:\/\/\S+)/);
const ours = await ourRenderer();
let allOk = true;
const raw = [];
try {
  const deadline = Date.now() + 120_000;
  while (!(await fetch(`${gw.url}/ready`).then((r) => r.ok, () => false))) {
    if (Date.now() > deadline) throw new Error('the gateway did not become ready in 120 s');
    await new Promise((r) => setTimeout(r, 500));
  }
  console.log(`llama-parity: ${MODEL.slice(root.length + 1)}, llama-server --jinja vs the gateway, temperature 0, top_logprobs ${TOP}, tolerance ${TOL}`);
  console.log(`settings: llama-server ${LLAMA_ARGS.join(' ')}; gateway serve --quiet, deployment engine ${JSON.stringify(ENGINE)} (flash attention off: the engine's CPU default); load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  for (const c of CASES) {
    const theirsPrompt = (await post(llama.origin, '/apply-template', c.llamaBody ?? c.body)).prompt;
    const rendered = ours.apply(c.body);
    const oursPrompt = rendered.prompt;
    const body = { ...c.body, temperature: 0, logprobs: true, top_logprobs: TOP };
    const b = await post(gw.url, '/v1/chat/completions', { ...body, model: 'm' });
    let a;
    let sa;
    if (c.sameGrammar) {
      // llama-server takes the engine's rendered prompt and grammar on /v1/completions; it
      // does not feed a user grammar the generation prompt, so that prefix leaves the root
      // rule. Its text is then parsed as the template's <tool_call> JSON.
      const grammar = rendered.grammar.replace(/^root ::= "(?:[^"\\]|\\.)*" /m, 'root ::= ');
      const t = await post(llama.origin, '/v1/completions', { prompt: oursPrompt, grammar, temperature: 0, max_tokens: c.body.max_tokens, logprobs: TOP, model: 'm' });
      a = { ...t, choices: [{ ...t.choices[0], message: callOf(t.choices[0].text) }] };
      const st = await streamedText(llama.origin, { prompt: oursPrompt, grammar, temperature: 0, max_tokens: c.body.max_tokens, model: 'm' });
      sa = { ...callOf(st.text), finish: st.finish };
    } else {
      a = await post(llama.origin, '/v1/chat/completions', { ...body, model: 'm' });
      sa = await streamedChat(llama.origin, { ...c.body, temperature: 0, model: 'm' });
    }
    const sb = await streamedChat(gw.url, { ...c.body, temperature: 0, model: 'm' });
    const ma = a.choices[0].message;
    const mb = b.choices[0].message;
    const prompt = theirsPrompt === oursPrompt;
    const promptTokens = a.usage?.prompt_tokens === b.usage?.prompt_tokens;
    const content = (ma.content ?? '') === (mb.content ?? '');
    const tools = calls(ma) === calls(mb);
    const lp = compareLogprobs(a.choices[0].logprobs, b.choices[0].logprobs);
    const streamA = sameAnswer(sa, ma) && sa.finish === a.choices[0].finish_reason;
    const streamB = sameAnswer(sb, mb) && sb.finish === b.choices[0].finish_reason;
    const streamAB = sameAnswer(sa, sb);
    const streamed = streamA && streamB && streamAB;
    const ok = prompt && promptTokens && content && tools && lp.ok && streamed;
    if (c.divergence === undefined) allOk &&= ok;
    raw.push({
      case: c.name, request: body, ok,
      ...(c.divergence !== undefined ? { knownDivergence: c.divergence } : {}),
      ...(c.sameGrammar ? { llamaServerGot: 'the engine\'s rendered prompt and grammar on /v1/completions' } : {}),
      prompt: { identical: prompt, llamaServer: theirsPrompt, ours: oursPrompt },
      streamed: { llamaServerSelf: streamA, gatewaySelf: streamB, bothSame: streamAB, llamaServer: sa, gateway: sb },
      logprobs: { ok: lp.ok, maxAbsDiff: lp.worst, tokens: lp.n, reorderedWithinTolerance: lp.reordered, problems: lp.problems },
      llamaServer: a,
      gateway: b,
    });
    console.log(
      `${c.name.padEnd(18)} prompt ${prompt ? 'identical' : 'DIFFERENT'} (${a.usage?.prompt_tokens}/${b.usage?.prompt_tokens} tokens)` +
        ` | output ${content ? 'identical' : 'DIFFERENT'} (${a.usage?.completion_tokens}/${b.usage?.completion_tokens} tokens)` +
        ` | tool calls ${tools ? 'same JSON' : 'DIFFERENT'} (${(ma.tool_calls ?? []).length}/${(mb.tool_calls ?? []).length})` +
        ` | top_logprobs ${lp.ok ? 'agree' : 'DISAGREE'} (max |diff| ${lp.worst.toExponential(2)} over ${lp.n} tokens${lp.reordered > 0 ? `, ${lp.reordered} candidates in another place` : ''})` +
        ` | finish ${a.choices[0].finish_reason}/${b.choices[0].finish_reason}` +
        ` | streamed ${streamed ? 'identical' : 'DIFFERENT'} (llama-server ${streamA ? '=' : '!='} its answer, gateway ${streamB ? '=' : '!='} its answer,` +
        ` ${streamAB ? 'same' : 'different'} between them)`,
    );
    if (!streamed) console.log(`  streamed llama-server: ${JSON.stringify(sa)}\n  streamed gateway:      ${JSON.stringify(sb)}`);
    if (c.divergence !== undefined && !ok) console.log(`  known divergence: ${c.divergence}`);
    if (!prompt) console.log(`  llama-server: ${JSON.stringify(theirsPrompt)}\n  ours:         ${JSON.stringify(oursPrompt)}`);
    if (!content) console.log(`  llama-server: ${JSON.stringify(ma.content)}\n  ours:         ${JSON.stringify(mb.content)}`);
    if (!tools) console.log(`  llama-server: ${calls(ma)}\n  ours:         ${calls(mb)}`);
    for (const p of lp.problems.slice(0, 5)) console.log(`  logprobs: ${p}`);
  }
  console.log(allOk ? `llama-parity: all identical${CASES.some((c) => c.divergence !== undefined) ? ' (beside the known divergence above)' : ''}` : 'llama-parity: differences above');
  console.log(`raw: ${saveRaw('llama-parity', { settings: { model: MODEL.slice(root.length + 1), llamaServer: LLAMA_ARGS, engine: ENGINE, topLogprobs: TOP, tolerance: TOL }, allIdentical: allOk, cases: raw })}`);
  if (!allOk) process.exitCode = 1;
} finally {
  ours.close();
  await gw.stop();
  await llama.stop();
}
