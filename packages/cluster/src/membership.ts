// A node's membership: its session (lease), its membership entry carrying its
// inventory, its replica entries, its elections and its counters. Everything a
// node writes about itself goes through here, under keys that name the node,
// so each node is the only writer of its own entries, and every such entry is
// bound to the node's lease so it vanishes with the node.

import { KvCounters } from './counters.js';
import { campaign } from './election.js';
import { PREFIX, memberKey, replicaKey } from './keys.js';
import type { KvBackend } from './kv.js';
import { Listeners } from './listeners.js';
import { KvPrefixWatch } from './prefixWatch.js';
import { Session } from './session.js';
import type { Entry, Json, JoinOptions, Leadership, Member, Membership, NodeSpec, SessionState, Unsubscribe } from './types.js';

export class KvMembership implements Membership {
  readonly counters: KvCounters;
  private readonly memberWatch: KvPrefixWatch;
  private readonly counterWatch: KvPrefixWatch;
  private readonly memberListeners = new Listeners<readonly Member[]>();
  private inventory: Json;
  private draining = false;
  private closed = false;

  private constructor(
    private readonly kv: KvBackend,
    private readonly session: Session,
    readonly node: NodeSpec,
    counterSyncMs: number,
  ) {
    this.inventory = node.inventory;
    this.memberWatch = new KvPrefixWatch(kv, PREFIX.members);
    this.memberWatch.subscribe((u) => {
      if (u.type !== 'stale' && u.type !== 'live') this.memberListeners.emit(this.members());
    });
    this.counterWatch = new KvPrefixWatch(kv, PREFIX.counters);
    this.counters = new KvCounters(kv, node.name, this.counterWatch, counterSyncMs);
  }

  static async join(kv: KvBackend, node: NodeSpec, options: JoinOptions = {}): Promise<KvMembership> {
    memberKey(node.name);
    const session = await Session.open(kv, options.ttlSeconds ?? 10);
    const m = new KvMembership(kv, session, node, options.counterSyncMs ?? 1000);
    try {
      await m.writeEntry();
      await Promise.all([m.memberWatch.ready, m.counterWatch.ready]);
    } catch (e) {
      await m.close(true);
      throw e;
    }
    return m;
  }

  state(): SessionState {
    return this.session.state();
  }

  onState(listener: (state: SessionState) => void): Unsubscribe {
    return this.session.changes.add(listener);
  }

  members(): readonly Member[] {
    return [...this.memberWatch.entries().values()].flatMap((e) => toMember(e) ?? []).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  onMembers(listener: (members: readonly Member[]) => void): Unsubscribe {
    return this.memberListeners.add(listener);
  }

  async setInventory(inventory: Json): Promise<void> {
    this.inventory = inventory;
    await this.writeEntry();
  }

  async setDraining(): Promise<void> {
    this.draining = true;
    await this.writeEntry();
  }

  async putReplica(replicaId: string, value: Json): Promise<void> {
    await this.session.putOwned(replicaKey(this.node.name, replicaId), JSON.stringify(value));
  }

  async deleteReplica(replicaId: string): Promise<void> {
    await this.session.deleteOwned(replicaKey(this.node.name, replicaId));
  }

  campaign(role: string, signal?: AbortSignal): Promise<Leadership> {
    return campaign(this.kv, this.session, this.node.name, role, signal);
  }

  async leave(): Promise<void> {
    await this.close(true);
  }

  /** Stop. With `revoke` false the lease is left to expire (what a crash looks like to others). */
  async close(revoke: boolean): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.counters.close();
    this.memberWatch.close();
    this.counterWatch.close();
    this.memberListeners.clear();
    await this.session.close(revoke);
  }

  private async writeEntry(): Promise<void> {
    const value: Json = { advertise: this.node.advertise, inventory: this.inventory, ...(this.draining ? { draining: true } : {}) };
    await this.session.putOwned(memberKey(this.node.name), JSON.stringify(value));
  }
}

function toMember(e: Entry): Member | undefined {
  const v = e.value;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
  const advertise = v.advertise;
  if (typeof advertise !== 'string') return undefined;
  return { name: e.key, advertise, inventory: v.inventory ?? null, since: e.createRevision, draining: v.draining === true };
}
