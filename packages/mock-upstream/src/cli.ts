#!/usr/bin/env node
// mock-upstream: run the mock as a standalone process. Prints `listening <url>` (the /v1
// base URL) on stdout once ready; steer it over /_mock/*; SIGINT/SIGTERM close it.

import { parseArgs } from 'node:util';
import { startMockUpstream, type MockUpstreamOptions } from './upstream.js';

const USAGE = `usage: mock-upstream [--port N] [--host H] [--tls] [--api-key KEY] [--rpm N]
  --port N       TCP port (default 0: a free one)
  --host H       interface to bind (default 127.0.0.1)
  --tls          HTTPS + HTTP/2 with the bundled localhost certificate
  --api-key KEY  require this key (Authorization: Bearer / x-api-key)
  --rpm N        answer 429 past N requests per sliding minute
`;

function integer(name: string, text: string | undefined, min: number): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min) throw new Error(`--${name} must be an integer >= ${min}, got '${text}'`);
  return value;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      tls: { type: 'boolean' },
      'api-key': { type: 'string' },
      rpm: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help === true) {
    process.stdout.write(USAGE);
    return;
  }
  const options: MockUpstreamOptions = {
    port: integer('port', values.port, 0) ?? 0,
    tls: values.tls === true,
  };
  if (values.host !== undefined) options.host = values.host;
  if (values['api-key'] !== undefined) options.apiKey = values['api-key'];
  const rpm = integer('rpm', values.rpm, 1);
  if (rpm !== undefined) options.rpm = rpm;

  const mock = await startMockUpstream(options);
  process.stdout.write(`listening ${mock.url}\n`);
  const stop = (): void => {
    mock.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`mock-upstream: ${error instanceof Error ? error.message : String(error)}\n${USAGE}`);
  process.exit(2);
});
