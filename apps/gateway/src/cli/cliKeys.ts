// The CLI's commands for virtual keys, the audit trail and budget resets, each a
// call to a running server's admin API (docs/keys.md):
//   inference key create NAME [settings]     the secret is printed once
//   inference key list | get NAME | update NAME [settings] [--clear F] | rotate NAME | revoke NAME
//   inference audit [--limit N] [--before CURSOR]
//   inference budget reset deployment|key NAME
// Settings: --deployments a,b  --budget-window 1d --budget-tokens N --budget-usd X
//           --rpm N  --tpm N  --expires ISO-TIME  --team T  --owner O
// Arguments are checked before any request; failures are CliErrors.

import { parseArgs } from 'node:util';
import { AdminClient, CliError } from './cliClient.js';
import { table } from './cliFormat.js';
import { adminKeyFromEnv } from '@inference/runtime';

export const KEY_COMMANDS_USAGE = `       inference key create NAME [settings]   create a virtual API key (its secret is printed once)
       inference key list | get NAME          virtual keys (never their secrets)
       inference key update NAME [settings] [--clear deployments|budget|rpm|tpm|expires]
       inference key rotate NAME              a new secret; the old one stops working
       inference key revoke NAME              refuse the key from now on
       inference audit [--limit N] [--before CURSOR]   admin changes, newest first
       inference budget reset deployment|key NAME      zero a budget's spend in its window
       key settings: --deployments a,b --budget-window 1d --budget-tokens N --budget-usd X
                     --rpm N --tpm N --expires 2030-01-31T00:00:00Z --team T --owner O`;

interface KeyView {
  name: string;
  prefix: string;
  state: string;
  deployments: string[] | null;
  budget: { window: string; maxTokens: number | null; maxCostUsd: number | null } | null;
  rpm: number | null;
  tpm: number | null;
  expiresAt: string | null;
  metadata: Record<string, string>;
}

interface AuditView {
  id: string;
  at: string;
  actor: string | null;
  action: string;
  target: string;
  node: string | null;
}

const SETTINGS = {
  deployments: { type: 'string' }, 'budget-window': { type: 'string' }, 'budget-tokens': { type: 'string' }, 'budget-usd': { type: 'string' },
  rpm: { type: 'string' }, tpm: { type: 'string' }, expires: { type: 'string' }, team: { type: 'string' }, owner: { type: 'string' },
  clear: { type: 'string', multiple: true },
} as const;

type Values = Record<string, string | boolean | string[] | undefined>;

function str(v: Values, k: string): string | undefined {
  const x = v[k];
  return typeof x === 'string' ? x : undefined;
}

function whole(v: Values, k: string): number | undefined {
  const s = str(v, k);
  if (s === undefined) return undefined;
  if (!/^\d{1,12}$/.test(s)) throw new CliError(`--${k} must be a whole number, got '${s}'`);
  return Number(s);
}

/** The JSON body of create/update from the settings flags. */
export function settingsBody(v: Values, update: boolean): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  const deps = str(v, 'deployments');
  if (deps !== undefined) body.deployments = deps.split(',').map((d) => d.trim()).filter((d) => d !== '');
  const window = str(v, 'budget-window');
  const tokens = whole(v, 'budget-tokens');
  const usdText = str(v, 'budget-usd');
  let usd: number | undefined;
  if (usdText !== undefined) {
    usd = Number(usdText);
    if (!/^\d+(\.\d+)?$/.test(usdText)) throw new CliError(`--budget-usd must be a number of dollars, got '${usdText}'`);
  }
  if (window !== undefined) body.budget = { window, ...(tokens === undefined ? {} : { maxTokens: tokens }), ...(usd === undefined ? {} : { maxCostUsd: usd }) };
  else if (tokens !== undefined || usd !== undefined) throw new CliError('--budget-tokens and --budget-usd need --budget-window (e.g. 1d)');
  for (const k of ['rpm', 'tpm'] as const) {
    const n = whole(v, k);
    if (n !== undefined) body[k] = n;
  }
  const expires = str(v, 'expires');
  if (expires !== undefined) body.expiresAt = expires;
  const team = str(v, 'team');
  const owner = str(v, 'owner');
  if (team !== undefined || owner !== undefined) body.metadata = { ...(team === undefined ? {} : { team }), ...(owner === undefined ? {} : { owner }) };
  const clear = v.clear;
  if (Array.isArray(clear)) {
    if (!update) throw new CliError('--clear applies to key update only');
    for (const f of clear) {
      const field = f === 'expires' ? 'expiresAt' : f;
      if (!['deployments', 'budget', 'rpm', 'tpm', 'expiresAt'].includes(field)) {
        throw new CliError(`--clear: expected deployments, budget, rpm, tpm or expires, got '${f}'`);
      }
      if (body[field] !== undefined) throw new CliError(`--clear ${f} conflicts with a new value for it`);
      body[field] = null;
    }
  }
  return body;
}

