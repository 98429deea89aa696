// The parent reports every engine host exit (hostExit.ts): exit code or signal, a bounded
// reason, and the host's last stderr lines, logged and handed to onExit. Real host, real
// addon, real stories260K (see hostClient.test.ts for the prerequisites).

import { describe, expect, it } from 'vitest';
import { EngineHost, type EngineHostOptions } from './hostClient.js';
import { type HostExit, STDERR_TAIL_BYTES, StderrTail, exitReason } from './hostExit.js';
import { MODEL } from './testModel.js';


const base: EngineHostOptions = { modelPath: MODEL, contextSize: 1024, maxSequences: 1, gpuLayers: 0, threads: 1, batchTokens: 256 };

async function started(): Promise<{ host: EngineHost; logged: string[]; exited: Promise<HostExit> }> {
  const logged: string[] = [];
  const host = await EngineHost.start({ ...base, label: 'stories/test#0', log: (t) => logged.push(t) });
  const exited = new Promise<HostExit>((r) => {
    host.onExit((_fault, _detail, exit) => {
      r(exit);
    });
  });
  return { host, logged, exited };
}

describe('engine host exits', () => {
  it('a crash signal is logged with the signal, the reason and the stderr tail', async () => {
    const { host, logged, exited } = await started();
    const pid = host.pid;
    process.kill(pid, 'SIGSEGV');
    const exit = await exited;
    expect(exit).toMatchObject({ code: null, signal: 'SIGSEGV', reason: 'SIGSEGV' });
    const line = logged.find((l) => l.startsWith('engine host '));
    expect(line).toContain(`engine host stories/test#0 (pid ${String(pid)}) killed by SIGSEGV [reason=SIGSEGV]`);
  });

  it('an exit code is logged with its reason', async () => {
    const { host, logged, exited } = await started();
    host.injectFault('Unrecoverable');
    host.generate({ prompt: 'Once upon a time' }, { maxTokens: 50, stop: [] }, new AbortController().signal, () => undefined).catch(() => undefined);
    const exit = await exited;
    expect(exit).toMatchObject({ code: 87, signal: null, reason: 'unrecoverable' });
    expect(logged.join('')).toContain('exited with code 87 [reason=unrecoverable]');
  });

  it("the host's last stderr lines come with its exit (a real ggml abort message)", async () => {
    const { host, logged, exited } = await started();
    host.injectFault('GgmlAbort');
    host.generate({ prompt: 'Once upon a time' }, { maxTokens: 50, stop: [] }, new AbortController().signal, () => undefined).catch(() => undefined);
    const exit = await exited;
    expect(exit.stderrTail).toContain('injected abort');
    const line = logged.find((l) => l.startsWith('engine host ')) ?? '';
    expect(line).toContain('last stderr:');
    expect(line).toMatch(/ {2}\| .*injected abort/);
  });

  it('close() logs nothing', async () => {
    const { host, logged } = await started();
    await host.close();
    expect(logged.filter((l) => l.startsWith('engine host '))).toEqual([]);
  });
});

describe('StderrTail and exitReason', () => {
  it('keeps at most the last 4 KiB, from a line start', () => {
    const tail = new StderrTail();
    for (let i = 0; i < 1000; i++) tail.push(Buffer.from(`line ${String(i)} ${'x'.repeat(40)}\n`));
    const text = tail.text();
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(STDERR_TAIL_BYTES);
    expect(text.length).toBeGreaterThan(STDERR_TAIL_BYTES - 100);
    expect(text.startsWith('line ')).toBe(true);
    expect(text.endsWith(`line 999 ${'x'.repeat(40)}\n`)).toBe(true);
  });

  it('maps codes and signals to a closed set', () => {
    expect(exitReason(86, null)).toBe('context_poisoned');
    expect(exitReason(87, null)).toBe('unrecoverable');
    expect(exitReason(78, null)).toBe('load_failed');
    expect(exitReason(0, null)).toBe('closed');
    expect(exitReason(3, null)).toBe('exit_code');
    expect(exitReason(null, 'SIGABRT')).toBe('SIGABRT');
    expect(exitReason(null, 'SIGUSR2')).toBe('signal');
  });
});
