// A remote replica's own work per request, this build against another built checkout
// (`--baseline DIR`), in tight loops without sockets: RemoteReplica.generate (admission,
// the reliability layer, the worker's context, the OpenAI provider, the upstream call's
// handler) over a pool whose dispatch answers at once with the bytes the mock upstream
// sends for a 16-token chat completion; streamed, each chunk is also rendered as the
// client's stream renders it (ChunkWriter.text where the chunk carries TEXT_JSON, else
// ChunkWriter.delta). undici itself is left out: the fake pool calls the handler's
// callbacks directly, in whichever style the build's handler takes. Each build runs in
// a child process of its own, the builds alternate in rotated rounds, and the figure is
// the process CPU time (user + system) per request: less moved by other work on the
// machine than wall time. Median (min..max) over the rounds.
//
//   node test/bench/remote-replica-micro.mjs --baseline DIR [--rounds 4] [--requests 40000]
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const here = fileURLToPath(import.meta.url);
const root = join(dirname(here), '..', '..');
const { values } = parseArgs({
  options: {
    baseline: { type: 'string' },
    rounds: { type: 'string', default: '4' },
    requests: { type: 'string', default: '40000' },
    child: { type: 'string' },
    mode: { type: 'string' },
  },
});

if (values.child !== undefined) {
  await child(values.child, values.mode === 'stream', Number(values.requests));
  process.exit(0);
}
if (values.baseline === undefined) throw new Error('--baseline DIR: a built checkout to compare with');

const sides = [['this build', root], ['baseline', values.baseline]];
const results = {};
for (let r = 0; r < Number(values.rounds); r++) {
  for (let i = 0; i < sides.length; i++) {
    const [name, dir] = sides[(i + r) % sides.length];
    for (const mode of ['stream', 'whole']) {
      const out = execFileSync(process.execPath, [here, '--child', dir, '--mode', mode, '--requests', values.requests], { encoding: 'utf8' });
      ((results[mode] ??= {})[name] ??= []).push(Number(out.trim()));
    }
  }
}
const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const mode of ['stream', 'whole']) {
  const line = sides.map(([name]) => {
    const xs = results[mode][name];
    return `${name} ${med(xs).toFixed(2)} (${Math.min(...xs).toFixed(2)}..${Math.max(...xs).toFixed(2)})`;
  });
  const ratio = med(results[mode]['this build']) / med(results[mode].baseline);
  console.log(`${mode === 'stream' ? 'streamed, rendered' : 'non-streamed'}: CPU µs per request   ${line.join('   ')}   this/baseline ${ratio.toFixed(2)}x`);
}

async function child(dir, stream, n) {
  const load = (p) => import(pathToFileURL(join(dir, p)).href);
  const er = await load('packages/engine-remote/dist/index.js');
  const core = await load('packages/core/dist/index.js');
  const actors = await load('packages/actors/dist/index.js');
  const { startMockUpstream } = await import(pathToFileURL(join(root, 'packages/mock-upstream/dist/index.js')).href);
  const mock = await startMockUpstream();
  const content = 'Say something short please';
  const res = await fetch(`${mock.url}/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'mock', messages: [{ role: 'user', content }], max_tokens: 16, stream, ...(stream ? { stream_options: { include_usage: true } } : {}) }),
  });
  const bytes = Buffer.from(await res.arrayBuffer());
  await mock.close();
  const ctrl = { pause() {}, resume() {}, abort() {} };
  const dispatch = (_opts, h) => {
    if (typeof h.onConnect === 'function') {
      h.onConnect(() => {});
      h.onHeaders(200, [], () => {}, 'OK');
      h.onData(bytes);
      h.onComplete([]);
    } else {
      h.onRequestStart(ctrl, {});
      h.onResponseStart(ctrl, 200, {});
      h.onResponseData(ctrl, bytes);
      h.onResponseEnd(ctrl, {});
    }
    return true;
  };
  const spec = core.parseDeployment({ name: 'mock', runtime: 'openai', endpoint: 'http://127.0.0.1:9', replicas: 1, remote: { maxConcurrent: 512, maxQueue: 100000, maxRetries: 0 } });
  const system = new actors.ActorSystem();
  const c = new er.RemoteEngineCoreActor(spec, { credentials: () => ({ apiKey: 'k' }), registry: new er.ReliabilityRegistry() });
  const ref = system.spawn('replica', () => c, { mailbox: 4096 });
  await ref.started();
  const replica = new er.RemoteReplica('mock#1', 'mock', ref, c);
  const req = { kind: 'chat', model: 'mock', sampling: { stop: [], n: 1, maxTokens: 16 }, stream, includeUsage: false, passthrough: {}, messages: [{ role: 'user', content }] };
  const run = (sink) => replica.generate(req, { requestId: 'r', signal: new core.Cancellation() }, sink);
  // The first call opens the session; then its pool answers in place.
  await run(() => {}).catch(() => undefined);
  c.worker.peek().pool.dispatch = dispatch;
  const textJson = core.TEXT_JSON;
  let bytesOut = 0;
  const one = () => {
    const w = new core.ChunkWriter('chat', 'chatcmpl-1', 1, 'mock');
    let role = true;
    return run((ch) => {
      if (!stream) return;
      const json = textJson === undefined ? undefined : ch[textJson];
      bytesOut += (json !== undefined ? w.text(ch.index, json, role) : w.delta(ch.index, role ? { role: true, text: ch.text } : { text: ch.text })).length;
      role = false;
    });
  };
  for (let i = 0; i < n / 2; i++) await one();
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) await one();
  const cu = process.cpuUsage(c0);
  if (stream && bytesOut === 0) throw new Error('nothing rendered');
  console.log(((cu.user + cu.system) / n).toFixed(3));
  await system.stop();
}
