// The coordination store over a message channel: the worker processes of one
// machine (`inference serve --workers N`) share their primary's MemoryStore the way
// the nodes of a cluster share etcd, so everything cluster mode keeps consistent
// (catalog, placement, budgets, rate limits) holds across the workers too.
//
// Protocol: the client sends `{kv:'req', id, op, args}` and gets one
// `{kv:'res', id, ok, value | error}`; a watch's events arrive as
// `{kv:'watch', id, ...}` until the client sends `{kv:'req', op:'unwatch'}`.
// Every pending call of a channel that closes rejects with UnavailableError, and
// the server side ends the watches of a channel that goes away (its leases then
// expire on their own, as a crashed node's do in etcd).

import type { KvBackend, KvCompare, KvEvent, KvOp, KvRecord, KvWatch, KvWatchHandler } from './kv.js';
import { UnavailableError } from './types.js';

/** A bidirectional message channel: a node:cluster worker's `process`, or the primary's `Worker`. */
export interface KvChannel {
  send(message: unknown): void;
  onMessage(listener: (message: unknown) => void): () => void;
}

type Op = 'grantLease' | 'keepAlive' | 'revokeLease' | 'range' | 'get' | 'txn' | 'watch' | 'unwatch';

interface KvRequest {
  readonly kv: 'req';
  readonly id: number;
  readonly op: Op;
  readonly args: readonly unknown[];
}

type KvResponse =
  | { readonly kv: 'res'; readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly kv: 'res'; readonly id: number; readonly ok: false; readonly error: string; readonly unavailable: boolean };

type KvWatchMessage =
  | { readonly kv: 'watch'; readonly id: number; readonly kind: 'events'; readonly events: readonly KvEvent[] }
  | { readonly kv: 'watch'; readonly id: number; readonly kind: 'connection'; readonly live: boolean }
  | { readonly kv: 'watch'; readonly id: number; readonly kind: 'broken'; readonly reason: string };

const isObject = (m: unknown): m is Record<string, unknown> => typeof m === 'object' && m !== null;

/** How long one call may wait for the primary before it counts as unreachable. */
const CALL_TIMEOUT_MS = 10_000;

export class IpcKvClient implements KvBackend {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private readonly watches = new Map<number, KvWatchHandler>();
  private readonly detach: () => void;
  private closed = false;

  constructor(private readonly channel: KvChannel) {
    this.detach = channel.onMessage((m) => { this.onMessage(m); });
  }

  private onMessage(m: unknown): void {
    if (!isObject(m)) return;
    if (m['kv'] === 'res') {
      const r = m as unknown as KvResponse;
      const p = this.pending.get(r.id);
      if (p === undefined) return;
      this.pending.delete(r.id);
      clearTimeout(p.timer);
      if (r.ok) p.resolve(r.value);
      else p.reject(r.unavailable ? new UnavailableError(r.error) : new Error(r.error));
    } else if (m['kv'] === 'watch') {
      const w = m as unknown as KvWatchMessage;
      const h = this.watches.get(w.id);
      if (h === undefined) return;
      switch (w.kind) {
        case 'events': h.onEvents(w.events); return;
        case 'connection': h.onConnection(w.live); return;
        case 'broken': this.watches.delete(w.id); h.onBroken(w.reason); return;
        default: {
          const never: never = w;
          throw new Error(`unknown watch message ${JSON.stringify(never)}`);
        }
      }
    }
  }

