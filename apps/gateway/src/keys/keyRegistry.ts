// This node's current copy of the virtual keys, indexed for the request path:
// a presented key is hashed once and looked up by hash (a Map hit, no scan, so
// its cost does not grow with the number of keys and its timing says nothing
// about other keys). A rotated key's old hash leaves the index in the same step
// that adds the new one, so the old secret stops working at once on this node.
// Who fills it: the store at startup (one process) or the etcd watch of `keys/`
// (cluster); both call `replaceAll` / `upsert`. Listeners (key budgets, limits)
// hear every change.

import type { Principal } from '@inference/actors';
import { type VirtualKey, hashSecret, stateOf } from './virtualKey.js';

export type KeyMatch =
  | { readonly kind: 'active'; readonly key: VirtualKey; readonly principal: Principal }
  | { readonly kind: 'revoked' | 'expired'; readonly key: VirtualKey };

export class KeyRegistry {
  private readonly byHash = new Map<string, VirtualKey>();
  private readonly byName = new Map<string, VirtualKey>();
  private readonly principals = new Map<string, Principal>();
  private readonly listeners = new Set<(key: VirtualKey) => void>();

  /** Records held (revoked and expired included): once any exists, the API requires a key. */
  get size(): number {
    return this.byName.size;
  }

  get(name: string): VirtualKey | undefined {
    return this.byName.get(name);
  }

  list(): VirtualKey[] {
    return [...this.byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** The key a presented secret belongs to, with its state at `now`; undefined if none. */
  match(presented: string, now: number): KeyMatch | undefined {
    return this.matchHash(hashSecret(presented), now);
  }

  matchHash(hash: string, now: number): KeyMatch | undefined {
    const key = this.byHash.get(hash);
    if (key === undefined) return undefined;
    const state = stateOf(key, now);
    if (state !== 'active') return { kind: state, key };
    const principal = this.principals.get(key.name);
    return principal === undefined ? undefined : { kind: 'active', key, principal };
  }

  upsert(key: VirtualKey): void {
    const old = this.byName.get(key.name);
    if (old !== undefined) this.byHash.delete(old.hash);
    this.byName.set(key.name, key);
    this.byHash.set(key.hash, key);
    this.principals.set(key.name, { name: key.name, deployments: key.deployments });
    for (const l of this.listeners) l(key);
  }

  replaceAll(keys: readonly VirtualKey[]): void {
    const keep = new Set(keys.map((k) => k.name));
    for (const [name, old] of this.byName) {
      if (keep.has(name)) continue;
      // A record that vanished from the store (deleted by hand) counts as revoked.
      this.byName.delete(name);
      this.byHash.delete(old.hash);
      this.principals.delete(name);
      for (const l of this.listeners) l({ ...old, revokedAt: old.revokedAt ?? Date.now() });
    }
    for (const k of keys) {
      const old = this.byName.get(k.name);
      if (old?.version === k.version && old.hash === k.hash && old.updatedAt === k.updatedAt) continue;
      this.upsert(k);
    }
  }

  onChange(listener: (key: VirtualKey) => void): () => void {
    this.listeners.add(listener);
    return () => { this.listeners.delete(listener); };
  }
}
