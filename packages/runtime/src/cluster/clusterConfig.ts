// The `cluster:` block of the config file and the serve flags that override it
// (--cluster, --node-name, --advertise), validated into one typed object. Pure:
// no environment access (config.ts reads the secret's variable). A config with
// no cluster block and no --cluster flag is single-process mode, unchanged.
// The cluster port must authenticate its callers: mutual TLS (`tls`), a shared
// secret (`secretEnv`), or both; with neither, cluster mode refuses to start
// unless `insecure: true` says the operator accepts an open port (docs/security.md).

import { type Json, asObject, invalid, join, noUnknownKeys, optBool, optNumber, optObject, optString, reqString } from '@inference/core';
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
  /** Node-to-node mutual TLS against a cluster CA. */
  readonly tls?: ClusterTlsConfig;
  /** The operator accepts a cluster port without authentication. */
  readonly insecure?: boolean;
  /** TLS to etcd (server verified against caFile; a client certificate when certFile/keyFile). */
  readonly etcdTls?: EtcdTlsConfig;
  /** etcd user and password (the password read from the variable passwordEnv names). */
  readonly etcdAuth?: EtcdAuthConfig;
}

export interface ClusterTlsConfig {
  /** The cluster CA: a peer's certificate must chain to it, both ways. */
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
}

export interface EtcdTlsConfig {
  readonly caFile: string;
  readonly certFile?: string;
  readonly keyFile?: string;
}

export interface EtcdAuthConfig {
  readonly username: string;
  readonly passwordEnv: string;
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
  readonly tls?: ClusterTlsConfig;
  readonly insecure?: boolean;
  readonly etcdTls?: EtcdTlsConfig;
  readonly etcdAuth?: EtcdAuthConfig;
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
  noUnknownKeys(
    o,
    ['etcd', 'name', 'nodeName', 'advertise', 'listenHost', 'leaseTtlSeconds', 'counterSyncMs', 'secretEnv', 'tls', 'insecure', 'etcdTls', 'etcdAuth'],
    p,
  );
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
  const tls = optObject(o, 'tls', p);
  if (tls !== undefined) {
    const tp = join(p, 'tls');
    noUnknownKeys(tls, ['caFile', 'certFile', 'keyFile'], tp);
    out.tls = {
      caFile: reqString(tls, 'caFile', tp, { nonEmpty: true }),
      certFile: reqString(tls, 'certFile', tp, { nonEmpty: true }),
      keyFile: reqString(tls, 'keyFile', tp, { nonEmpty: true }),
    };
  }
  const insecure = optBool(o, 'insecure', p);
  if (insecure !== undefined) out.insecure = insecure;
  const etcdTls = optObject(o, 'etcdTls', p);
  if (etcdTls !== undefined) out.etcdTls = parseEtcdTls(etcdTls, join(p, 'etcdTls'));
  const etcdAuth = optObject(o, 'etcdAuth', p);
  if (etcdAuth !== undefined) {
    const ap = join(p, 'etcdAuth');
    noUnknownKeys(etcdAuth, ['username', 'passwordEnv'], ap);
    const passwordEnv = reqString(etcdAuth, 'passwordEnv', ap, { nonEmpty: true });
    if (!ENV_NAME.test(passwordEnv)) invalid(join(ap, 'passwordEnv'), 'expected an environment variable name');
    out.etcdAuth = { username: reqString(etcdAuth, 'username', ap, { nonEmpty: true }), passwordEnv };
  }
  return out;
}

function parseEtcdTls(raw: Json, path: string): EtcdTlsConfig {
  const o = asObject(raw, path);
  noUnknownKeys(o, ['caFile', 'certFile', 'keyFile'], path);
  const certFile = optString(o, 'certFile', path);
  const keyFile = optString(o, 'keyFile', path);
  if ((certFile === undefined) !== (keyFile === undefined)) {
    invalid(join(path, certFile === undefined ? 'certFile' : 'keyFile'), 'certFile and keyFile go together (a client certificate and its key)');
  }
  return {
    caFile: reqString(o, 'caFile', path, { nonEmpty: true }),
    ...(certFile === undefined ? {} : { certFile }),
    ...(keyFile === undefined ? {} : { keyFile }),
  };
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
  if (!NODE_NAME.test(nodeName)) {
    const rule = 'may hold letters, digits and . _ - (at most 64, starting with a letter or digit)';
    invalid(where('--node-name', 'nodeName', flags.nodeName !== undefined), `'${nodeName}' ${rule}`);
  }
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
    ...(file?.tls === undefined ? {} : { tls: file.tls }),
    ...(file?.insecure === undefined ? {} : { insecure: file.insecure }),
    ...(file?.etcdTls === undefined ? {} : { etcdTls: file.etcdTls }),
    ...(file?.etcdAuth === undefined ? {} : { etcdAuth: file.etcdAuth }),
  };
  if (cfg.tls === undefined && cfg.secretEnv === undefined && cfg.insecure !== true) {
    invalid('cluster', 'cluster mode needs node-to-node authentication: set cluster.tls (mutual TLS against a cluster CA) or cluster.secretEnv '
      + '(a shared secret), or cluster.insecure: true to accept that anyone who can reach the advertise port may apply deployments and run requests');
  }
  return cfg;
}
