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

export async function startHarness(opts: { replicas?: number; gpt?: Record<string, unknown>; mock?: MockUpstreamOptions; extraDeployments?: unknown[] | ((mockUrl: string) => unknown[]); credentials?: () => string | undefined; bodyLimitBytes?: number } = {}): Promise<Harness> {
  const mock = await startMockUpstream({ port: 0, ...opts.mock });
  const config = parseConfig({
    server: { port: 0, ...(opts.bodyLimitBytes === undefined ? {} : { bodyLimitBytes: opts.bodyLimitBytes }) },
    deployments: [{ name: 'gpt', runtime: 'openai', endpoint: mock.url, model: 'gpt-4o-mini', replicas: opts.replicas ?? 2, ...opts.gpt }, ...(typeof opts.extraDeployments === 'function' ? opts.extraDeployments(mock.url) : (opts.extraDeployments ?? []))],
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

/** Reads an SSE response body and returns its named events with parsed data. */
export async function sseEvents(res: Response): Promise<{ event: string; data: Record<string, unknown> }[]> {
  const text = await res.text();
  return text.split('\n\n').filter((b) => b.startsWith('event: ')).map((b) => {
    const lines = b.split('\n');
    const data = lines.filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
    return { event: (lines[0] ?? '').slice(7), data: JSON.parse(data) as Record<string, unknown> };
  });
}
