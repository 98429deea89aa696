// The embedded default: what `inference serve` runs with no config file and no
// keys. When the native engine is built and the default model is present
// (scripts/setup.sh does both in a checkout) it serves that model locally as
// deployment `stories`; otherwise (a remote-only install) deployment `mock`,
// backed by the mock upstream when it is installed (@inference/mock-upstream, a
// development package: it is not a dependency of the gateway), so the topology
// can still be tried with nothing else.

import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findAddon } from '@inference/engine-local';
import { type RuntimeConfig, parseConfig } from '@inference/runtime';

export interface EmbeddedDefault {
  config: RuntimeConfig;
  note?: string;
  close(): Promise<void>;
}

/** Names the default model file (any GGUF); else models/stories260K.gguf of the checkout, or of the working directory. */
export const DEFAULT_MODEL_ENV = 'INFERENCE_DEFAULT_MODEL';

function defaultModel(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env[DEFAULT_MODEL_ENV];
  if (explicit !== undefined && explicit !== '') return resolve(explicit);
  // In a checkout this file is apps/gateway/dist/cli/; an installed package has no workspace above it.
  const checkout = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
  const root = existsSync(join(checkout, 'pnpm-workspace.yaml')) ? checkout : process.cwd();
  return join(root, 'models', 'stories260K.gguf');
}

export const DEFAULT_MODEL = defaultModel();

interface MockModule {
  startMockUpstream(o: { port: number }): Promise<{ url: string; close(): Promise<void> }>;
}

/** The mock upstream, when installed (a development package, loaded only here). */
async function loadMock(): Promise<MockModule | undefined> {
  const name = '@inference/mock-upstream';
  try {
    return (await import(name)) as MockModule;
  } catch {
    return undefined;
  }
}

export async function embeddedDefault(): Promise<EmbeddedDefault> {
  // Only the addon's presence is checked here: it is loaded by engine host processes, never by the gateway.
  const addon = findAddon();
  if (addon !== null && existsSync(DEFAULT_MODEL)) {
    const config = parseConfig({
      deployments: [{ name: 'stories', runtime: 'llama', model: DEFAULT_MODEL, replicas: 1, engine: { contextSize: 2048, maxSequences: 16, threads: 1 } }],
    });
    return { config, note: `deployment 'stories' serves ${DEFAULT_MODEL} on the native engine`, close: () => Promise.resolve() };
  }
  const why = addon !== null ? `the default model ${DEFAULT_MODEL} is missing` : 'the native engine is not built';
  const mod = await loadMock();
  if (mod === undefined) {
    throw new Error(`${why} and @inference/mock-upstream is not installed: give a config file (--config FILE), see docs/config.md`);
  }
  const mock = await mod.startMockUpstream({ port: 0 });
  const config = parseConfig({
    deployments: [{ name: 'mock', runtime: 'openai', endpoint: mock.url, replicas: 2 }],
  });
  return { config, note: `${why}; deployment 'mock' is backed by the bundled mock upstream at ${mock.url}`, close: () => mock.close() };
}
