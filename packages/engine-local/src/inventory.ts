// The addon's device inventory (GPUs: name, total/free memory, compute
// capability), read through a short-lived probe process (probe.ts) so that the
// calling process never loads the addon. Without an addon (a remote-only install)
// the answer says why and lists no GPUs; it never throws.

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findAddon, type NativeGpu, type NativeInventory } from './native.js';

export interface GpuInventory {
  readonly gpus: readonly { id: number; name: string; totalMiB: number; freeMiB: number; computeCapability: string | null }[];
  /** Where the list came from, or why it is empty. */
  readonly source: string;
}

function probeEntry(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const sibling = join(here, 'probe.js');
  return existsSync(sibling) ? sibling : join(here, '..', 'dist', 'probe.js');
}

const MIB = 1024 * 1024;

function toGpu(g: NativeGpu): GpuInventory['gpus'][number] {
  return { id: g.id, name: g.name, totalMiB: Math.floor(g.totalMemory / MIB), freeMiB: Math.floor(g.freeMemory / MIB), computeCapability: g.computeCapability };
}

function parse(stdout: string): GpuInventory {
  let doc: unknown;
  try {
    doc = JSON.parse(stdout.trim().split('\n').pop() ?? '');
  } catch {
    return { gpus: [], source: 'the inventory probe answered no JSON' };
  }
  if (typeof doc !== 'object' || doc === null) return { gpus: [], source: 'the inventory probe answered no object' };
  const o = doc as { inventory?: NativeInventory; reason?: string };
  if (o.inventory === undefined) return { gpus: [], source: o.reason ?? 'no inventory' };
  return { gpus: o.inventory.gpus.map(toGpu), source: `addon inventory (${o.inventory.backend} backend)` };
}

/** The GPUs the addon sees on this machine; env is the probe's environment (e.g. CUDA_VISIBLE_DEVICES). */
export function probeGpuInventory(options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<GpuInventory> {
  const env = options.env ?? process.env;
  if (findAddon(env) === null) return Promise.resolve({ gpus: [], source: 'native addon not built' });
  const entry = probeEntry();
  if (!existsSync(entry)) return Promise.resolve({ gpus: [], source: 'the inventory probe is not built' });
  return new Promise((resolve) => {
    execFile(process.execPath, [entry], { env, timeout: options.timeoutMs ?? 60_000, maxBuffer: 1 << 20 }, (err, stdout) => {
      if (err !== null && stdout === '') resolve({ gpus: [], source: `the inventory probe failed: ${err.message.split('\n')[0] ?? ''}` });
      else resolve(parse(stdout));
    });
  });
}
