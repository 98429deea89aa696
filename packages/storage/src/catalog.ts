// The persisted catalog of deployments and its one rule: what an operator did
// through the admin API (apply, scale, remove) wins over the config file on
// restart; deployments the admin API never touched follow the file (they are
// re-seeded from it each start, so editing the file and restarting applies).
// A removal through the admin API is kept as a tombstone, so a deployment that
// is also in the file stays removed. `Catalog` is the only writer of entries.

import { type DeploymentSpec, InferenceError, parseDeployment } from '@inference/core';
import type { CatalogEntry, Store } from './store.js';

export interface SeedPlan {
  /** The deployments to run, in order: the file's first, then admin-only ones. */
  readonly specs: DeploymentSpec[];
  /** Entries to write so the store matches the plan. */
  readonly put: CatalogEntry[];
  /** Names to delete: file-seeded entries whose deployment left the file. */
  readonly drop: string[];
}

function parseStored(e: CatalogEntry, runtimes: readonly string[]): DeploymentSpec {
  try {
    return parseDeployment(e.spec, `catalog[${e.name}]`, runtimes);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new InferenceError('invalid_request', `storage: the stored deployment '${e.name}' is no longer valid (${why}); remove it with DELETE /admin/deployments/${e.name} or delete the storage file`, { cause: err });
  }
}

/**
 * Pure: merges the config file's deployments with the stored entries.
 * `runtimes`: the runtimes registered beside the built-in ones (stored specs may name them).
 */
export function planSeed(fromFile: readonly DeploymentSpec[], stored: readonly CatalogEntry[], now: number, runtimes: readonly string[] = []): SeedPlan {
  const byName = new Map(stored.map((e) => [e.name, e]));
  const specs: DeploymentSpec[] = [];
  const put: CatalogEntry[] = [];
  const drop: string[] = [];
  const inFile = new Set<string>();
  for (const spec of fromFile) {
    inFile.add(spec.name);
    const e = byName.get(spec.name);
    if (e?.source === 'admin') {
      if (e.spec !== null) specs.push(parseStored(e, runtimes));
      continue;
    }
    specs.push(spec);
    put.push({ name: spec.name, spec, source: 'config', updatedAt: now });
  }
  for (const e of stored) {
    if (inFile.has(e.name)) continue;
    if (e.source === 'config') drop.push(e.name);
    else if (e.spec !== null) specs.push(parseStored(e, runtimes));
  }
  return { specs, put, drop };
}

export class Catalog {
  constructor(
    private readonly store: Store,
    private readonly now: () => number = Date.now,
    /** Runtimes registered beside the built-in ones. */
    private readonly runtimes: readonly string[] = [],
  ) {}

  /** Applies the seed rule against the store and returns the deployments to run. */
  seed(fromFile: readonly DeploymentSpec[]): DeploymentSpec[] {
    const plan = planSeed(fromFile, this.store.catalog(), this.now(), this.runtimes);
    for (const name of plan.drop) this.store.deleteCatalog(name);
    for (const e of plan.put) this.store.putCatalog(e);
    return plan.specs;
  }

  /** Records a deployment applied (or scaled) through the admin API. */
  applied(spec: DeploymentSpec): void {
    this.store.putCatalog({ name: spec.name, spec, source: 'admin', updatedAt: this.now() });
  }

  /** Records a removal through the admin API (a tombstone wins over the file). */
  removed(name: string): void {
    this.store.putCatalog({ name, spec: null, source: 'admin', updatedAt: this.now() });
  }
}
