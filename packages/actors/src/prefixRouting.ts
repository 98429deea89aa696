// Prefix-aware routing, as pure functions and one bounded index per deployment.
//
// The routing key of a generate request is a list of chained block hashes of its
// leading text (messages in order, or the completion prompt): one running hash over
// the text, sampled every PREFIX_BLOCK_CHARS characters, so key[i] names the whole
// text up to block i and two requests share key[0..i] exactly when (up to hash
// collisions) they share that much leading text. No tokenization on the request
// path: the cost is one pass over at most PREFIX_BLOCK_CHARS * PREFIX_MAX_BLOCKS
// characters.
//
// PrefixIndex maps a block hash to the few replicas that recently served a prompt
// containing it. Invariants: at most `capacity` hashes and `maxHolders` replicas per
// hash (memory is bounded whatever the traffic); least recently used hashes go
// first, and a request's shallow blocks are touched after its deep ones so a prefix
// is never evicted before its extensions; holders older than `ttlMs` do not count.
// The index is a guess about engine caches, never a promise: a wrong guess costs a
// prefill, not a wrong answer.

import type { GenerateRequest, RoutingSpec } from '@inference/core';
import { type ReplicaEntry, loadOf, pickReplica, routable } from './routing.js';

/** Characters per block: about 30-60 tokens of English text. */
export const PREFIX_BLOCK_CHARS = 128;
/** Blocks hashed at most (the key's cost is bounded whatever the prompt's length). */
export const PREFIX_MAX_BLOCKS = 64;

/** Chained block hashes of a request's leading text; empty for text shorter than one block. */
export type PrefixKey = readonly number[];

/** Streams text into a running FNV-1a hash and records it at every block boundary. */
class BlockHasher {
  readonly key: number[] = [];
  private h = 0x811c9dc5;
  private n = 0;

  constructor(private readonly blockChars: number, private readonly maxBlocks: number) {}

  get full(): boolean {
    return this.key.length >= this.maxBlocks;
  }

  push(text: string): void {
    // Locals in the loop: this runs once per prompt character.
    let h = this.h;
    let n = this.n;
    const len = text.length;
    const block = this.blockChars;
    for (let i = 0; i < len; i++) {
      h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
      if (++n === block) {
        n = 0;
        this.key.push(fmix32(h));
        if (this.key.length >= this.maxBlocks) break;
      }
    }
    this.h = h;
    this.n = n;
  }
}

