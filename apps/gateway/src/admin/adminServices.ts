// The run-time admin services beside the deployment catalog, wired for one
// process or for a cluster node: virtual keys (registry, backend, limits,
// service), the audit trail, and budget resets. One process keeps keys and audit
// records in the catalog storage; a cluster node keeps them in etcd under the
// shared prefixes (cluster/sharedState.ts) and counts key limits in the cluster's
// counters. Virtual keys' budgets join the runtime's key budgets as they change.

import type { ClusterBudgetShare, Runtime, SharedState } from '@inference/runtime';
import { type AuditLog, ClusterAuditLog, DEFAULT_AUDIT_RECORDS, StoreAuditLog } from '../audit/auditLog.js';
import { type BudgetResets, ClusterBudgetResets, LocalBudgetResets } from './budgetReset.js';
import { ClusterKeyBackend, type KeyBackend, StoreKeyBackend } from '../keys/keyBackend.js';
import { KeyLimits } from '../keys/keyLimits.js';
import { KeyRegistry } from '../keys/keyRegistry.js';
import { KeyService } from '../keys/keyService.js';

export interface AdminServices {
  readonly registry: KeyRegistry;
  readonly keys: KeyService;
  readonly limits: KeyLimits;
  readonly audit: AuditLog;
  readonly resets: BudgetResets;
  close(): void;
}

export interface AdminServicesOptions {
  /** The node's own runtime (budgets, storage). */
  readonly base: Runtime;
  /** Present in cluster mode. */
  readonly cluster?: { readonly shared: SharedState; readonly budgetShare: ClusterBudgetShare } | undefined;
  readonly log: (message: string) => void;
}

export function startAdminServices(o: AdminServicesOptions): AdminServices {
  const { base } = o;
  const registry = new KeyRegistry();
  // Before any record is loaded, so every key's budget is seen.
  const configured = new Set(base.config.auth.apiKeys.map((k) => k.name));
  registry.onChange((k) => {
    if (configured.has(k.name)) return;
    if (k.budget !== undefined && k.revokedAt === undefined) base.keyBudgets.set(k.name, k.budget);
    else base.keyBudgets.delete(k.name);
  });
  const onInvalid = (e: unknown): void => { o.log(`keys: ${e instanceof Error ? e.message : String(e)}`); };
  const keep = base.config.audit?.maxRecords ?? DEFAULT_AUDIT_RECORDS;
  const limits = new KeyLimits(registry);
  let backend: KeyBackend;
  let audit: AuditLog;
  let resets: BudgetResets;
  let close = (): void => undefined;
  const c = o.cluster;
  if (c === undefined) {
    backend = new StoreKeyBackend(base.store, registry, onInvalid);
    audit = new StoreAuditLog(base.store, keep);
    resets = new LocalBudgetResets(base.budget);
  } else {
    const kb = new ClusterKeyBackend(c.shared, registry, onInvalid);
    const cr = new ClusterBudgetResets(c.shared, base.budget, c.budgetShare);
    backend = kb;
    audit = new ClusterAuditLog(c.shared, keep);
    resets = cr;
    limits.attach(c.shared.counters);
    close = () => {
      kb.close();
      cr.close();
    };
  }
  const keys = new KeyService(registry, backend, audit, configured);
  return { registry, keys, limits, audit, resets, close };
}
