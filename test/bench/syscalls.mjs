// What the proxies ask of the kernel per request, and where the scheduler takes
// them off the CPU: the floor proxy (floor-proxy.mjs), the gateway (and, with
// `--baseline DIR`, another built checkout's gateway) in front of the same mock,
// each under the same closed loop in turn, non-streamed and streamed.
//
// Per side: `strace -c -f` (every thread) gives the system calls per request by
// name; `perf record -e sched:sched_switch -g` on the main thread counts the
// switches where it was still runnable (preempted), by where it was: at the exit
// of which system call, or in user code on a timer or reschedule interrupt. A
// sampling profiler that runs on wall time (V8's --cpu-prof) charges the wait
// after such a preemption to the call that was running, so a writev that wakes a
// peer on loopback and is preempted on its way out looks slower than it is.
// Needs strace and perf (either missing: that part is left out); prints only.
// `--rate N` replaces the closed loop with an open one at N requests per second (the
// proxies then wait between requests: what each request costs in wakeups shows).
//
//   node test/bench/syscalls.mjs [--seconds 3] [--concurrency 64] [--rate N] [--baseline DIR]
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { fixedRate, maxRps, startGatewayFor, startMockAndGateway, startProcess } from './lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: { seconds: { type: 'string', default: '3' }, concurrency: { type: 'string', default: '64' }, rate: { type: 'string' }, baseline: { type: 'string' } },
});
const rate = values.rate === undefined ? undefined : Number(values.rate);
const seconds = Number(values.seconds);
const concurrency = Number(values.concurrency);
const has = (cmd) => spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0;
const tools = { strace: has('strace'), perf: has('perf') };
const work = mkdtempSync(join(tmpdir(), 'syscalls-'));

const { mock, mockOrigin, gw, stop, settings } = await startMockAndGateway();
const floor = await startProcess('node', [join(here, 'floor-proxy.mjs'), mockOrigin], /on (http:\/\/\S+)/);
const baseline = values.baseline === undefined ? undefined : await startGatewayFor(mock.url, {}, values.baseline);
const sides = { floor, gateway: gw, ...(baseline === undefined ? {} : { baseline }) };
const messages = [{ role: 'user', content: 'Say something short please' }];
const body = (stream) => JSON.stringify({ model: 'mock', messages, max_tokens: 16, ...(stream ? { stream: true } : {}) });

/** Runs `cmd` attached to the load, then stops it with SIGINT (both tools write their results then). */
async function underLoad(cmd, args, origin, stream) {
  const tool = cmd === undefined ? undefined : spawn(cmd, args, { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 500));
  const r = rate === undefined
    ? await maxRps(origin, '/v1/chat/completions', body(stream), { concurrency, seconds, stream })
    : await fixedRate(origin, '/v1/chat/completions', body(stream), { rps: rate, seconds, stream });
  if (tool !== undefined) {
    tool.kill('SIGINT');
    await new Promise((res) => tool.once('exit', res));
  }
  return r.n + r.errors;
}

/** `strace -c` summary rows: calls by system call. */
function straceCalls(file) {
  const out = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const c = line.trim().split(/\s+/);
    if (c.length >= 5 && /^\d/.test(c[0]) && c[c.length - 1] !== 'total') out[c[c.length - 1]] = Number(c[3]);
  }
  return out;
}

/** Preempted switches of the traced thread, by where it was. */
function preemptions(file) {
  const text = spawnSync('perf', ['script', '-i', file], { encoding: 'utf8', maxBuffer: 1 << 30 }).stdout;
  const out = {};
  for (const ev of text.split('\n\n')) {
    if (!/prev_state=R\+? /.test(ev.split('\n')[0] ?? '')) continue;
    let where = 'other';
    const libc = /\s[0-9a-f]+ ([A-Za-z_0-9]+)\+0x[0-9a-f]+ \(\S*libc/.exec(ev)?.[1]?.replace(/^__GI___|^__libc_|^__/, '');
    if (ev.includes('do_syscall_64')) where = `exit of ${libc ?? '?'}`;
    else if (ev.includes('apic_timer')) where = 'user code, timer interrupt';
    else if (ev.includes('reschedule_ipi')) where = 'user code, reschedule interrupt';
    out[where] = (out[where] ?? 0) + 1;
  }
  return out;
}

const per = (counts, n, top = 6) => Object.entries(counts).sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, v]) => `${k} ${(v / n).toFixed(2)}`).join(', ');

const onOff = (t) => (t ? 'on' : 'missing');
const load = rate === undefined ? `${seconds}s closed loop at concurrency ${concurrency} per side and tool` : `${seconds}s open loop at ${rate} RPS per side and tool`;
console.log(`syscalls and preemptions per request — ${load}; strace ${onOff(tools.strace)}, perf ${onOff(tools.perf)}`);
console.log(`gateway settings: ${settings}`);
for (const stream of [false, true]) {
  console.log(`\n[${stream ? 'streamed' : 'non-streamed'}]`);
  for (const [name, s] of Object.entries(sides)) {
    const origin = new URL(s.url).origin;
    const pid = String(s.child.pid);
    await maxRps(origin, '/v1/chat/completions', body(stream), { concurrency, seconds: 1, stream });
    if (tools.strace) {
      const file = join(work, `strace-${name}-${stream}.txt`);
      const n = await underLoad('strace', ['-c', '-f', '-q', '-o', file, '-p', pid], origin, stream);
      console.log(`  ${name.padEnd(9)} system calls per request (${n} requests, every thread): ${per(straceCalls(file), n, 8)}`);
    }
    if (tools.perf) {
      const file = join(work, `sched-${name}-${stream}.data`);
      const n = await underLoad('perf', ['record', '-q', '-o', file, '-e', 'sched:sched_switch', '-g', '-t', pid], origin, stream);
      const p = preemptions(file);
      const all = Object.values(p).reduce((a, b) => a + b, 0);
      console.log(`  ${name.padEnd(9)} preempted per request (${n} requests, main thread): ${(all / n).toFixed(2)}: ${per(p, n)}`);
    }
  }
}
await floor.stop();
await baseline?.stop();
await stop();
