// The configuration contract (docs/config.md): YAML (or JSON) parsed, then validated
// into a typed object. Unknown keys are errors naming the key. This is the only
// module that reads environment variables: secrets are named in the file and
// read from the environment, never stored in it.

import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import {
  type BudgetSpec, type DeploymentSpec, InferenceError, type Json, asObject, invalid, join, noUnknownKeys, optArray, optBool, optNumber, optObject,
  optString, parseBudget, parseDeployment, reqString,
} from '@inference/core';
import type { Credentials } from '@inference/engine-remote';
import { type ClusterConfig, type ClusterFileConfig, parseClusterBlock } from './cluster/clusterConfig.js';
import { SecretAllowList, type SecretsConfig, parseSecretEntries } from './secretsPolicy.js';
import { type TracesConfig, type TracesFileConfig, parseTracesBlock, resolveTraces } from './telemetry/tracesConfig.js';

export interface ApiKeyConfig {
  name: string;
  keyEnv: string;
  deployments?: string[];
  /** Always `onExceeded: reject`. */
  budget?: BudgetSpec;
}

export interface AdminKeyConfig {
  name: string;
  keyEnv: string;
}

export interface RuntimeConfig {
  server: {
    host: string; port: number; bodyLimitBytes: number; drainTimeoutMs: number; streamStallMs: number;
    /** Serve admin routes without admin keys on a non-loopback address (openAdmin.ts). */
    allowOpenAdmin: boolean;
    /** HTTPS (HTTP/2 by ALPN, HTTP/1.1 too) on the client listener. */
    tls?: ServerTlsConfig;
    /** Origins browser clients may call from (CORS). */
    cors?: { origins: string[] };
  };
  storage?: { path: string };
  auth: { apiKeys: ApiKeyConfig[]; adminKeys: AdminKeyConfig[] };
  /** The audit trail of admin changes (docs/keys.md): how many records are kept. */
  audit?: { maxRecords: number };
  /** Stored Responses API objects (docs/responses.md): how long each is kept; absent: 30 days, 24 h in a cluster. */
  responses?: { ttlSeconds?: number };
  deployments: DeploymentSpec[];
  /** The `cluster:` block as the file gives it (flags may complete it: cluster/clusterConfig.ts). */
  cluster?: ClusterFileConfig;
  /** What deployments may read as credentials (secretsPolicy.ts). */
  secrets?: SecretsConfig;
  /** The `telemetry:` block (traces: telemetry/tracesConfig.ts; the OTEL_* variables complete it). */
  telemetry?: { traces?: TracesFileConfig };
}

export interface ServerTlsConfig {
  certFile: string;
  keyFile: string;
  /** Clients present a certificate signed by this CA (mutual TLS). */
  clientCaFile?: string;
  /** With clientCaFile: refuse connections without a valid client certificate (default true). */
  requireClientCert: boolean;
}

function parseServerTls(o: Json, p: string): ServerTlsConfig {
  noUnknownKeys(o, ['certFile', 'keyFile', 'clientCaFile', 'requireClientCert'], p);
  const clientCaFile = optString(o, 'clientCaFile', p);
  const require = optBool(o, 'requireClientCert', p);
  if (require === true && clientCaFile === undefined) {
    invalid(join(p, 'requireClientCert'), 'needs clientCaFile (the CA client certificates are checked against)');
  }
  return {
    certFile: reqString(o, 'certFile', p, { nonEmpty: true }),
    keyFile: reqString(o, 'keyFile', p, { nonEmpty: true }),
    ...(clientCaFile === undefined ? {} : { clientCaFile }),
    requireClientCert: require ?? clientCaFile !== undefined,
  };
}

export const DEFAULT_SERVER = { host: '127.0.0.1', port: 8080, bodyLimitBytes: 4 * 1024 * 1024, drainTimeoutMs: 30_000, streamStallMs: 60_000 };