  private call<T>(op: Op, ...args: unknown[]): Promise<T> {
    if (this.closed) return Promise.reject(new UnavailableError('coordination store closed'));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new UnavailableError(`the primary did not answer ${op} within ${String(CALL_TIMEOUT_MS)} ms`));
      }, CALL_TIMEOUT_MS);
      timer.unref();
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      try {
        this.channel.send({ kv: 'req', id, op, args } satisfies KvRequest);
      } catch (e) {
        this.pending.delete(id);
        clearTimeout(timer);
        reject(new UnavailableError(`the primary is unreachable: ${e instanceof Error ? e.message : String(e)}`));
      }
    });
  }

  grantLease(ttlSeconds: number): Promise<string> {
    return this.call('grantLease', ttlSeconds);
  }

  keepAlive(lease: string): Promise<number> {
    return this.call('keepAlive', lease);
  }

  revokeLease(lease: string): Promise<void> {
    return this.call('revokeLease', lease);
  }

  range(prefix: string): Promise<{ records: KvRecord[]; revision: number }> {
    return this.call('range', prefix);
  }

  get(key: string): Promise<KvRecord | undefined> {
    return this.call<KvRecord | null>('get', key).then((r) => r ?? undefined);
  }

  txn(compares: readonly KvCompare[], ops: readonly KvOp[]): Promise<{ succeeded: boolean; revision: number }> {
    return this.call('txn', compares, ops);
  }

  watch(prefix: string, fromRevision: number, handler: KvWatchHandler): KvWatch {
    const id = this.nextId++;
    this.watches.set(id, handler);
    this.call('watch', id, prefix, fromRevision).catch((e: unknown) => {
      if (!this.watches.delete(id)) return;
      handler.onBroken(e instanceof Error ? e.message : String(e));
    });
    return {
      close: () => {
        if (!this.watches.delete(id)) return;
        this.call('unwatch', id).catch(() => undefined);
      },
    };
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    this.detach();
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new UnavailableError('coordination store closed'));
    }
    this.pending.clear();
    this.watches.clear();
    return Promise.resolve();
  }
}

/**
 * Serves `backend` to one channel (one worker). Returns a function that ends the
 * channel's watches; call it when the worker exits.
 */
export function serveKv(backend: KvBackend, channel: KvChannel): () => void {
  const watches = new Map<number, KvWatch>();
  const reply = (m: KvResponse): void => {
    try {
      channel.send(m);
    } catch {
      // The worker is gone; its watches end with the channel.
    }
  };
  const run = (op: Op, args: readonly unknown[]): unknown => {
    switch (op) {
      case 'grantLease': return backend.grantLease(Number(args[0]));
      case 'keepAlive': return backend.keepAlive(String(args[0]));
      case 'revokeLease': return backend.revokeLease(String(args[0]));
      case 'range': return backend.range(String(args[0]));
      case 'get': return backend.get(String(args[0])).then((r) => r ?? null);
      case 'txn': return backend.txn(args[0] as KvCompare[], args[1] as KvOp[]);
      case 'watch': {
        const id = Number(args[0]);
        const send = (m: KvWatchMessage): void => {
          try {
            channel.send(m);
          } catch {
            watches.get(id)?.close();
            watches.delete(id);
          }
        };
        watches.set(id, backend.watch(String(args[1]), Number(args[2]), {
          onEvents: (events) => { send({ kv: 'watch', id, kind: 'events', events }); },
          onConnection: (live) => { send({ kv: 'watch', id, kind: 'connection', live }); },
          onBroken: (reason) => { watches.delete(id); send({ kv: 'watch', id, kind: 'broken', reason }); },
        }));
        return null;
      }
      case 'unwatch': {
        const id = Number(args[0]);
        watches.get(id)?.close();
        watches.delete(id);
        return null;
      }
      default: {
        const never: never = op;
        throw new Error(`unknown op ${String(never)}`);
      }
    }
  };
  const detach = channel.onMessage((m) => {
    if (!isObject(m) || m['kv'] !== 'req') return;
    const r = m as unknown as KvRequest;
    Promise.resolve()
      .then(() => run(r.op, r.args))
      .then(
        (value) => { reply({ kv: 'res', id: r.id, ok: true, value: value ?? null }); },
        (e: unknown) => { reply({ kv: 'res', id: r.id, ok: false, error: e instanceof Error ? e.message : String(e), unavailable: e instanceof UnavailableError }); },
      );
  });
  return () => {
    detach();
    for (const w of watches.values()) w.close();
    watches.clear();
  };
}
