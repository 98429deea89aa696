// The store interface over etcd v3 (the `etcd3` client's raw gRPC clients).
// The client's own retry and circuit-breaker policies are replaced by a
// pass-through: the coordination logic retries on its own schedule and must see
// etcd's state as it is, not hidden behind a breaker that stays open for seconds
// after etcd is back. Every unary call has a deadline, so an unreachable etcd
// answers UnavailableError instead of hanging. Watches resume by themselves
// from the last revision they delivered (the client tracks it).

import {
  ClientClosedError,
  Etcd3,
  EtcdLeaseInvalidError,
  GRPCCancelledError,
  GRPCDeadlineExceededError,
  GRPCUnavailableError,
  castGrpcError,
  type IKeyValue,
  type ILeaseKeepAliveResponse,
  type IOptions,
  type IRequestOp,
  type IWatchResponse,
  type Watcher,
} from 'etcd3';
import { WatchManager } from 'etcd3/lib/watch.js';
import type { KvBackend, KvCompare, KvEvent, KvOp, KvRecord, KvWatch, KvWatchHandler } from './kv.js';
import { UnavailableError } from './types.js';

/**
 * etcd3 1.1.2 throws from its watch stream's 'data' handler when etcd answers
 * for a watcher the client has just dropped (a cancel racing an event, seen when
 * a watch is replaced after a compaction). The throw happens inside a gRPC
 * promise job, so it surfaces as an unhandled rejection, which ends the process.
 * Such an answer has nobody to go to: it is dropped instead.
 */
interface WatchManagerInternals {
  watchers: { id: string | null }[];
  handleResponse: (this: WatchManagerInternals, res: IWatchResponse) => void;
  handleCreatedResponse: (this: WatchManagerInternals, res: IWatchResponse) => void;
}
const manager = WatchManager.prototype as unknown as WatchManagerInternals;
const handleResponse = manager.handleResponse;
const handleCreatedResponse = manager.handleCreatedResponse;
manager.handleResponse = function (this: WatchManagerInternals, res: IWatchResponse): void {
  if (!this.watchers.some((w) => w.id === res.watch_id)) return;
  handleResponse.call(this, res);
};
manager.handleCreatedResponse = function (this: WatchManagerInternals, res: IWatchResponse): void {
  if (res.canceled && !this.watchers.some((w) => w.id === null)) return;
  handleCreatedResponse.call(this, res);
};

type Policy = NonNullable<NonNullable<IOptions['faultHandling']>['global']>;
type Backoff = NonNullable<NonNullable<IOptions['faultHandling']>['watchBackoff']>;

const noEvent = () => ({ dispose: () => undefined });

/** Runs each call once: no retries, no breaker. */
class PassThrough {
  readonly onSuccess = noEvent;
  readonly onFailure = noEvent;
  get _altReturn(): never {
    throw new Error('virtual property');
  }
  async execute<T>(fn: (context: { signal: AbortSignal }) => PromiseLike<T> | T, signal?: AbortSignal): Promise<T> {
    return fn({ signal: signal ?? new AbortController().signal });
  }
}

function constantBackoff(ms: number): Backoff {
  const b: Backoff = { duration: ms, next: () => b };
  return b;
}

export interface EtcdKvOptions {
  /** host:port list, e.g. ['127.0.0.1:2379']. */
  readonly hosts: readonly string[];
  /** Deadline of each unary call; default 2000 ms. */
  readonly callTimeoutMs?: number;
  /** Delay before a dropped watch stream reconnects; default 250 ms. */
  readonly watchRetryMs?: number;
  /** TLS to etcd: its certificate checked against `ca`; a client certificate when `cert` and `key` are given. */
  readonly tls?: { readonly ca: Buffer; readonly cert?: Buffer | undefined; readonly key?: Buffer | undefined } | undefined;
  /** etcd user and password (etcd's auth must be enabled for them to matter). */
  readonly auth?: { readonly username: string; readonly password: string } | undefined;
}

export class EtcdKv implements KvBackend {
  private readonly client: Etcd3;
  private readonly watchers = new Set<Watcher>();
  private readonly callTimeoutMs: number;

