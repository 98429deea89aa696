// The CLI's client commands: `inference deploy FILE|-`, `get NAME`, `list`,
// `scale NAME N`, `remove NAME`, each against a running server's admin API
// (--server URL, default http://127.0.0.1:8080; the admin key from
// $INFERENCE_ADMIN_KEY). Arguments are validated before any request; every
// failure is a CliError whose message the CLI prints as is.

import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { AdminClient, CliError } from './cliClient.js';
import { renderDeployment, renderList } from './cliFormat.js';
import { adminKeyFromEnv } from '@inference/runtime';

export const CLIENT_COMMANDS = ['deploy', 'get', 'list', 'scale', 'remove'] as const;
export type ClientCommand = (typeof CLIENT_COMMANDS)[number];

export const DEFAULT_SERVER_URL = 'http://127.0.0.1:8080';

export const CLIENT_COMMANDS_USAGE = `       inference deploy FILE|-      apply deployments from YAML/JSON (one, a list, or {deployments: [...]})
       inference get NAME           a deployment's desired and actual state, per replica
       inference list               all deployments
       inference scale NAME N       set the desired replica count
       inference remove NAME        remove a deployment (in-flight requests finish)`;

export const CLIENT_OPTIONS_USAGE = `client options:
  --server URL    the running server (default ${DEFAULT_SERVER_URL})
  --json          print the server's JSON instead of a table
  $INFERENCE_ADMIN_KEY, when set, is sent as the admin key`;

export function isClientCommand(c: string): c is ClientCommand {
  return (CLIENT_COMMANDS as readonly string[]).includes(c);
}

async function readInput(file: string, stdin: () => Promise<string>): Promise<string> {
  if (file === '-') return stdin();
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    throw new CliError(`cannot read ${file}: ${e instanceof Error && 'code' in e ? String(e.code) : String(e)}`);
  }
}

/** The deployments in a deploy file: one object, a list, or a config-like {deployments: [...]}. */
export function deploymentsIn(text: string, source: string): { name: string; body: Record<string, unknown> }[] {
  let doc: unknown;
  try {
    doc = parseYaml(text, { strict: true, uniqueKeys: true });
  } catch (e) {
    throw new CliError(`${source} is not valid YAML or JSON: ${e instanceof Error ? (e.message.split('\n')[0] ?? '') : ''}`);
  }
  if (typeof doc === 'object' && doc !== null && !Array.isArray(doc) && 'deployments' in doc) doc = (doc).deployments;
  const list: unknown[] = Array.isArray(doc) ? doc : [doc];
  if (list.length === 0) throw new CliError(`${source} holds no deployments`);
  return list.map((d, i) => {
    if (typeof d !== 'object' || d === null || Array.isArray(d)) throw new CliError(`${source}: deployment ${i + 1} is not an object`);
    const body = d as Record<string, unknown>;
    const name = body.name;
    if (typeof name !== 'string' || name === '') throw new CliError(`${source}: deployment ${i + 1} has no name`);
    return { name, body };
  });
}

function arity(positionals: string[], names: string[]): string[] {
  if (positionals.length !== names.length) {
    throw new CliError(`expected ${names.length === 0 ? 'no arguments' : names.join(' ')}, got ${positionals.length === 0 ? 'none' : positionals.join(' ')}`);
  }
  return positionals;
}

/** Runs one client command; returns what to print on stdout. */
export async function runClientCommand(command: ClientCommand, args: string[], stdin: () => Promise<string>): Promise<string> {
  let parsed: { values: { server?: string; json?: boolean }; positionals: string[] };
  try {
    parsed = parseArgs({ args, options: { server: { type: 'string' }, json: { type: 'boolean' } }, allowPositionals: true, strict: true });
  } catch (e) {
    throw new CliError(e instanceof Error ? e.message : String(e));
  }
  const { values, positionals } = parsed;
  const key = adminKeyFromEnv();
  const client = new AdminClient({ server: values.server ?? DEFAULT_SERVER_URL, ...(key === undefined ? {} : { adminKey: key }) });
  const json = values.json === true;
  const out = (value: unknown, human: string): string => (json ? JSON.stringify(value, null, 2) : human);
  switch (command) {
    case 'list': {
      arity(positionals, []);
      const all = await client.list();
      return out({ deployments: all }, renderList(all));
    }
    case 'get': {
      const [name = ''] = arity(positionals, ['NAME']);
      const d = await client.get(name);
      return out(d, renderDeployment(d));
    }
    case 'scale': {
      const [name = '', n = ''] = arity(positionals, ['NAME', 'N']);
      if (!/^\d+$/.test(n)) throw new CliError(`N must be a whole number >= 0, got '${n}'`);
      const d = await client.scale(name, Number(n));
      return out(d, `scaled ${name} to ${d.desired} replica${d.desired === 1 ? '' : 's'} (now ${d.serving} serving, state ${d.state})`);
    }
    case 'remove': {
      const [name = ''] = arity(positionals, ['NAME']);
      await client.remove(name);
      return out({ deleted: name }, `removed ${name} (in-flight requests finish first)`);
    }
    case 'deploy': {
      const [file = ''] = arity(positionals, ['FILE|-']);
      const source = file === '-' ? 'stdin' : file;
      const results = [];
      for (const d of deploymentsIn(await readInput(file, stdin), source)) results.push(await client.apply(d.name, d.body));
      return out(
        results.length === 1 ? results[0] : { deployments: results },
        results.map((d) => `applied ${d.spec.name}: revision ${d.revision}, ${d.desired} replica${d.desired === 1 ? '' : 's'} desired, state ${d.state}`).join('\n'),
      );
    }
    default: {
      const never: never = command;
      throw new CliError(`unknown command ${String(never)}`);
    }
  }
}
