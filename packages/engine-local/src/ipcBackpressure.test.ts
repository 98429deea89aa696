// IPC back-pressure of the engine host (docs/flow-control.md): a parent that stops
// reading the channel makes the host hold its sequences, so what waits for the parent
// stays bounded and the engine stops decoding; once the parent reads again everything
// completes, nothing lost. The real host (dist/host.js) with the real addon and model,
// started the way fork() starts it (NODE_CHANNEL_FD), but with the channel's socket in
// the test's hands so that reading it can be paused without blocking the event loop.

import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { SequenceHolds } from './ipcBackpressure.js';
import type { NativeStats } from './native.js';
import type { HostStepItem, HostToParent, ParentToHost } from './protocol.js';
import { HOST_SCRIPT, MODEL } from './testModel.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The host's CPU time so far (utime + stime, in clock ticks). */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** Waits until the process has used no CPU for `quietPolls` polls in a row (it waits on something). */
async function quiescent(pid: number, quietPolls = 10, everyMs = 100, maxMs = 120_000): Promise<void> {
  const deadline = Date.now() + maxMs;
  let last = cpuTicks(pid);
  let quiet = 0;
  while (quiet < quietPolls) {
    if (Date.now() > deadline) throw new Error('the host never went quiet');
    await sleep(everyMs);
    const now = cpuTicks(pid);
    quiet = now === last ? quiet + 1 : 0;
    last = now;
  }
}

class RawHost {
  readonly child: ChildProcess;
  readonly socket: Socket;
  /** Bytes read from the channel so far. */
  bytes = 0;
  private buf = '';
  private readonly listeners: ((m: HostToParent, bytesBefore: number) => void)[] = [];

  constructor() {
    this.child = spawn(process.execPath, [HOST_SCRIPT], {
      stdio: ['ignore', 'inherit', 'inherit', 'pipe'],
      env: { ...process.env, NODE_CHANNEL_FD: '3', NODE_CHANNEL_SERIALIZATION_MODE: 'json' },
    });
    this.socket = this.child.stdio[3] as Socket;
    this.socket.setEncoding('utf8');
    this.socket.on('data', (d: string) => {
      this.buf += d;
      for (let nl = this.buf.indexOf('\n'); nl >= 0; nl = this.buf.indexOf('\n')) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        const before = this.bytes;
        this.bytes += Buffer.byteLength(line) + 1;
        const m = JSON.parse(line) as HostToParent;
        for (const l of this.listeners) l(m, before);
      }
    });
  }

  send(m: ParentToHost): void {
    this.socket.write(`${JSON.stringify(m)}\n`);
  }

  on(l: (m: HostToParent, bytesBefore: number) => void): void {
    this.listeners.push(l);
  }

  next<T extends HostToParent>(pred: (m: HostToParent) => m is T): Promise<{ m: T; bytesBefore: number }> {
    return new Promise((resolve) => {
      this.on((m, bytesBefore) => { if (pred(m)) resolve({ m, bytesBefore }); });
    });
  }
}

let host: RawHost | undefined;
afterEach(() => {
  host?.child.kill('SIGKILL');
  host = undefined;
});

describe('the engine host under a parent that stops reading', () => {
  it('holds its sequences while the channel is backed up, and completes them all once it drains', { timeout: 120_000 }, async () => {
    const h = new RawHost();
    host = h;
    const ready = h.next((m): m is Extract<HostToParent, { t: 'ready' }> => m.t === 'ready');
    h.send({ t: 'init', config: { modelPath: MODEL, contextSize: 4096, maxSequences: 4, gpuLayers: 0, threads: 1, batchTokens: 256, embeddings: false } });
    await ready;

    const SEQS = 4;
    const MAX = 1000;
    const tokens = new Map<number, number>();
    const done = new Map<number, HostStepItem>();
    h.on((m) => {
      if (m.t !== 'step') return;
      for (const it of m.items) {
        tokens.set(it.id, (tokens.get(it.id) ?? 0) + it.n);
        if (it.done !== undefined || it.error !== undefined) done.set(it.id, it);
      }
    });
    // Large steps (20 alternatives per token) fill the channel quickly.
    for (let id = 1; id <= SEQS; id++) {
      h.send({ t: 'gen', id, input: { prompt: 'Once upon a time' }, params: { maxTokens: MAX, temperature: 0.8, seed: id, stop: [], logprobs: 20 } });
    }
    h.socket.pause();
    // The parent reads nothing now. A host that holds its sequences goes quiet with
    // little decoded; one that does not decodes everything into its queue first.
    const pid = h.child.pid ?? -1;
    await quiescent(pid);
    const readBeforeResume = h.bytes;
    const stats = h.next((m): m is Extract<HostToParent, { t: 'stats' }> => m.t === 'stats');
    h.send({ t: 'stats', rid: 1 });
    h.socket.resume();
    const { m: snapshot, bytesBefore } = await stats;
    const s: NativeStats = snapshot.stats;
    // What the host had queued for us when it went quiet (its answer waited behind it).
    const backlog = bytesBefore - readBeforeResume;
    process.stdout.write(`ipc backpressure: sampled ${s.totalSampledTokens} of ${SEQS * MAX} tokens while held; backlog ${backlog} bytes\n`);
    expect(s.totalSampledTokens).toBeLessThan((SEQS * MAX) / 2);
    expect(backlog).toBeLessThan(2 * 1024 * 1024);
    // Reading again, every sequence resumes and completes, nothing lost.
    for (let i = 0; i < 1200 && done.size < SEQS; i++) await sleep(100);
    expect(done.size).toBe(SEQS);
    for (let id = 1; id <= SEQS; id++) {
      expect(done.get(id)).toMatchObject({ done: 'length', completionTokens: MAX });
      expect(tokens.get(id)).toBe(MAX);
    }
  });
});

describe('SequenceHolds', () => {
  function recorder(): { log: string[]; holds: SequenceHolds } {
    const log: string[] = [];
    return { log, holds: new SequenceHolds({ pause: (id) => log.push(`pause ${id}`), resume: (id) => log.push(`resume ${id}`) }) };
  }

  it('holds every live sequence while the channel is backed up, and new ones at once', () => {
    const { log, holds } = recorder();
    holds.started(1);
    holds.started(2);
    holds.channel(true);
    holds.started(3);
    expect(log).toEqual(['pause 1', 'pause 2', 'pause 3']);
    log.length = 0;
    holds.ended(2);
    holds.channel(false);
    expect(log).toEqual(['resume 1', 'resume 3']);
  });

  it("keeps a sequence its parent paused paused when the channel drains, and resumes it only once both let go", () => {
    const { log, holds } = recorder();
    holds.started(1);
    holds.parent(1, true);
    holds.channel(true);
    holds.channel(false);
    expect(log).toEqual(['pause 1']);
    holds.channel(true);
    holds.parent(1, false);
    expect(log).toEqual(['pause 1']); // the channel still holds it
    holds.channel(false);
    expect(log).toEqual(['pause 1', 'resume 1']);
  });

  it('forgets ended sequences (bounded by the generations in flight)', () => {
    const { log, holds } = recorder();
    holds.started(1);
    holds.parent(1, true);
    holds.ended(1);
    holds.parent(1, false);
    holds.parent(7, true);
    expect(holds.size).toBe(0);
    expect(log).toEqual(['pause 1']);
  });
});