/** Murmur3's finalizer: spreads FNV's weak low bits over the whole word. */
function fmix32(x: number): number {
  let h = x ^ (x >>> 16);
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

// Separators outside ordinary text, so 'ab'+'c' and 'a'+'bc' hash apart.
const ROLE_MARK = '\u001d';
const END_MARK = '\u001e';

export function prefixKey(req: GenerateRequest, blockChars = PREFIX_BLOCK_CHARS, maxBlocks = PREFIX_MAX_BLOCKS): PrefixKey {
  const h = new BlockHasher(blockChars, maxBlocks);
  switch (req.kind) {
    case 'completion':
      h.push(req.prompt);
      break;
    case 'chat':
      for (const m of req.messages) {
        if (h.full) break;
        h.push(ROLE_MARK);
        h.push(m.role);
        h.push(END_MARK);
        if (m.content !== null) h.push(m.content);
        h.push(END_MARK);
      }
      break;
    default: {
      const never: never = req;
      throw new Error(`unknown request kind ${JSON.stringify(never)}`);
    }
  }
  return h.key;
}

export interface PrefixIndexOptions {
  /** Block hashes kept (each holds up to maxHolders replica ids). */
  readonly capacity?: number;
  readonly maxHolders?: number;
  /** A replica that has not served a prefix for this long is not taken to hold it. */
  readonly ttlMs?: number;
}

interface Holder {
  readonly replica: string;
  at: number;
}

export class PrefixIndex {
  readonly capacity: number;
  readonly maxHolders: number;
  readonly ttlMs: number;
  /** Map order is recency order: the first key is the least recently used. */
  private readonly entries = new Map<number, Holder[]>();

  constructor(o: PrefixIndexOptions = {}) {
    this.capacity = Math.max(1, o.capacity ?? 16_384);
    this.maxHolders = Math.max(1, o.maxHolders ?? 4);
    this.ttlMs = o.ttlMs ?? 600_000;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Holder lists' total length (memory is O(size + holders)). */
  holders(): number {
    let n = 0;
    for (const hs of this.entries.values()) n += hs.length;
    return n;
  }

  /** `replica` now serves `key`: it holds every block of it. */
  record(key: PrefixKey, replica: string, now: number): void {
    // Deepest first, so the shallow blocks end up the most recently used.
    for (let i = key.length - 1; i >= 0; i--) {
      const hash = key[i];
      if (hash === undefined) continue;
      const hs = this.entries.get(hash) ?? [];
      this.entries.delete(hash);
      const mine = hs.find((h) => h.replica === replica);
      if (mine !== undefined) mine.at = now;
      else if (hs.length < this.maxHolders) hs.push({ replica, at: now });
      else {
        let oldest = 0;
        for (let j = 1; j < hs.length; j++) if ((hs[j]?.at ?? 0) < (hs[oldest]?.at ?? 0)) oldest = j;
        hs[oldest] = { replica, at: now };
      }
      this.entries.set(hash, hs);
    }
    while (this.entries.size > this.capacity) {
      const first = this.entries.keys().next();
      if (first.done === true) break;
      this.entries.delete(first.value);
    }
  }

  /** For each replica holding a prefix of `key`: how many leading blocks it holds. */
  match(key: PrefixKey, now: number): Map<string, number> {
    const depth = new Map<string, number>();
    for (let i = 0; i < key.length; i++) {
      const hash = key[i];
      const hs = hash === undefined ? undefined : this.entries.get(hash);
      if (hs === undefined) break;
      let live = false;
      for (const h of hs) {
        if (now - h.at > this.ttlMs) continue;
        // Chained hashes: holding block i means having served blocks 0..i.
        depth.set(h.replica, i + 1);
        live = true;
      }
      if (!live) break;
    }
    return depth;
  }

  /** A replica that left (unregistered, failed, draining) holds nothing any more. */
  forget(replica: string): void {
    for (const [hash, hs] of this.entries) {
      const rest = hs.filter((h) => h.replica !== replica);
      if (rest.length === hs.length) continue;
      if (rest.length === 0) this.entries.delete(hash);
      else this.entries.set(hash, rest);
    }
  }
}

/**
 * What a pick did, for the routing metrics: `hit` went to a replica holding part of
 * the prompt, `spill` found holders all above the load slack and went to the least
 * loaded replica, `miss` found no holder (or a prompt shorter than one block);
 * `none` is a policy that does not look at prompts.
 */
export type RouteOutcome = 'hit' | 'miss' | 'spill' | 'none';

export interface RouteChoice {
  readonly replica: ReplicaEntry;
  readonly outcome: RouteOutcome;
  /** Blocks of the key the chosen replica was taken to hold. */
  readonly depth: number;
}

/**
 * Prefix policy: the routable replica holding the longest prefix of `key`, among those
 * whose load is at most the least-loaded routable replica's plus `slack` or, with
 * `freeSlot`, that still have a free sequence slot (ties: lower load); otherwise the
 * least-load pick. A holder with a free slot starts the request at once and reuses its
 * cache, so following it costs no wait; the slack bounds the queueing once it is full.
 */
export function pickPrefix(
  replicas: readonly ReplicaEntry[], key: PrefixKey, index: PrefixIndex, slack: number, now: number,
  random: () => number = Math.random, exclude?: ReadonlySet<string>, freeSlot = false,
): RouteChoice | undefined {
  const least = pickReplica(replicas, random, exclude);
  if (least === undefined) return undefined;
  if (key.length === 0) return { replica: least, outcome: 'miss', depth: 0 };
  const depths = index.match(key, now);
  if (depths.size === 0) return { replica: least, outcome: 'miss', depth: 0 };
  const bound = loadOf(least) + slack;
  let best: ReplicaEntry | undefined;
  let bestDepth = 0;
  let bestLoad = Number.POSITIVE_INFINITY;
  let held = false;
  for (const r of replicas) {
    const d = depths.get(r.id);
    if (d === undefined || !routable(r, exclude)) continue;
    held = true;
    const load = loadOf(r);
    if (load > bound && !(freeSlot && hasFreeSlot(r))) continue;
    if (d > bestDepth || (d === bestDepth && load < bestLoad)) {
      best = r;
      bestDepth = d;
      bestLoad = load;
    }
  }
  if (best !== undefined) return { replica: best, outcome: 'hit', depth: bestDepth };
  return { replica: least, outcome: held ? 'spill' : 'miss', depth: 0 };
}

/**
 * Whether `r` can start one more request at once: its outstanding work, counted as
 * routing counts it but without the remote bias, is below the sequence slots it
 * reports (a replica that reports no capacity never has a free slot).
 */
export function hasFreeSlot(r: ReplicaEntry): boolean {
  const l = r.runner.load();
  return Math.max(r.assigned ?? 0, l.outstanding) < l.capacity;
}

/** Round robin over the routable replicas, from `cursor` (the caller keeps `next`). */
export function pickRoundRobin(
  replicas: readonly ReplicaEntry[],
  cursor: number,
  exclude?: ReadonlySet<string>,
): { replica: ReplicaEntry; next: number } | undefined {
  const n = replicas.length;
  for (let k = 0; k < n; k++) {
    const i = (cursor + k) % n;
    const r = replicas[i];
    if (r !== undefined && routable(r, exclude)) return { replica: r, next: (i + 1) % n };
  }
  return undefined;
}

/** A deployment's routing state in the coordinator. */
export interface DeploymentRouting {
  spec: RoutingSpec;
  /** Present under the prefix policy. */
  index: PrefixIndex | undefined;
  cursor: number;
}

export function routingState(spec: RoutingSpec, prev?: DeploymentRouting, options?: PrefixIndexOptions): DeploymentRouting {
  const index = spec.policy === 'prefix' ? (prev?.index ?? new PrefixIndex(options)) : undefined;
  return { spec, index, cursor: prev?.cursor ?? 0 };
}

/**
 * One pick under a deployment's policy. `key` is asked for only under the prefix
 * policy (it costs a pass over the prompt). The chosen replica is recorded as a
 * holder of the key.
 */
export function route(
  st: DeploymentRouting, replicas: readonly ReplicaEntry[], key: (() => PrefixKey) | undefined, now: number,
  random: () => number = Math.random, exclude?: ReadonlySet<string>,
): RouteChoice | undefined {
  switch (st.spec.policy) {
    case 'least_load': {
      const r = pickReplica(replicas, random, exclude);
      return r === undefined ? undefined : { replica: r, outcome: 'none', depth: 0 };
    }
    case 'round_robin': {
      const p = pickRoundRobin(replicas, st.cursor, exclude);
      if (p === undefined) return undefined;
      st.cursor = p.next;
      return { replica: p.replica, outcome: 'none', depth: 0 };
    }
    case 'prefix': {
      const index = st.index ?? (st.index = new PrefixIndex());
      const k = key?.() ?? [];
      const choice = pickPrefix(replicas, k, index, st.spec.prefixLoadSlack, now, random, exclude, st.spec.prefixFreeSlot);
      if (choice !== undefined && k.length > 0) index.record(k, choice.replica.id, now);
      return choice;
    }
    default: {
      const never: never = st.spec.policy;
      throw new Error(`unknown routing policy ${String(never)}`);
    }
  }
}
