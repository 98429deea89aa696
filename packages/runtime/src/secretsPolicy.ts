// Which environment variables deployments may read as upstream credentials
// (`apiKeyEnv`): an allow-list, so whoever can apply a deployment cannot point
// one at an endpoint of their own and receive another secret of the server as
// its bearer token (docs/security.md, "Secrets").
// - Allowed: the names and prefixes (`PREFIX_*`) listed in `secrets.env`, and the
//   `apiKeyEnv` names of the deployments in the config file itself: the file is
//   the operator's own word, the same authority that writes the list, and a
//   name it gives a deployment is by definition a deployment credential.
// - Never allowed, whatever the list says: the variables holding the server's
//   own keys (auth.apiKeys, auth.adminKeys, cluster.secretEnv, the etcd
//   password, the CLI's admin key). Naming one in the file is a start-up error.
// The check runs where specs enter (the admin API, the cluster port) and again
// where credentials are read, so a spec that reached the catalog some other way
// (an older catalog, etcd written by hand) still reads nothing it may not.

import { type DeploymentSpec, InferenceError, invalid, join } from '@inference/core';

export interface SecretsConfig {
  /** Exact variable names, or prefixes written `PREFIX_*`. */
  readonly env: readonly string[];
}

const ENTRY = /^[A-Za-z_][A-Za-z0-9_]*\*?$/;

/** Validates `secrets.env` entries (the config module parses the block). */
export function parseSecretEntries(list: readonly unknown[], path: string): string[] {
  return list.map((e, i) => {
    if (typeof e !== 'string' || !ENTRY.test(e)) invalid(join(path, i), "expected an environment variable name, or a prefix ending in '*' (e.g. PROVIDER_*)");
    return e;
  });
}

export interface SecretPolicyInput {
  readonly secrets?: SecretsConfig | undefined;
  readonly deployments: readonly DeploymentSpec[];
  /** Variables that hold the server's own secrets (never readable by a deployment). */
  readonly reserved: readonly { readonly key: string; readonly name: string }[];
}

export class SecretAllowList {
  private readonly exact = new Set<string>();
  private readonly prefixes: string[] = [];
  private readonly reserved = new Map<string, string>();

  constructor(input: SecretPolicyInput) {
    for (const r of input.reserved) this.reserved.set(r.name, r.key);
    (input.secrets?.env ?? []).forEach((e, i) => {
      if (e.endsWith('*')) {
        this.prefixes.push(e.slice(0, -1));
        return;
      }
      const owner = this.reserved.get(e);
      if (owner !== undefined) invalid(join('secrets.env', i), `${e} holds ${owner}; deployments may not read it`);
      this.exact.add(e);
    });
    input.deployments.forEach((d, i) => {
      if (d.apiKeyEnv === undefined) return;
      const owner = this.reserved.get(d.apiKeyEnv);
      if (owner !== undefined) invalid(`deployments[${i}].apiKeyEnv`, `${d.apiKeyEnv} holds ${owner}; a deployment may not read it`);
      this.exact.add(d.apiKeyEnv);
    });
  }

  /** Whether a deployment may read this variable. */
  allows(name: string): boolean {
    if (this.reserved.has(name)) return false;
    return this.exact.has(name) || this.prefixes.some((p) => name.startsWith(p));
  }

  /** Refuses (400, param apiKeyEnv) a spec that names a variable outside the list. */
  check(spec: DeploymentSpec): void {
    const name = spec.apiKeyEnv;
    if (name === undefined || this.allows(name)) return;
    throw new InferenceError(
      'invalid_request',
      `apiKeyEnv: environment variable ${name} is not one deployments may read; the operator allows it in the config file (secrets.env)`,
      { param: 'apiKeyEnv' },
    );
  }
}
