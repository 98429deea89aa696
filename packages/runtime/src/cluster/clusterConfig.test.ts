import { InferenceError } from '@inference/core';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config.js';
import { parseHostPort, resolveCluster } from './clusterConfig.js';

function err(f: () => unknown): InferenceError {
  try {
    f();
  } catch (e) {
    if (e instanceof InferenceError) return e;
    throw e;
  }
  throw new Error('expected an error');
}

describe('cluster config and flags', () => {
  it('no cluster block and no flags: single-process mode', () => {
    expect(resolveCluster(parseConfig({}).cluster, {})).toBeUndefined();
  });

  it('flags win over the file; defaults fill the rest', () => {
    const cfg = parseConfig({ cluster: { etcd: 'etcd://10.0.0.1:2379', nodeName: 'file', advertise: '10.0.0.2:7000', leaseTtlSeconds: 2 } });
    const c = resolveCluster(cfg.cluster, { nodeName: 'flag', advertise: '127.0.0.1:7001' });
    expect(c).toMatchObject({ etcd: ['10.0.0.1:2379'], nodeName: 'flag', advertise: '127.0.0.1:7001', listenHost: '127.0.0.1', leaseTtlSeconds: 2, counterSyncMs: 1000, name: 'default' });
  });

  it('bad flags and keys are errors naming them', () => {
    expect(err(() => resolveCluster(undefined, { cluster: 'http://x:1', nodeName: 'a', advertise: 'h:1' })).message).toMatch(/--cluster.*etcd:\/\/HOST:PORT/);
    expect(err(() => resolveCluster(undefined, { cluster: 'etcd://x:1', advertise: 'h:1' })).message).toMatch(/--node-name: is required/);
    expect(err(() => resolveCluster(undefined, { cluster: 'etcd://x:1', nodeName: 'a/b', advertise: 'h:1' })).message).toMatch(/--node-name/);
    expect(err(() => resolveCluster(undefined, { cluster: 'etcd://x:1', nodeName: 'a' })).message).toMatch(/--advertise: is required/);
    expect(err(() => resolveCluster(undefined, { cluster: 'etcd://x:1', nodeName: 'a', advertise: 'h:0' })).message).toMatch(/--advertise.*1\.\.65535/);
    expect(err(() => resolveCluster(undefined, { nodeName: 'a' })).message).toMatch(/--cluster: is required/);
    expect(err(() => parseConfig({ cluster: { etcd: 'etcd://x:1', leaseTtl: 2 } })).param).toBe('cluster.leaseTtl');
    expect(err(() => parseConfig({ cluster: { leaseTtlSeconds: 0 } })).param).toBe('cluster.leaseTtlSeconds');
  });

  it('parses host:port, IPv6 in brackets', () => {
    expect(parseHostPort('[::1]:7000', 'x')).toEqual({ host: '::1', port: 7000 });
    expect(parseHostPort('node-1.local:80', 'x')).toEqual({ host: 'node-1.local', port: 80 });
  });
});
