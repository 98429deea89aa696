// Reconciliation decisions of the DeploymentManagerActor, as pure functions of
// the desired state (replica count, spec revision) and the replicas that exist.
// The actor applies the actions; nothing here has timers or I/O.
//
// Invariants the plan keeps (property-tested in reconcile.test.ts):
// - a serving replica is drained only while the serving count stays >= desired
//   (a rolling update surges one new replica, waits for it to serve, then drains
//   one old one), or when it is surplus to the desired count;
// - at most one replica of the new revision is loading during a roll;
// - a replica of the current revision that failed to load blocks starting more
//   (no crash loop); it stays listed with its reason until the next apply/scale;
// - a replica that failed after it served is replaced at once; the newest such
//   failure stays listed (with its reason) until the next apply/scale, older
//   ones and failed replicas of older revisions are discarded.

import type { ReplicaState } from './routing.js';

export interface ReplicaView {
  readonly id: string;
  /** Spec revision the replica was started with. */
  readonly revision: number;
  readonly state: ReplicaState;
  /** In-flight plus queued requests: the drain order prefers idle replicas. */
  readonly load: number;
  /** Start order (higher = newer). */
  readonly seq: number;
  /** The replica reached serving at least once. */
  readonly servedOnce: boolean;
}

export interface Desired {
  readonly replicas: number;
  readonly revision: number;
}

export type ReconcileAction =
  | { readonly type: 'start' }
  /** Stop routing to it, let in-flight work finish, then stop it. */
  | { readonly type: 'drain'; readonly id: string }
  /** Forget a failed replica (it serves nothing). */
  | { readonly type: 'discard'; readonly id: string };

export type DeploymentState = 'pending' | 'loading' | 'serving' | 'draining' | 'failed';

/** Drain order: replicas that do not serve yet, then the least loaded, then the newest. */
function drainOrder(a: ReplicaView, b: ReplicaView): number {
  const sa = a.state === 'serving' ? 1 : 0;
  const sb = b.state === 'serving' ? 1 : 0;
  if (sa !== sb) return sa - sb;
  if (a.load !== b.load) return a.load - b.load;
  return b.seq - a.seq;
}

function isLive(r: ReplicaView): boolean {
  return r.state === 'pending' || r.state === 'loading' || r.state === 'serving';
}

/** A current-revision replica that failed before ever serving: the spec (or the node) cannot run it. */
export function blockingFailure(desired: Desired, replicas: readonly ReplicaView[]): ReplicaView | undefined {
  return replicas.find((r) => r.state === 'failed' && r.revision === desired.revision && !r.servedOnce);
}

export function plan(desired: Desired, replicas: readonly ReplicaView[]): ReconcileAction[] {
  const actions: ReconcileAction[] = [];
  const newestCrash = replicas
    .filter((r) => r.state === 'failed' && r.revision === desired.revision && r.servedOnce)
    .reduce<ReplicaView | undefined>((a, r) => (a === undefined || r.seq > a.seq ? r : a), undefined);
  for (const r of replicas) {
    if (r.state === 'failed' && r !== newestCrash && (r.revision !== desired.revision || r.servedOnce)) actions.push({ type: 'discard', id: r.id });
  }
  const want = desired.replicas;
  const live = replicas.filter(isLive);
  const cur = live.filter((r) => r.revision === desired.revision).sort(drainOrder);
  const old = live.filter((r) => r.revision !== desired.revision).sort(drainOrder);

  // Surplus replicas of the current revision (a scale-down): the cheapest to lose first.
  const surplus = Math.max(0, cur.length - want);
  const curKept = cur.slice(surplus);
  for (const r of cur.slice(0, surplus)) actions.push({ type: 'drain', id: r.id });

  // Old replicas that do not serve give no capacity: drain them now.
  const oldServing = old.filter((r) => r.state === 'serving');
  for (const r of old) if (r.state !== 'serving') actions.push({ type: 'drain', id: r.id });

  // Old serving replicas go only while the serving count stays at or above desired.
  const servingKept = curKept.filter((r) => r.state === 'serving').length + oldServing.length;
  const oldDrained = Math.min(oldServing.length, Math.max(0, servingKept - want));
  for (const r of oldServing.slice(0, oldDrained)) actions.push({ type: 'drain', id: r.id });
  const oldLeft = oldServing.length - oldDrained;

  if (blockingFailure(desired, replicas) !== undefined || curKept.length >= want) return actions;
  const notReady = curKept.filter((r) => r.state !== 'serving').length;
  // Fill missing capacity at once; during a roll, surge one new replica at a time.
  const deficit = want - curKept.length - oldLeft;
  const surge = oldLeft > 0 && notReady === 0 ? 1 : 0;
  const starts = Math.min(want - curKept.length, Math.max(deficit, surge));
  for (let i = 0; i < starts; i++) actions.push({ type: 'start' });
  return actions;
}

/**
 * The deployment's state, first rule that holds:
 * 1. failed   — a replica of the current spec failed to load (reconciling is stuck; older replicas may still serve);
 * 2. pending  — a replica waits for placement (no resources);
 * 3. loading  — a replica is loading;
 * 4. draining — a replica is draining (scale-down or roll finishing);
 * 5. serving  — desired replicas of the current spec serve (0 desired and none left counts too);
 * 6. loading  — otherwise (the manager has not started the missing replicas yet).
 */
export function deploymentState(desired: Desired, replicas: readonly ReplicaView[]): DeploymentState {
  if (blockingFailure(desired, replicas) !== undefined) return 'failed';
  if (replicas.some((r) => r.state === 'pending')) return 'pending';
  if (replicas.some((r) => r.state === 'loading')) return 'loading';
  if (replicas.some((r) => r.state === 'draining')) return 'draining';
  const serving = replicas.filter((r) => r.state === 'serving' && r.revision === desired.revision).length;
  return serving >= desired.replicas ? 'serving' : 'loading';
}