function parseKeys(list: unknown[] | undefined, path: string, withDeployments: boolean): ApiKeyConfig[] {
  const names = new Set<string>();
  return (list ?? []).map((raw, i) => {
    const p = join(path, i);
    const o = asObject(raw, p);
    noUnknownKeys(o, withDeployments ? ['name', 'keyEnv', 'deployments', 'budget'] : ['name', 'keyEnv'], p);
    const k: ApiKeyConfig = { name: reqString(o, 'name', p, { nonEmpty: true }), keyEnv: reqString(o, 'keyEnv', p, { nonEmpty: true }) };
    // Names label metrics and spend rows: unique, and safe as a label value.
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(k.name)) invalid(join(p, 'name'), 'may hold letters, digits and . _ - (at most 64)');
    if (names.has(k.name)) invalid(join(p, 'name'), `duplicate key name '${k.name}'`);
    names.add(k.name);
    const deps = optArray(o, 'deployments', p);
    if (deps !== undefined) {
      k.deployments = deps.map((d, j) => {
        if (typeof d !== 'string') invalid(join(join(p, 'deployments'), j), 'expected a deployment name');
        return d;
      });
    }
    const budget = optObject(o, 'budget', p);
    if (budget !== undefined) k.budget = parseBudget(budget, join(p, 'budget'), 'key');
    return k;
  });
}

export interface ParseOptions {
  /** Runtimes registered with createRuntime({ runtimes }) that deployments may name. */
  readonly runtimes?: readonly string[] | Readonly<Record<string, unknown>>;
}

/** Validates a parsed config document (no environment access). */
export function parseConfig(doc: unknown, options: ParseOptions = {}): RuntimeConfig {
  const runtimes = Array.isArray(options.runtimes) ? options.runtimes : Object.keys(options.runtimes ?? {});
  const o = asObject(doc ?? {}, '');
  noUnknownKeys(o, ['server', 'storage', 'auth', 'audit', 'responses', 'deployments', 'cluster', 'secrets', 'telemetry'], '');
  const server = optObject(o, 'server', '') ?? {};
  noUnknownKeys(server, ['host', 'port', 'bodyLimitBytes', 'drainTimeoutMs', 'streamStallMs', 'allowOpenAdmin', 'tls', 'cors'], 'server');
  const cfg: RuntimeConfig = {
    server: {
      host: optString(server, 'host', 'server') ?? DEFAULT_SERVER.host,
      port: optNumber(server, 'port', 'server', { min: 0, max: 65535, integer: true }) ?? DEFAULT_SERVER.port,
      bodyLimitBytes: optNumber(server, 'bodyLimitBytes', 'server', { min: 1024, max: 1 << 30, integer: true }) ?? DEFAULT_SERVER.bodyLimitBytes,
      drainTimeoutMs: optNumber(server, 'drainTimeoutMs', 'server', { min: 0, max: 3_600_000, integer: true }) ?? DEFAULT_SERVER.drainTimeoutMs,
      // How long a streamed response may stay unread by its client before it is ended (docs/flow-control.md).
      streamStallMs: optNumber(server, 'streamStallMs', 'server', { min: 1, max: 86_400_000, integer: true }) ?? DEFAULT_SERVER.streamStallMs,
      allowOpenAdmin: optBool(server, 'allowOpenAdmin', 'server') ?? false,
    },
    auth: { apiKeys: [], adminKeys: [] },
    deployments: [],
  };
  const tls = optObject(server, 'tls', 'server');
  if (tls !== undefined) cfg.server.tls = parseServerTls(tls, 'server.tls');
  const cors = optObject(server, 'cors', 'server');
  if (cors !== undefined) {
    noUnknownKeys(cors, ['origins'], 'server.cors');
    const origins = (optArray(cors, 'origins', 'server.cors') ?? []).map((x, i) => {
      // An origin is scheme://host[:port], nothing after: browsers send exactly that.
      if (typeof x !== 'string' || (x !== '*' && !/^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?$|^https?:\/\/\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/.test(x))) {
        invalid(join('server.cors.origins', i), "expected an origin such as https://app.example.com (scheme, host, optional port) or '*'");
      }
      return x;
    });
    cfg.server.cors = { origins };
  }
  const storage = optObject(o, 'storage', '');
  if (storage !== undefined) {
    noUnknownKeys(storage, ['path'], 'storage');
    cfg.storage = { path: reqString(storage, 'path', 'storage', { nonEmpty: true }) };
  }
  const cluster = optObject(o, 'cluster', '');
  if (cluster !== undefined) cfg.cluster = parseClusterBlock(cluster);
  const audit = optObject(o, 'audit', '');
  if (audit !== undefined) {
    noUnknownKeys(audit, ['maxRecords'], 'audit');
    const maxRecords = optNumber(audit, 'maxRecords', 'audit', { min: 10, max: 10_000_000, integer: true });
    if (maxRecords !== undefined) cfg.audit = { maxRecords };
  }
  const responses = optObject(o, 'responses', '');
  if (responses !== undefined) {
    noUnknownKeys(responses, ['ttlSeconds'], 'responses');
    const ttlSeconds = optNumber(responses, 'ttlSeconds', 'responses', { min: 1, max: 366 * 86_400, integer: true });
    cfg.responses = ttlSeconds === undefined ? {} : { ttlSeconds };
  }
  const telemetry = optObject(o, 'telemetry', '');
  if (telemetry !== undefined) {
    noUnknownKeys(telemetry, ['traces'], 'telemetry');
    const traces = optObject(telemetry, 'traces', 'telemetry');
    cfg.telemetry = traces === undefined ? {} : { traces: parseTracesBlock(traces) };
  }
  const auth = optObject(o, 'auth', '');
  if (auth !== undefined) {
    noUnknownKeys(auth, ['apiKeys', 'adminKeys'], 'auth');
    cfg.auth.apiKeys = parseKeys(optArray(auth, 'apiKeys', 'auth'), 'auth.apiKeys', true);
    cfg.auth.adminKeys = parseKeys(optArray(auth, 'adminKeys', 'auth'), 'auth.adminKeys', false);
  }
  const deployments = optArray(o, 'deployments', '') ?? [];
  const names = new Set<string>();
  cfg.deployments = deployments.map((d, i) => {
    const spec = parseDeployment(d, join('deployments', i), runtimes);
    if (names.has(spec.name)) invalid(join(join('deployments', i), 'name'), `duplicate deployment name '${spec.name}'`);
    names.add(spec.name);
    return spec;
  });
  const secrets = optObject(o, 'secrets', '');
  if (secrets !== undefined) {
    noUnknownKeys(secrets, ['env'], 'secrets');
    cfg.secrets = { env: parseSecretEntries(optArray(secrets, 'env', 'secrets') ?? [], 'secrets.env') };
  }
  // Built once here so a file that gives a deployment one of the server's own secrets fails at load.
  secretPolicy(cfg);
  return cfg;
}

