// State the nodes of a cluster share besides the catalog: virtual API keys
// (`keys/<name>`), the audit trail (`audit/<id>`) and budget resets
// (`resets/<scope>`). Every node watches these prefixes and holds a current copy;
// every write goes through the manager leader (a fenced write, like the catalog),
// which applies writes one at a time. A write may name the mod revision of the
// entry it replaces (0: the entry must be absent): the leader first waits until
// its own copy holds its previous write, then refuses the write if the entry
// moved meanwhile, so two admins changing one key at once cannot both win.
// Only keys under these prefixes can be written this way.

import type { Counters, Json, Leadership, PrefixWatch } from '@inference/cluster';
import { InferenceError, asObject, noUnknownKeys, optNumber, reqString } from '@inference/core';

export const SHARED_PREFIX = { keys: 'keys/', audit: 'audit/', resets: 'resets/' } as const;
export type SharedPrefix = (typeof SHARED_PREFIX)[keyof typeof SHARED_PREFIX];
const PREFIXES: readonly string[] = Object.values(SHARED_PREFIX);
const SEGMENT = /^[A-Za-z0-9._:@#-]{1,200}$/;

export type SharedOp =
  | { readonly op: 'put'; readonly key: string; readonly value: Json; readonly expect?: number | undefined }
  | { readonly op: 'delete'; readonly key: string };

function prefixOf(key: string): string {
  const p = PREFIXES.find((x) => key.startsWith(x));
  if (p === undefined || !SEGMENT.test(key.slice(p.length))) {
    throw new InferenceError('invalid_request', `key '${key}' is not under a shared prefix (${PREFIXES.join(', ')})`, { param: 'key' });
  }
  return p;
}

/** A shared write from a peer's body (already parsed as an object with `op`). */
export function parseSharedOp(o: Record<string, unknown>): SharedOp {
  if (o.op === 'delete') {
    noUnknownKeys(o, ['op', 'key'], '');
    const key = reqString(o, 'key', '');
    prefixOf(key);
    return { op: 'delete', key };
  }
  noUnknownKeys(o, ['op', 'key', 'value', 'expect'], '');
  const key = reqString(o, 'key', '');
  prefixOf(key);
  if (o.value === undefined) throw new InferenceError('invalid_request', 'value: is required', { param: 'value' });
  const expect = optNumber(o, 'expect', '', { min: 0, integer: true });
  return { op: 'put', key, value: asObject(o.value, 'value') as Json, expect };
}

/** The leader's side: conditional writes, one at a time. */
export class SharedWrites {
  private chain: Promise<unknown> = Promise.resolve();
  /** The revision of the last write per prefix (a watch's revision moves only with its own prefix). */
  private readonly last = new Map<string, number>();

  constructor(private readonly watchOf: (prefix: string) => PrefixWatch | undefined) {}

  write(l: Leadership, op: SharedOp): Promise<number> {
    const run = this.chain.then(() => this.one(l, op));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async one(l: Leadership, op: SharedOp): Promise<number> {
    const prefix = prefixOf(op.key);
    const watch = this.watchOf(prefix);
    if (op.op === 'put' && op.expect !== undefined) {
      if (watch === undefined) throw new InferenceError('internal', `no watch of ${prefix}`);
      const deadline = Date.now() + 5000;
      const last = this.last.get(prefix) ?? 0;
      while (watch.revision() < last && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      const now = watch.entries().get(op.key.slice(prefix.length))?.modRevision ?? 0;
      if (now !== op.expect) {
        throw new InferenceError(
          'invalid_request',
          `'${op.key.slice(prefix.length)}' changed while this write was on its way (revision ${now}, expected ${op.expect}); read it again and retry`,
          { param: 'version' },
        );
      }
    }
    const rev = op.op === 'put' ? await l.put(op.key, op.value) : await l.delete(op.key);
    this.last.set(prefix, Math.max(this.last.get(prefix) ?? 0, rev));
    return rev;
  }
}

/** What the gateway's keys, audit and budget modules see of the cluster. */
export interface SharedState {
  /** The live copy of one shared prefix (opened when the node joined). */
  watch(prefix: SharedPrefix): PrefixWatch;
  /** Writes through the leader; resolves with the revision once this node's copy holds it. */
  put(key: string, value: Json, expect?: number): Promise<number>;
  delete(key: string): Promise<number>;
  /** Cluster-wide counters (per-node totals, summed). */
  readonly counters: Counters;
  /** This node's name. */
  readonly node: string;
}

/** A shared write as the node sends it: to the leader, resolved once `watch` (the key's prefix) holds it. */
export type SharedWrite = (op: SharedOp, watch: PrefixWatch) => Promise<number>;

function sharedPrefixOf(key: string): SharedPrefix {
  const p = Object.values(SHARED_PREFIX).find((x) => key.startsWith(x));
  if (p === undefined) throw new Error(`'${key}' is not under a shared prefix`);
  return p;
}

/** The node's view of the shared state over its watches; writes go through `write`. */
export function nodeSharedState(node: string, counters: Counters, watches: ReadonlyMap<string, PrefixWatch>, write: SharedWrite): SharedState {
  const watch = (p: SharedPrefix): PrefixWatch => {
    const w = watches.get(p);
    if (w === undefined) throw new Error(`no watch of ${p}`);
    return w;
  };
  return {
    node,
    counters,
    watch,
    put: (key, value, expect) => write({ op: 'put', key, value, expect }, watch(sharedPrefixOf(key))),
    delete: (key) => write({ op: 'delete', key }, watch(sharedPrefixOf(key))),
  };
}
