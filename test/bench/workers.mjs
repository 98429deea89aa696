// Where one gateway process saturates, and what `serve --workers N` adds: the same
// remote deployment (replicas: N, so every worker holds one and forwards nothing)
// served by one process and by N workers, in front of the same mock; closed-loop
// max RPS non-streamed and streamed (streamed completion tokens/s = RPS x 16, the
// mock's answer), sides interleaved over rounds in rotated order. The load
// generator and the mock run on the same machine: on a small one they take cores
// the workers would use, so read the ratio against `nproc`.
//
//   node test/bench/workers.mjs [--workers 2] [--rounds 3] [--seconds 3] [--concurrency 128]
import { mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { fmtStats, interleaved, maxRps, saveRaw, startProcess, stats } from './lib.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { values } = parseArgs({
  options: {
    workers: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '128' },
  },
});
const workers = Number(values.workers);
const rounds = Number(values.rounds);
const seconds = Number(values.seconds);
const concurrency = Number(values.concurrency);

const mock = await startProcess('node', [join(root, 'packages/mock-upstream/dist/cli.js'), '--port', '0'], /listening (\S+)/);
const cfg = join(mkdtempSync(join(tmpdir(), 'bench-workers-')), 'config.yaml');
const deployment = `replicas: ${workers}, remote: { maxConcurrent: 512, maxQueue: 100000 }`;
writeFileSync(cfg, `server: { port: 0 }\ndeployments:\n  - { name: mock, runtime: openai, endpoint: ${mock.url}, ${deployment} }\n`);
const cli = join(root, 'apps/gateway/dist/cli.js');
const single = await startProcess('node', [cli, 'serve', '--config', cfg, '--quiet'], /on (http:\/\/\S+)/);
const multi = await startProcess('node', [cli, 'serve', '--config', cfg, '--quiet', '--workers', String(workers)], /on (http:\/\/\S+)/);
// Let the leader place a replica on every worker.
await new Promise((r) => setTimeout(r, 3000));
const origins = { '1 process': single.url, [`${workers} workers`]: multi.url };

const results = {};
try {
  for (const stream of [false, true]) {
    const body = JSON.stringify({ model: 'mock', messages: [{ role: 'user', content: 'Say something short please' }], max_tokens: 16, ...(stream ? { stream: true } : {}) });
    results[stream ? 'streamed' : 'non-streamed'] = await interleaved(Object.keys(origins), rounds, (side) => maxRps(origins[side], '/v1/chat/completions', body, { concurrency, seconds, stream }));
  }
} finally {
  await multi.stop();
  await single.stop();
  await mock.stop();
}

console.log(`workers — ${cpus().length} cores; ${rounds} rounds, sides rotated; ${seconds}s closed loop at concurrency ${concurrency} per side and round; deployment mock: runtime openai, ${deployment}; serve --quiet`);
for (const [mode, r] of Object.entries(results)) {
  console.log(`\n[${mode}]`);
  for (const [side, rows] of Object.entries(r)) {
    const rps = stats(rows.map((x) => x.rps));
    const extra = mode === 'streamed' ? `   completion tokens/s ${fmtStats(stats(rows.map((x) => x.rps * 16)), 0)}` : '';
    console.log(`  ${side.padEnd(12)} max RPS ${fmtStats(rps, 0)}${extra}   (errors ${rows.reduce((a, x) => a + x.errors, 0)})`);
  }
  const [a, b] = Object.values(r);
  console.log(`  ratio ${workers} workers / 1 process: ${fmtStats(stats(b.map((x, i) => x.rps / a[i].rps)))}x`);
}
console.log(`\nraw rounds: ${saveRaw('workers', { settings: { workers, rounds, seconds, concurrency, deployment }, results })}`);
