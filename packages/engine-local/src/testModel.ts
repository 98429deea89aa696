// Test support, imported by test files only (tsconfig.build.json leaves it out of dist):
// where the tests find the real tiny model (stories260K) and the real addon. Whatever is
// missing fails the test file that asked for it with a clear message; nothing is skipped.

import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tryLoadAddon, type NativeAddon } from './native.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The repository's root (this file is packages/engine-local/src/testModel.ts). */
export const repoRoot = resolve(here, '..', '..', '..');

function findModel(): string {
  const shared = join(repoRoot, '..', 'shared', 'models', 'stories260K.gguf');
  const model = [process.env['INFERENCE_TEST_MODEL'], join(repoRoot, 'models', 'stories260K.gguf'), shared]
    .filter((p): p is string => p !== undefined && p !== '')
    .find((p) => existsSync(p));
  if (model === undefined) throw new Error('engine-local tests need stories260K.gguf (set INFERENCE_TEST_MODEL)');
  return model;
}

/** The path of stories260K.gguf: INFERENCE_TEST_MODEL, else the repository's models/, else the shared models/ beside the checkout. */
export const MODEL = findModel();

/** Layers to offload: scripts/gpu-check.sh runs the engine tests with every layer on the GPU (a CUDA build of the addon). */
export const GPU_LAYERS = Number(process.env['INFERENCE_TEST_GPU_LAYERS'] ?? '0');

/** The loaded native addon, or an error saying why it is not there. */
export function requireAddon(): NativeAddon {
  const load = tryLoadAddon();
  if (load.addon === null) throw new Error(`engine-local tests need the native addon: ${load.reason}`);
  return load.addon;
}

/** The engine host's entry point in this package's dist. */
export const HOST_SCRIPT = join(here, '..', 'dist', 'host.js');

/** Fails unless this package's dist holds the engine host (the tests that fork it need `pnpm build` first). */
export function requireHostBuild(): void {
  if (!existsSync(HOST_SCRIPT)) throw new Error('build @inference/engine-local first (dist/host.js missing)');
}
