#!/usr/bin/env node
// The `inference` command line: `inference serve [--config FILE] [--port N]`
// runs the server (without --config, the embedded default: cli/defaultConfig.ts);
// `deploy | get | list | scale | remove` talk to a running one (cli/cliCommands.ts).

import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { InferenceError } from '@inference/core';
import { CLIENT_COMMANDS_USAGE, CLIENT_OPTIONS_USAGE, isClientCommand, runClientCommand } from './cli/cliCommands.js';
import { CliError } from './cli/cliClient.js';
import { type ClusterConfig, loadConfigFile, resolveCluster } from '@inference/runtime';
import { embeddedDefault } from './cli/defaultConfig.js';
import { serve } from './serve.js';

const USAGE = `usage: inference serve [--config FILE] [--port N] [--host H] [--quiet]
                       [--cluster etcd://HOST:PORT[,HOST:PORT] --node-name NAME --advertise HOST:PORT]
${CLIENT_COMMANDS_USAGE}

serve options:
  --config FILE   YAML config (see README); without it, the embedded default
  --port N        listen port (overrides server.port; 0 = any free port)
  --host H        listen address (overrides server.host)
  --quiet         no request logs
  --cluster URL   join a cluster through etcd (overrides cluster.etcd; docs/cluster.md)
  --node-name N   this node's unique name in the cluster (overrides cluster.nodeName)
  --advertise A   HOST:PORT other nodes forward requests to (overrides cluster.advertise)

${CLIENT_OPTIONS_USAGE}`;

function fail(message: string): never {
  process.stderr.write(`inference: ${message}\n`);
  process.exit(2);
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h') {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (isClientCommand(command)) {
    try {
      const text = await runClientCommand(command, rest, readStdin);
      process.stdout.write(`${text}\n`);
    } catch (e) {
      if (e instanceof CliError) {
        process.stderr.write(`inference ${command}: ${e.message}\n`);
        process.exit(1);
      }
      throw e;
    }
    return;
  }
  if (command !== 'serve') fail(`unknown command '${command}'\n${USAGE}`);
  let values: { config?: string; port?: string; host?: string; quiet?: boolean; cluster?: string; 'node-name'?: string; advertise?: string };
  try {
    ({ values } = parseArgs({
      args: rest,
      options: {
        config: { type: 'string' }, port: { type: 'string' }, host: { type: 'string' }, quiet: { type: 'boolean' },
        cluster: { type: 'string' }, 'node-name': { type: 'string' }, advertise: { type: 'string' },
      },
      strict: true,
    }));
  } catch (e) {
    fail(`${e instanceof Error ? e.message : String(e)}\n${USAGE}`);
  }
  let port: number | undefined;
  if (values.port !== undefined) {
    port = Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port: expected 0..65535, got '${values.port}'`);
  }
  const embedded = values.config === undefined ? await embeddedDefault() : undefined;
  const config = embedded?.config ?? (await loadConfigFile(values.config ?? ''));
  let cluster: ClusterConfig | undefined;
  try {
    cluster = resolveCluster(config.cluster, { cluster: values.cluster, nodeName: values['node-name'], advertise: values.advertise });
  } catch (e) {
    fail(e instanceof Error ? e.message : String(e));
  }
  // Model loading prints one line per quarter, per replica.
  const shown = new Map<string, number>();
  const onLoadProgress = (deployment: string, replica: string, model: string, fraction: number): void => {
    const key = `${deployment}/${replica}`;
    const step = Math.floor(fraction * 4);
    if ((shown.get(key) ?? -1) >= step) return;
    shown.set(key, step);
    process.stdout.write(`inference: loading ${basename(model)} for ${key}: ${String(step * 25)}%\n`);
  };
  const server = await serve(config, {
    onLoadProgress,
    ...(port === undefined ? {} : { port }),
    ...(values.host === undefined ? {} : { host: values.host }),
    logger: values.quiet !== true,
    ...(cluster === undefined ? {} : { cluster }),
  });
  if (cluster !== undefined) process.stdout.write(`inference: node ${cluster.nodeName} joined cluster '${cluster.name}' (advertise ${cluster.advertise})\n`);
  process.stdout.write(`inference: serving ${config.deployments.map((d) => d.name).join(', ') || 'no deployments'} on ${server.url}\n`);
  if (embedded?.note !== undefined) process.stdout.write(`inference: ${embedded.note}\n`);
  let closing = false;
  const shutdown = (signal: string): void => {
    if (closing) return;
    closing = true;
    process.stdout.write(`inference: ${signal}, draining\n`);
    void Promise.all([server.close(), embedded?.close()]).then(() => process.exit(0));
  };
  process.on('SIGINT', () => { shutdown('SIGINT'); });
  process.on('SIGTERM', () => { shutdown('SIGTERM'); });
}

main(process.argv.slice(2)).catch((e: unknown) => {
  if (e instanceof InferenceError) fail(e.message);
  fail(e instanceof Error ? (e.stack ?? e.message) : String(e));
});
