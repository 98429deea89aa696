// The accelerated soak, short: a few minutes of the churn of test/bench/soak-accelerated.mjs
// (3 nodes on a real etcd, 1 s budget and rate windows, deployments applied, scaled and
// removed, engine hosts killed, a node restarted, slow and disconnecting
// clients). It fails when any sampled series grows (the script's --check: a
// significant least-squares slope on the troughs, of at least the series' least
// growth per minute, whose predicted growth exceeds an absolute floor and a share
// of the series' level; the heap is the live heap after a full collection). The
// criterion, the long run and its figures: docs/benchmarks.md, "Accelerated soak".

import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../support/cli.js';

const MINUTES = Number(process.env.SOAK_MINUTES ?? '5');

describe('accelerated soak', () => {
  it(`nothing grows over ${String(MINUTES)} minutes of churn`, async () => {
    const child = spawn(process.execPath, [
      join(ROOT, 'test', 'bench', 'soak-accelerated.mjs'),
      '--minutes', String(MINUTES), '--sample', '5', '--restart-every', '60', '--warmup', '0.4', '--check',
    ], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d: string) => { out += d; });
    child.stderr.on('data', (d: string) => { out += d; });
    const code = await new Promise<number | null>((resolve) => { child.once('exit', resolve); });
    console.log(out.slice(-6000));
    const verdicts = out.split('\n').filter((l) => / (flat|GROWS)$/.test(l));
    expect(verdicts).toHaveLength(9);
    expect(verdicts.filter((l) => l.endsWith('GROWS'))).toEqual([]);
    expect(out).toMatch(/node restarts: [1-9]/);
    expect(out).toMatch(/deployments churned: [1-9]/);
    expect(code).toBe(0);
  }, (MINUTES * 60 + 240) * 1000);
});
