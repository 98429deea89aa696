// The embedded default: what `inference serve` runs with no config file and no
// keys. It serves the bundled mock upstream as an OpenAI-compatible deployment
// named `mock` (2 replicas), so the whole topology can be tried with nothing else.

import { startMockUpstream } from '@inference/mock-upstream';
import type { RuntimeConfig } from './config.js';
import { parseConfig } from './config.js';

export interface EmbeddedDefault {
  config: RuntimeConfig;
  note?: string;
  close(): Promise<void>;
}

export async function embeddedDefault(): Promise<EmbeddedDefault> {
  const mock = await startMockUpstream({ port: 0 });
  const config = parseConfig({
    deployments: [{ name: 'mock', runtime: 'openai', endpoint: mock.url, replicas: 2 }],
  });
  return { config, note: `deployment 'mock' is backed by the bundled mock upstream at ${mock.url}`, close: () => mock.close() };
}
