import { describe, expect, it } from 'vitest';
import { InferenceError, parseDeployment } from '@inference/core';
import { paramOf } from '@inference/core/testing';
import { envCredentials, parseConfig, secretPolicy } from './config.js';

const remote = (apiKeyEnv: string): unknown => ({ name: 'd', runtime: 'openai', endpoint: 'http://x', apiKeyEnv });

describe('secrets allow-list', () => {
  const cfg = parseConfig({
    secrets: { env: ['OPENAI_API_KEY', 'PROVIDER_*'] },
    auth: { apiKeys: [{ name: 'a', keyEnv: 'PROVIDER_TEAM_KEY' }], adminKeys: [{ name: 'ops', keyEnv: 'ADMIN_KEY' }] },
    cluster: { secretEnv: 'CLUSTER_SECRET' },
    deployments: [{ name: 'f', runtime: 'openai', endpoint: 'http://x', apiKeyEnv: 'FILE_KEY' }],
  });
  const policy = secretPolicy(cfg);

  it('allows exact names, prefixes and the names the file gives its own deployments', () => {
    for (const n of ['OPENAI_API_KEY', 'PROVIDER_A', 'PROVIDER_', 'FILE_KEY']) expect(policy.allows(n), n).toBe(true);
    for (const n of ['OPENAI_API_KEY2', 'AWS_SECRET_ACCESS_KEY', 'HOME', 'PROVIDE', 'FILE_KEY_X']) expect(policy.allows(n), n).toBe(false);
  });

  it("never allows the server's own secrets, even under an allowed prefix", () => {
    for (const n of ['PROVIDER_TEAM_KEY', 'ADMIN_KEY', 'CLUSTER_SECRET', 'INFERENCE_ADMIN_KEY']) expect(policy.allows(n), n).toBe(false);
  });

  it('refuses a spec naming another variable with 400, param apiKeyEnv, naming the variable', () => {
    let err: unknown;
    try {
      policy.check(parseDeployment(remote('AWS_SECRET_ACCESS_KEY')));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InferenceError);
    const e = err as InferenceError;
    expect([e.status, e.param]).toEqual([400, 'apiKeyEnv']);
    expect(e.message).toContain('AWS_SECRET_ACCESS_KEY');
    expect(() => { policy.check(parseDeployment(remote('PROVIDER_B'))); }).not.toThrow();
  });

  it('refuses, at load, a file that hands a deployment one of the server secrets or a bad entry', () => {
    expect(paramOf(() => parseConfig({ secrets: { env: ['ADMIN_KEY'] }, auth: { adminKeys: [{ name: 'ops', keyEnv: 'ADMIN_KEY' }] } }))).toBe('secrets.env[0]');
    expect(paramOf(() => parseConfig({ auth: { adminKeys: [{ name: 'ops', keyEnv: 'ADMIN_KEY' }] }, deployments: [remote('ADMIN_KEY')] }))).toBe(
      'deployments[0].apiKeyEnv',
    );
    expect(paramOf(() => parseConfig({ secrets: { env: ['*'] } }))).toBe('secrets.env[0]');
    expect(paramOf(() => parseConfig({ secrets: { env: ['A*B'] } }))).toBe('secrets.env[0]');
    expect(paramOf(() => parseConfig({ secrets: { files: [] } }))).toBe('secrets.files');
  });

  it('the credential reader reads only allowed variables (a spec that reached the catalog another way gets no key)', () => {
    const read = envCredentials({ PROVIDER_A: 'a', HOME: '/root', ADMIN_KEY: 'admin' }, policy);
    expect(read(parseDeployment(remote('PROVIDER_A'))).apiKey).toBe('a');
    expect(read(parseDeployment(remote('HOME'))).apiKey).toBeUndefined();
    expect(read(parseDeployment(remote('ADMIN_KEY'))).apiKey).toBeUndefined();
  });

  it('without a secrets block only the file deployments\' names are allowed', () => {
    const p = secretPolicy(parseConfig({ deployments: [{ name: 'f', runtime: 'openai', endpoint: 'http://x', apiKeyEnv: 'OPENAI_API_KEY' }] }));
    expect(p.allows('OPENAI_API_KEY')).toBe(true);
    expect(p.allows('PATH')).toBe(false);
  });
});
