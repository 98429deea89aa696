import { errorOf } from '@inference/core/testing';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config.js';
import { parseHostPort, resolveCluster } from './clusterConfig.js';

describe('cluster config and flags', () => {
  it('no cluster block and no flags: single-process mode', () => {
    expect(resolveCluster(parseConfig({}).cluster, {})).toBeUndefined();
  });

  it('flags win over the file; defaults fill the rest', () => {
    const cfg = parseConfig({ cluster: { etcd: 'etcd://10.0.0.1:2379', nodeName: 'file', advertise: '10.0.0.2:7000', leaseTtlSeconds: 2, secretEnv: 'S' } });
    const c = resolveCluster(cfg.cluster, { nodeName: 'flag', advertise: '127.0.0.1:7001' });
    expect(c).toMatchObject({
      etcd: ['10.0.0.1:2379'],
      nodeName: 'flag',
      advertise: '127.0.0.1:7001',
      listenHost: '127.0.0.1',
      leaseTtlSeconds: 2,
      counterSyncMs: 1000,
      name: 'default',
    });
  });

  it('bad flags and keys are errors naming them', () => {
    expect(errorOf(() => resolveCluster(undefined, { cluster: 'http://x:1', nodeName: 'a', advertise: 'h:1' })).message).toMatch(
      /--cluster.*etcd:\/\/HOST:PORT/,
    );
    expect(errorOf(() => resolveCluster(undefined, { cluster: 'etcd://x:1', advertise: 'h:1' })).message).toMatch(/--node-name: is required/);
    expect(errorOf(() => resolveCluster(undefined, { cluster: 'etcd://x:1', nodeName: 'a/b', advertise: 'h:1' })).message).toMatch(/--node-name/);
    expect(errorOf(() => resolveCluster(undefined, { cluster: 'etcd://x:1', nodeName: 'a' })).message).toMatch(/--advertise: is required/);
    expect(errorOf(() => resolveCluster(undefined, { cluster: 'etcd://x:1', nodeName: 'a', advertise: 'h:0' })).message).toMatch(/--advertise.*1\.\.65535/);
    expect(errorOf(() => resolveCluster(undefined, { nodeName: 'a' })).message).toMatch(/--cluster: is required/);
    expect(errorOf(() => parseConfig({ cluster: { etcd: 'etcd://x:1', leaseTtl: 2 } })).param).toBe('cluster.leaseTtl');
    expect(errorOf(() => parseConfig({ cluster: { leaseTtlSeconds: 0 } })).param).toBe('cluster.leaseTtlSeconds');
  });

  it('cluster mode without mTLS or a secret is refused unless insecure is explicit, saying why', () => {
    const e = errorOf(() => resolveCluster(undefined, { cluster: 'etcd://x:1', nodeName: 'a', advertise: 'h:1' }));
    expect(e.param).toBe('cluster');
    expect(e.message).toMatch(/cluster\.tls.*cluster\.secretEnv.*cluster\.insecure: true/);
    expect(resolveCluster(parseConfig({ cluster: { insecure: true } }).cluster, { cluster: 'etcd://x:1', nodeName: 'a', advertise: 'h:1' })?.insecure).toBe(
      true,
    );
    expect(
      errorOf(() => resolveCluster(parseConfig({ cluster: { insecure: false } }).cluster, { cluster: 'etcd://x:1', nodeName: 'a', advertise: 'h:1' })).param,
    ).toBe('cluster');
    const tls = { caFile: 'ca.pem', certFile: 'n.pem', keyFile: 'n.key' };
    expect(resolveCluster(parseConfig({ cluster: { tls } }).cluster, { cluster: 'etcd://x:1', nodeName: 'a', advertise: 'h:1' })?.tls).toEqual(tls);
  });

  it('validates the TLS and etcd security keys by name', () => {
    expect(errorOf(() => parseConfig({ cluster: { tls: { caFile: 'a', certFile: 'b' } } })).param).toBe('cluster.tls.keyFile');
    expect(errorOf(() => parseConfig({ cluster: { tls: { caFile: 'a', certFile: 'b', keyFile: 'c', crl: 'd' } } })).param).toBe('cluster.tls.crl');
    expect(errorOf(() => parseConfig({ cluster: { etcdTls: { caFile: 'a', certFile: 'b' } } })).param).toBe('cluster.etcdTls.keyFile');
    expect(errorOf(() => parseConfig({ cluster: { etcdAuth: { username: 'u', passwordEnv: 'not a name' } } })).param).toBe('cluster.etcdAuth.passwordEnv');
    expect(errorOf(() => parseConfig({ cluster: { insecure: 'yes' } })).param).toBe('cluster.insecure');
  });

  it('parses host:port, IPv6 in brackets', () => {
    expect(parseHostPort('[::1]:7000', 'x')).toEqual({ host: '::1', port: 7000 });
    expect(parseHostPort('node-1.local:80', 'x')).toEqual({ host: 'node-1.local', port: 80 });
  });
});
