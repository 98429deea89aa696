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
import { isServeWorker, reportServing, runPrimary, workerCluster } from './cli/workers.js';

const USAGE = `usage: inference serve [--config FILE] [--port N] [--host H] [--quiet] [--workers N] [--allow-open-admin]
                       [--cluster etcd://HOST:PORT[,HOST:PORT] --node-name NAME --advertise HOST:PORT]
${CLIENT_COMMANDS_USAGE}

serve options:
  --config FILE   YAML config (see README); without it, the embedded default
  --port N        listen port (overrides server.port; 0 = any free port)
  --host H        listen address (overrides server.host)
  --quiet         no request logs
  --allow-open-admin  serve the admin API without admin keys on a non-loopback
                  address (server.allowOpenAdmin; refused otherwise)
  --cluster URL   join a cluster through etcd (overrides cluster.etcd; docs/cluster.md)
  --node-name N   this node's unique name in the cluster (overrides cluster.nodeName)
  --advertise A   HOST:PORT other nodes forward requests to (overrides cluster.advertise)
  --workers N     serve on N processes (N cores) sharing the port, budgets and limits
                  (docs/cluster.md; not with --cluster)

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
  let values: {
    config?: string;
    port?: string;
    host?: string;
    quiet?: boolean;
    'allow-open-admin'?: boolean;
    cluster?: string;
    'node-name'?: string;
    advertise?: string;
    workers?: string;
  };
  try {
    ({ values } = parseArgs({
      args: rest,
      options: {
        config: { type: 'string' }, port: { type: 'string' }, host: { type: 'string' }, quiet: { type: 'boolean' }, 'allow-open-admin': { type: 'boolean' },
        cluster: { type: 'string' }, 'node-name': { type: 'string' }, advertise: { type: 'string' }, workers: { type: 'string' },
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
  let workers: number | undefined;
  if (values.workers !== undefined) {
    workers = Number(values.workers);
    if (!Number.isInteger(workers) || workers < 2 || workers > 1024) fail(`--workers: expected 2..1024, got '${values.workers}'`);
    if (values.cluster !== undefined || values['node-name'] !== undefined || values.advertise !== undefined) {
      fail('--workers cannot be combined with --cluster, --node-name or --advertise');
    }
  }
  if (workers !== undefined && !isServeWorker()) {
    // The primary: check the config here so that a bad one fails once, then fork.
    if (values.config !== undefined) {
      const checked = await loadConfigFile(values.config);
      if (checked.cluster !== undefined) fail('--workers cannot be combined with a cluster: block in the config');
    }
    const code = await runPrimary(workers, (line) => { process.stdout.write(`inference: ${line}\n`); });
    process.exit(code);
  }
  const worker = isServeWorker() ? workerCluster() : undefined;
  const embedded = values.config === undefined ? await embeddedDefault() : undefined;
  const config = embedded?.config ?? (await loadConfigFile(values.config ?? ''));
  let cluster: ClusterConfig | undefined = worker?.cluster;
  try {
    cluster ??= resolveCluster(config.cluster, { cluster: values.cluster, nodeName: values['node-name'], advertise: values.advertise });
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
    allowOpenAdmin: values['allow-open-admin'] === true,
    ...(cluster === undefined ? {} : { cluster }),
    // A worker's own replicas are in its process; another worker's are a loopback hop away.
    ...(worker === undefined ? {} : { coordination: worker.coordination, preferLocal: true }),
  });
  if (worker !== undefined) {
    // The primary prints one line once every worker serves.
    reportServing(server.url);
  } else {
    if (cluster !== undefined) process.stdout.write(`inference: node ${cluster.nodeName} joined cluster '${cluster.name}' (advertise ${cluster.advertise})\n`);
    process.stdout.write(`inference: serving ${config.deployments.map((d) => d.name).join(', ') || 'no deployments'} on ${server.url}\n`);
  }
  if (embedded?.note !== undefined) process.stdout.write(`inference: ${embedded.note}\n`);
  // SIGTERM/SIGINT: drain (in-flight requests finish, new ones get 503), then close and exit 0.
  // A second signal, or a close that hangs past the bound, ends the process at once.
  let closing = false;
  const shutdown = (signal: string): void => {
    if (closing) {
      process.stdout.write(`inference: ${signal} again, exiting now\n`);
      process.exit(1);
    }
    closing = true;
    const bound = config.server.drainTimeoutMs;
    process.stdout.write(`inference: ${signal}, draining ${String(server.inFlight())} requests (at most ${String(bound)} ms)\n`);
    setTimeout(() => {
      process.stderr.write('inference: shutdown did not complete after the drain bound; exiting\n');
      process.exit(1);
    }, bound + 15_000).unref();
    void server.drain(bound)
      .then((drained) => {
        process.stdout.write(drained ? 'inference: drained\n' : `inference: drain bound reached, ending ${String(server.inFlight())} requests\n`);
        return Promise.all([server.close(), embedded?.close()]);
      })
      .then(() => process.exit(0));
  };
  // SIGHUP re-reads the TLS certificates and keys (they are also watched).
  process.on('SIGHUP', () => {
    process.stdout.write(`inference: SIGHUP, ${server.reloadTls() ? 'new certificates in use' : 'certificates unchanged'}\n`);
  });
  process.on('SIGINT', () => { shutdown('SIGINT'); });
  process.on('SIGTERM', () => { shutdown('SIGTERM'); });
}

main(process.argv.slice(2)).catch((e: unknown) => {
  if (e instanceof InferenceError) fail(e.message);
  fail(e instanceof Error ? (e.stack ?? e.message) : String(e));
});
