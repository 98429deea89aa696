// Makes this node run its share of the cluster catalog. Watches `catalog/` (the
// specs) and `placement/` (replica counts per node) and applies every catalog
// deployment locally with `replicas` = the count placed on this node (0 keeps the
// deployment declared, so its requests route to other nodes' replicas and
// /v1/models lists it); a deployment gone from the catalog is removed locally.
// Invariants: applies run one at a time in watch order; an unchanged local spec
// is not applied again (no rolls); while the store is unreachable nothing
// changes (the last table keeps serving).

import { type DeploymentSpec, parseDeployment } from '@inference/core';
import type { PrefixWatch } from '@inference/cluster';
import type { Runtime } from '../runtime.js';
import { nameOf } from './clusterKeys.js';
import { countsOf } from './placementPlan.js';

export class LocalApplier {
  private readonly applied = new Map<string, string>();
  private chain: Promise<void> = Promise.resolve();
  private readonly unsubscribe: (() => void)[] = [];
  private closed = false;

  constructor(
    private readonly self: string,
    /** The node's runtime, whose apply/remove do not touch the cluster. */
    private readonly runtime: Pick<Runtime, 'apply' | 'remove' | 'runtimes'>,
    private readonly catalog: PrefixWatch,
    private readonly placement: PrefixWatch,
    private readonly onError: (e: unknown) => void,
  ) {
    for (const w of [catalog, placement]) {
      this.unsubscribe.push(w.subscribe((u) => {
        if (u.type !== 'stale' && u.type !== 'live') this.sync();
      }));
    }
  }

  /** The specs in the catalog (invalid entries are skipped and reported). */
  specs(): DeploymentSpec[] {
    const out: DeploymentSpec[] = [];
    for (const e of this.catalog.entries().values()) {
      try {
        out.push(parseDeployment(e.value, '', this.runtime.runtimes));
      } catch (err) {
        this.onError(new Error(`catalog entry '${nameOf(e.key)}' is not a valid deployment: ${err instanceof Error ? err.message : String(err)}`));
      }
    }
    return out;
  }

  /** Resolves when every change seen so far has been applied. */
  settled(): Promise<void> {
    return this.chain;
  }

  private sync(): void {
    if (this.closed) return;
    this.chain = this.chain.then(() => this.apply()).catch(this.onError);
  }

  /**
   * True when the local runtime holds exactly what the catalog and placement seen
   * so far ask of this node (every deployment applied, none left over): /ready.
   */
  current(): boolean {
    const want = this.wanted();
    if (want.size !== this.applied.size) return false;
    for (const [name, spec] of want) if (this.applied.get(name) !== JSON.stringify(spec)) return false;
    return true;
  }

  private wanted(): Map<string, DeploymentSpec> {
    const want = new Map<string, DeploymentSpec>();
    for (const spec of this.specs()) {
      const placed = this.placement.entries().get(spec.name.replaceAll('/', '@'));
      const mine = countsOf(placed?.value)[this.self] ?? 0;
      want.set(spec.name, { ...spec, replicas: mine });
    }
    return want;
  }

  private async apply(): Promise<void> {
    if (this.closed) return;
    const want = this.wanted();
    for (const [name, spec] of want) {
      const text = JSON.stringify(spec);
      if (this.applied.get(name) === text) continue;
      await this.runtime.apply(spec);
      this.applied.set(name, text);
    }
    for (const name of [...this.applied.keys()]) {
      if (want.has(name)) continue;
      this.applied.delete(name);
      await this.runtime.remove(name);
    }
  }

  close(): void {
    this.closed = true;
    for (const u of this.unsubscribe) u();
  }
}