function renderKeys(keys: KeyView[]): string {
  if (keys.length === 0) return 'no virtual keys';
  const budget = (k: KeyView): string => {
    const b = k.budget;
    if (b === null) return '-';
    return (
      [b.maxTokens === null ? undefined : `${b.maxTokens} tok`, b.maxCostUsd === null ? undefined : `$${b.maxCostUsd}`]
        .filter((x) => x !== undefined)
        .join(' ') + `/${b.window}`
    );
  };
  return table(
    ['NAME', 'PREFIX', 'STATE', 'DEPLOYMENTS', 'RPM', 'TPM', 'BUDGET', 'EXPIRES', 'TEAM', 'OWNER'],
    keys.map((k) => [
      k.name, `${k.prefix}…`, k.state, k.deployments?.join(',') ?? '*', String(k.rpm ?? '-'), String(k.tpm ?? '-'), budget(k),
      k.expiresAt ?? 'never', k.metadata.team ?? '-', k.metadata.owner ?? '-',
    ]),
  );
}

function withSecret(verb: string, out: { key: KeyView; secret: string }): string {
  return `${verb} key ${out.key.name}\nsecret: ${out.secret}\n(shown once: store it now; the server keeps only its hash)`;
}

/** Runs `key ...`, `audit` or `budget reset ...`; returns what to print. */
export async function runKeyCommand(command: 'key' | 'audit' | 'budget', args: string[]): Promise<string> {
  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({
      args, allowPositionals: true, strict: true,
      options: { server: { type: 'string' }, json: { type: 'boolean' }, limit: { type: 'string' }, before: { type: 'string' }, ...SETTINGS },
    });
  } catch (e) {
    throw new CliError(e instanceof Error ? e.message : String(e));
  }
  const { values, positionals } = parsed;
  const key = adminKeyFromEnv();
  const client = new AdminClient({ server: str(values, 'server') ?? 'http://127.0.0.1:8080', ...(key === undefined ? {} : { adminKey: key }) });
  const json = values.json === true;
  const out = (value: unknown, human: string): string => (json ? JSON.stringify(value, null, 2) : human);
  const onlyArgs = (n: number, names: string): string[] => {
    if (positionals.length !== n) throw new CliError(`expected ${names}, got ${positionals.length === 0 ? 'none' : positionals.join(' ')}`);
    return positionals;
  };
  const path = (name: string): string => `/admin/keys/${encodeURIComponent(name)}`;
  switch (command) {
    case 'audit': {
      onlyArgs(0, 'no arguments');
      const q = new URLSearchParams();
      const limit = str(values, 'limit');
      const before = str(values, 'before');
      if (limit !== undefined) q.set('limit', limit);
      if (before !== undefined) q.set('before', before);
      const page = await client.call<{ records: AuditView[]; next: string | null }>('GET', `/admin/audit${q.size === 0 ? '' : `?${q.toString()}`}`);
      const rows = page.records.map((r) => [r.at, r.actor ?? '-', r.action, r.target, r.node ?? '-']);
      const human = page.records.length === 0 ? 'no audit records' : table(['AT', 'ACTOR', 'ACTION', 'TARGET', 'NODE'], rows);
      return out(page, page.next === null ? human : `${human}\nmore: --before ${page.next}`);
    }
    case 'budget': {
      const [verb = '', scope = '', name = ''] = onlyArgs(3, 'reset deployment|key NAME');
      if (verb !== 'reset') throw new CliError(`unknown budget command '${verb}' (expected: reset)`);
      if (scope !== 'deployment' && scope !== 'key') throw new CliError(`expected deployment or key, got '${scope}'`);
      const r = await client.call<{ before: { tokens: number; costUsd: number; window: string } }>(
        'POST',
        `/admin/budgets/${scope}/${encodeURIComponent(name)}/reset`,
      );
      return out(r, `reset the ${r.before.window} budget of ${scope} ${name} (was ${r.before.tokens} tokens, $${r.before.costUsd})`);
    }
    case 'key': {
      const [verb = '', name = ''] = positionals;
      switch (verb) {
        case 'list': {
          onlyArgs(1, 'key list');
          const r = await client.call<{ keys: KeyView[] }>('GET', '/admin/keys');
          return out(r, renderKeys(r.keys));
        }
        case 'get': {
          onlyArgs(2, 'key get NAME');
          const k = await client.call<KeyView>('GET', path(name));
          return out(k, renderKeys([k]));
        }
        case 'create': {
          onlyArgs(2, 'key create NAME');
          const r = await client.call<{ key: KeyView; secret: string }>('POST', '/admin/keys', { name, ...settingsBody(values, false) });
          return out(r, withSecret('created', r));
        }
        case 'update': {
          onlyArgs(2, 'key update NAME');
          const k = await client.call<KeyView>('PATCH', path(name), settingsBody(values, true));
          return out(k, renderKeys([k]));
        }
        case 'rotate': {
          onlyArgs(2, 'key rotate NAME');
          const r = await client.call<{ key: KeyView; secret: string }>('POST', `${path(name)}/rotate`);
          return out(r, withSecret('rotated', r));
        }
        case 'revoke': {
          onlyArgs(2, 'key revoke NAME');
          const k = await client.call<KeyView>('POST', `${path(name)}/revoke`);
          return out(k, `revoked key ${k.name}`);
        }
        default:
          throw new CliError(`unknown key command '${verb}' (expected create, list, get, update, rotate or revoke)`);
      }
    }
    default: {
      const never: never = command;
      throw new CliError(`unknown command ${String(never)}`);
    }
  }
}