  constructor(options: EtcdKvOptions) {
    this.callTimeoutMs = options.callTimeoutMs ?? 2000;
    const pass = new PassThrough() as unknown as Policy;
    const tls = options.tls;
    this.client = new Etcd3({
      hosts: options.hosts.map((h) => (h.includes('://') ? h : `${tls === undefined ? 'http' : 'https'}://${h}`)),
      ...(tls === undefined
        ? {}
        : {
            credentials: {
              rootCertificate: tls.ca,
              ...(tls.key === undefined ? {} : { privateKey: tls.key }),
              ...(tls.cert === undefined ? {} : { certChain: tls.cert }),
            },
          }),
      ...(options.auth === undefined ? {} : { auth: { username: options.auth.username, password: options.auth.password } }),
      dialTimeout: this.callTimeoutMs,
      // Reconnect soon after etcd returns instead of after gRPC's long default backoff.
      grpcOptions: { 'grpc.initial_reconnect_backoff_ms': 200, 'grpc.max_reconnect_backoff_ms': 1000 },
      faultHandling: { host: () => pass, global: pass, watchBackoff: constantBackoff(options.watchRetryMs ?? 250) },
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + this.callTimeoutMs }),
    });
  }

  async grantLease(ttlSeconds: number): Promise<string> {
    const res = await this.call(() => this.client.leaseClient.leaseGrant({ TTL: ttlSeconds }));
    return res.ID;
  }

  async keepAlive(lease: string): Promise<number> {
    const stream = await this.call(() => this.client.leaseClient.leaseKeepAlive({ deadline: Date.now() + this.callTimeoutMs }));
    try {
      const res = await this.call(
        () =>
          new Promise<ILeaseKeepAliveResponse>((resolve, reject) => {
            stream.on('data', resolve);
            stream.on('error', (e: Error) => {
              reject(castGrpcError(e));
            });
            stream.write({ ID: lease });
          }),
      );
      return Number(res.TTL);
    } finally {
      stream.end();
    }
  }

  async revokeLease(lease: string): Promise<void> {
    await this.call(() => this.client.leaseClient.leaseRevoke({ ID: lease })).catch((e: unknown) => {
      if (e instanceof EtcdLeaseInvalidError) return;
      throw e;
    });
  }

  async range(prefix: string): Promise<{ records: KvRecord[]; revision: number }> {
    const key = Buffer.from(prefix);
    const res = await this.call(() => this.client.kv.range({ key, range_end: rangeEnd(key) }));
    return { records: res.kvs.map(toRecord), revision: Number(res.header.revision) };
  }

  async get(key: string): Promise<KvRecord | undefined> {
    const res = await this.call(() => this.client.kv.range({ key: Buffer.from(key) }));
    const kv = res.kvs[0];
    return kv === undefined ? undefined : toRecord(kv);
  }

  async txn(compares: readonly KvCompare[], ops: readonly KvOp[]): Promise<{ succeeded: boolean; revision: number }> {
    const res = await this.call(() =>
      this.client.kv.txn({
        compare: compares.map((c) => ({ key: Buffer.from(c.key), target: 'Create' as const, result: 'Equal' as const, create_revision: c.createRevision })),
        success: ops.map(toRequestOp),
        failure: [],
      }),
    );
    return { succeeded: res.succeeded, revision: Number(res.header.revision) };
  }

  watch(prefix: string, fromRevision: number, handler: KvWatchHandler): KvWatch {
    // watcher() rather than create(): listeners are attached before the stream
    // connects, so a drop that happens while it is still connecting is seen.
    const w = this.client.watch().prefix(prefix).startRevision(String(fromRevision)).watcher();
    let closed = false;
    const close = (): void => {
      if (closed) return;
      closed = true;
      this.watchers.delete(w);
      void w.cancel().catch(() => undefined);
    };
    this.watchers.add(w);
    w.on('data', (res: IWatchResponse) => {
      if (!closed && res.events.length > 0) handler.onEvents(res.events.map(toEvent));
    });
    w.on('disconnected', () => {
      if (!closed) handler.onConnection(false);
    });
    w.on('connected', (res: IWatchResponse) => {
      if (closed) return;
      if (res.compact_revision !== '0' && res.compact_revision !== '') {
        close();
        handler.onBroken(`revision ${fromRevision} is compacted (compact revision ${res.compact_revision})`);
        return;
      }
      handler.onConnection(true);
    });
    w.on('error', (e: Error) => {
      if (closed) return;
      close();
      handler.onBroken(e.message);
    });
    return { close };
  }

  async close(): Promise<void> {
    // A cancel waits for etcd's answer; an unreachable etcd never gives one.
    const cancels = [...this.watchers].map((w) => w.cancel().catch(() => undefined));
    this.watchers.clear();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(cancels), new Promise((r) => (timer = setTimeout(r, this.callTimeoutMs)))]);
    clearTimeout(timer);
    this.client.close();
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof Error && isUnavailable(e)) throw new UnavailableError(`etcd unreachable: ${e.message}`);
      throw e;
    }
  }
}

function isUnavailable(e: Error): boolean {
  return e instanceof GRPCUnavailableError || e instanceof GRPCDeadlineExceededError || e instanceof GRPCCancelledError || e instanceof ClientClosedError
    || /connect|unavailable|deadline/i.test(e.message);
}

/** The end of the key range that is exactly `prefix`'s keys (etcd's prefix rule). */
function rangeEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    const b = end[i];
    if (b !== undefined && b < 0xff) {
      end[i] = b + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

function toRecord(kv: IKeyValue): KvRecord {
  return {
    key: kv.key.toString(), value: kv.value.toString(), createRevision: Number(kv.create_revision), modRevision: Number(kv.mod_revision), lease: kv.lease,
  };
}

function toEvent(ev: { type: 'Put' | 'Delete'; kv: IKeyValue }): KvEvent {
  switch (ev.type) {
    case 'Put':
      return { type: 'put', record: toRecord(ev.kv) };
    case 'Delete':
      return { type: 'delete', key: ev.kv.key.toString(), modRevision: Number(ev.kv.mod_revision) };
    default: {
      const never: never = ev.type;
      throw new Error(`unknown watch event ${String(never)}`);
    }
  }
}

function toRequestOp(op: KvOp): IRequestOp {
  switch (op.type) {
    case 'put':
      return { request_put: { key: Buffer.from(op.key), value: Buffer.from(op.value), lease: op.lease ?? '0' } };
    case 'delete':
      return { request_delete_range: { key: Buffer.from(op.key) } };
    default: {
      const never: never = op;
      throw new Error(`unknown op ${JSON.stringify(never)}`);
    }
  }
}
