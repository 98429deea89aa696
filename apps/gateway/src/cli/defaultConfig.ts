// The embedded default: what `inference serve` runs with no config file and no
// keys. When the native engine is built and the default model is present
// (scripts/setup.sh does both) it serves that model locally as deployment
// `stories`; otherwise (a remote-only install) deployment `mock`, backed by the
// bundled mock upstream, so the topology can still be tried with nothing else.

import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findAddon } from '@inference/engine-local';
import { startMockUpstream } from '@inference/mock-upstream';
import { type RuntimeConfig, parseConfig } from '@inference/runtime';

export interface EmbeddedDefault {
  config: RuntimeConfig;
  note?: string;
  close(): Promise<void>;
}

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
export const DEFAULT_MODEL = join(REPO_ROOT, 'models', 'stories260K.gguf');

export async function embeddedDefault(): Promise<EmbeddedDefault> {
  // Only the addon's presence is checked here: it is loaded by engine host processes, never by the gateway.
  const addon = findAddon();
  if (addon !== null && existsSync(DEFAULT_MODEL)) {
    const config = parseConfig({
      deployments: [{ name: 'stories', runtime: 'llama', model: DEFAULT_MODEL, replicas: 1, engine: { contextSize: 2048, maxSequences: 16, threads: 1 } }],
    });
    return { config, note: `deployment 'stories' serves ${DEFAULT_MODEL} on the native engine`, close: () => Promise.resolve() };
  }
  const mock = await startMockUpstream({ port: 0 });
  const config = parseConfig({
    deployments: [{ name: 'mock', runtime: 'openai', endpoint: mock.url, replicas: 2 }],
  });
  const why = addon !== null ? `the default model ${DEFAULT_MODEL} is missing` : 'the native engine is not built';
  return { config, note: `${why}; deployment 'mock' is backed by the bundled mock upstream at ${mock.url}`, close: () => mock.close() };
}
