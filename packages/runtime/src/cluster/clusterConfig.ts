// The `cluster:` block of the config file and the serve flags that override it
// (--cluster, --node-name, --advertise), validated into one typed object. Pure:
// no environment access (config.ts reads the secret's variable). A config with
// no cluster block and no --cluster flag is single-process mode, unchanged.

import { type Json, invalid, join, noUnknownKeys, optNumber, optString } from '@inference/core';
import { parseClusterUrl } from '@inference/cluster';

export interface ClusterConfig {
  /** etcd endpoints, host:port each (from `etcd://HOST:PORT[,HOST:PORT]`). */
  readonly etcd: readonly string[];
  /** The cluster's name: every key lives under /inference/<name>/. */
  readonly name: string;
  /** Unique within the cluster. */
  readonly nodeName: string;
  /** host:port the other nodes reach this node's forwarding listener on. */
  readonly advertise: string;
  /** The forwarding listener binds here (default: the advertise host). */
  readonly listenHost: string;
  /** Lease TTL: a dead node's entries vanish within this. */
  readonly leaseTtlSeconds: number;
  /** How often budget counters are written to etcd (the overspend bound's factor). */
  readonly counterSyncMs: number;
  /** Names an environment variable holding a shared secret node-to-node requests carry. */
  readonly secretEnv?: string;
}

/** What the file says before flags are applied (every key optional). */
export interface ClusterFileConfig {
  readonly etcd?: string;
  readonly name?: string;
  readonly nodeName?: string;
  readonly advertise?: string;
  readonly listenHost?: string;
  readonly leaseTtlSeconds?: number;
  readonly counterSyncMs?: number;
  readonly secretEnv?: string;
}

export interface ClusterFlags {
  readonly cluster?: string | undefined;
  readonly nodeName?: string | undefined;
  readonly advertise?: string | undefined;
}

const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const CLUSTER_NAME = /^[A-Za-z0-9._-]{1,64}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export const CLUSTER_DEFAULTS = { name: 'default', leaseTtlSeconds: 10, counterSyncMs: 1000 } as const;

export function parseClusterBlock(o: Json): ClusterFileConfig {
  const p = 'cluster';
  noUnknownKeys(o, ['etcd', 'name', 'nodeName', 'advertise', 'listenHost', 'leaseTtlSeconds', 'counterSyncMs', 'secretEnv'], p);
  const out: { -readonly [K in keyof ClusterFileConfig]: ClusterFileConfig[K] } = {};
  const etcd = optString(o, 'etcd', p);
  if (etcd !== undefined) out.etcd = etcd;
  const name = optString(o, 'name', p);
  if (name !== undefined) {
    if (!CLUSTER_NAME.test(name)) invalid(join(p, 'name'), 'may hold letters, digits and . _ - (at most 64)');
    out.name = name;
  }
  const nodeName = optString(o, 'nodeName', p);
  if (nodeName !== undefined) out.nodeName = nodeName;
  const advertise = optString(o, 'advertise', p);
  if (advertise !== undefined) out.advertise = advertise;
  const listenHost = optString(o, 'listenHost', p);
  if (listenHost !== undefined) out.listenHost = listenHost;
  const ttl = optNumber(o, 'leaseTtlSeconds', p, { min: 1, max: 300, integer: true });
  if (ttl !== undefined) out.leaseTtlSeconds = ttl;
  const sync = optNumber(o, 'counterSyncMs', p, { min: 50, max: 60_000, integer: true });
  if (sync !== undefined) out.counterSyncMs = sync;
  const secretEnv = optString(o, 'secretEnv', p);
  if (secretEnv !== undefined) {
    if (!ENV_NAME.test(secretEnv)) invalid(join(p, 'secretEnv'), 'expected an environment variable name');
    out.secretEnv = secretEnv;
  }
  return out;
}

/** Parses `host:port` (IPv6 in brackets); the port must be 1..65535. */
export function parseHostPort(s: string, what: string): { host: string; port: number } {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(s);
  const host = m?.[1];
  const port = Number(m?.[2]);
  if (host === undefined || !Number.isInteger(port) || port < 1 || port > 65535) {
    invalid(what, `expected HOST:PORT with a port 1..65535, got '${s}'`);
  }
  return { host: host.startsWith('[') ? host.slice(1, -1) : host, port };
}

/**
 * The effective cluster config: flags win over the file. Undefined when neither
 * names an etcd (single-process mode); an error naming the flag or key when
 * cluster mode is asked for with something missing or malformed.
 */
export function resolveCluster(file: ClusterFileConfig | undefined, flags: ClusterFlags = {}): ClusterConfig | undefined {
  const url = flags.cluster ?? file?.etcd;
  if (url === undefined) {
    if (flags.nodeName !== undefined || flags.advertise !== undefined) invalid('--cluster', 'is required with --node-name and --advertise');
    return undefined;
  }
  const where = (flag: string, key: string, fromFlag: boolean): string => (fromFlag ? flag : `cluster.${key}`);
  let etcd: string[];
  try {
    etcd = parseClusterUrl(url);
  } catch (e) {
    invalid(where('--cluster', 'etcd', flags.cluster !== undefined), e instanceof Error ? e.message : String(e));
  }
  const nodeName = flags.nodeName ?? file?.nodeName;
  if (nodeName === undefined) invalid('--node-name', 'is required in cluster mode (or cluster.nodeName)');
  if (!NODE_NAME.test(nodeName)) invalid(where('--node-name', 'nodeName', flags.nodeName !== undefined), `'${nodeName}' may hold letters, digits and . _ - (at most 64, starting with a letter or digit)`);
  const advertise = flags.advertise ?? file?.advertise;
  if (advertise === undefined) invalid('--advertise', 'is required in cluster mode (or cluster.advertise)');
  const hp = parseHostPort(advertise, where('--advertise', 'advertise', flags.advertise !== undefined));
  const cfg: ClusterConfig = {
    etcd,
    name: file?.name ?? CLUSTER_DEFAULTS.name,
    nodeName,
    advertise,
    listenHost: file?.listenHost ?? hp.host,
    leaseTtlSeconds: file?.leaseTtlSeconds ?? CLUSTER_DEFAULTS.leaseTtlSeconds,
    counterSyncMs: file?.counterSyncMs ?? CLUSTER_DEFAULTS.counterSyncMs,
    ...(file?.secretEnv === undefined ? {} : { secretEnv: file.secretEnv }),
  };
  return cfg;
}