/** The allow-list of variables deployments may read (secretsPolicy.ts), with the server's own secrets reserved. */
export function secretPolicy(cfg: RuntimeConfig): SecretAllowList {
  const reserved: { key: string; name: string }[] = [
    { key: 'the CLI admin key', name: ADMIN_KEY_ENV },
    { key: 'the serve --workers secret', name: 'INFERENCE_WORKER_SECRET' },
  ];
  cfg.auth.apiKeys.forEach((k, i) => reserved.push({ key: `auth.apiKeys[${i}]`, name: k.keyEnv }));
  cfg.auth.adminKeys.forEach((k, i) => reserved.push({ key: `auth.adminKeys[${i}]`, name: k.keyEnv }));
  if (cfg.cluster?.secretEnv !== undefined) reserved.push({ key: 'cluster.secretEnv', name: cfg.cluster.secretEnv });
  if (cfg.cluster?.etcdAuth !== undefined) reserved.push({ key: 'cluster.etcdAuth.passwordEnv', name: cfg.cluster.etcdAuth.passwordEnv });
  return new SecretAllowList({ secrets: cfg.secrets, deployments: cfg.deployments, reserved });
}

export type Env = Readonly<Record<string, string | undefined>>;

/** Checks that every environment variable the config names is set, naming the key that needs it. */
export function checkEnv(cfg: RuntimeConfig, env: Env = process.env): void {
  const need: [string, string][] = [];
  cfg.deployments.forEach((d, i) => {
    if (d.apiKeyEnv !== undefined) need.push([`deployments[${i}].apiKeyEnv`, d.apiKeyEnv]);
  });
  cfg.auth.apiKeys.forEach((k, i) => need.push([`auth.apiKeys[${i}].keyEnv`, k.keyEnv]));
  cfg.auth.adminKeys.forEach((k, i) => need.push([`auth.adminKeys[${i}].keyEnv`, k.keyEnv]));
  if (cfg.cluster?.secretEnv !== undefined) need.push(['cluster.secretEnv', cfg.cluster.secretEnv]);
  if (cfg.cluster?.etcdAuth !== undefined) need.push(['cluster.etcdAuth.passwordEnv', cfg.cluster.etcdAuth.passwordEnv]);
  for (const [name, variable] of Object.entries(cfg.telemetry?.traces?.headersEnv ?? {})) need.push([`telemetry.traces.headersEnv.${name}`, variable]);
  for (const [key, name] of need) {
    const v = env[name];
    if (v === undefined || v === '') invalid(key, `environment variable ${name} is not set`);
  }
}

