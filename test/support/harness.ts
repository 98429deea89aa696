// Test harness: a mock upstream plus a gateway served through the library entry
// point on port 0, torn down together.

import { type Server, parseConfig, serve } from '@inference/gateway';
import { type MockUpstream, type MockUpstreamOptions, startMockUpstream } from '@inference/mock-upstream';
import OpenAI from 'openai';

export interface Harness {
  mock: MockUpstream;
  server: Server;
  client: OpenAI;
  url: string;
  close(): Promise<void>;
}

export async function startHarness(opts: { replicas?: number; mock?: MockUpstreamOptions; extraDeployments?: unknown[]; credentials?: () => string | undefined; bodyLimitBytes?: number } = {}): Promise<Harness> {
  const mock = await startMockUpstream({ port: 0, ...opts.mock });
  const config = parseConfig({
    server: { port: 0, ...(opts.bodyLimitBytes === undefined ? {} : { bodyLimitBytes: opts.bodyLimitBytes }) },
    deployments: [{ name: 'gpt', runtime: 'openai', endpoint: mock.url, model: 'gpt-4o-mini', replicas: opts.replicas ?? 2 }, ...(opts.extraDeployments ?? [])],
  });
  const credentials = opts.credentials;
  const server = await serve(config, credentials === undefined ? {} : { credentials: () => ({ apiKey: credentials() }) });
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  return {
    mock,
    server,
    client,
    url: server.url,
    close: async () => {
      await server.close();
      await mock.close();
    },
  };
}

/** Reads an SSE response body and returns its `data:` payloads. */
export async function sseData(res: Response): Promise<string[]> {
  const text = await res.text();
  return text.split('\n\n').filter((b) => b.startsWith('data: ')).map((b) => b.slice(6));
}

export async function metricValue(url: string, name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (want.every((w) => line.includes(w))) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}