/**
 * Reads a deployment's credentials from the environment, at session open (so
 * rotations apply); with a policy, only variables it allows (else no key).
 */
export function envCredentials(env: Env = process.env, policy?: SecretAllowList): (spec: DeploymentSpec) => Credentials {
  return (spec) => {
    const name = spec.apiKeyEnv;
    if (name === undefined || (policy !== undefined && !policy.allows(name))) return { apiKey: undefined };
    return { apiKey: env[name] };
  };
}

/** The shared node-to-node secret, when the cluster config names its variable. */
export function clusterSecret(cfg: ClusterConfig, env: Env = process.env): string | undefined {
  if (cfg.secretEnv === undefined) return undefined;
  const v = env[cfg.secretEnv];
  if (v === undefined || v === '') invalid('cluster.secretEnv', `environment variable ${cfg.secretEnv} is not set`);
  return v;
}

/** The etcd password, when the cluster config names its variable. */
export function etcdPassword(cfg: ClusterConfig, env: Env = process.env): string | undefined {
  if (cfg.etcdAuth === undefined) return undefined;
  const v = env[cfg.etcdAuth.passwordEnv];
  if (v === undefined || v === '') invalid('cluster.etcdAuth.passwordEnv', `environment variable ${cfg.etcdAuth.passwordEnv} is not set`);
  return v;
}

/** Tracing from the file and the standard OTEL_* variables; undefined when off (docs/tracing.md). */
export function tracesConfig(cfg: RuntimeConfig, env: Env = process.env): TracesConfig | undefined {
  return resolveTraces(cfg.telemetry?.traces, env);
}

/** Resolves auth key values from the environment. */
export function resolveKeys<T extends { keyEnv: string }>(keys: T[], env: Env = process.env): (T & { value: string })[] {
  return keys.map((k) => ({ ...k, value: env[k.keyEnv] ?? '' }));
}

export async function loadConfigFile(path: string, env: Env = process.env, options: ParseOptions = {}): Promise<RuntimeConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new InferenceError('invalid_request', `cannot read config file ${path}`, { diagnostic: String(e) });
  }
  let doc: unknown;
  try {
    doc = parseYaml(text, { strict: true, uniqueKeys: true });
  } catch (e) {
    throw new InferenceError('invalid_request', `config file ${path} is not valid YAML: ${e instanceof Error ? e.message.split('\n')[0] ?? '' : ''}`);
  }
  const cfg = parseConfig(doc, options);
  checkEnv(cfg, env);
  return cfg;
}

/** Environment variable holding the admin key the CLI sends (Authorization: Bearer). */
export const ADMIN_KEY_ENV = 'INFERENCE_ADMIN_KEY';

/** The admin key for CLI calls to a running server, if set. */
export function adminKeyFromEnv(env: Env = process.env): string | undefined {
  const v = env[ADMIN_KEY_ENV];
  return v === undefined || v === '' ? undefined : v;
}
