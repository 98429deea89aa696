// `inference serve --workers N`: N processes serve one port. node:cluster hands the
// listening socket's connections to the workers in turn; each worker is a node of a
// cluster whose store is the primary's memory (IpcCoordination over the IPC
// channel), so the catalog, placement, budgets and rate limits hold across the
// workers exactly as across the nodes of a cluster (docs/cluster.md, "Several
// cores of one machine"). Requests for a replica another worker holds are
// forwarded over loopback HTTP/2, authenticated by a secret the primary makes.
//
// The primary serves no HTTP itself: it forks the workers, serves them the store,
// restarts a worker that dies (at most RESTARTS_PER_MINUTE times per worker), passes
// SIGHUP on (each worker re-reads its TLS files, as one process does), and on
// SIGTERM/SIGINT passes the signal on and exits once every worker has drained.

import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { type ClusterConfig, IpcCoordination, type KvChannel, MemoryStore, freeLoopbackPort, serveKv } from '@inference/runtime';

const ENV = {
  index: 'INFERENCE_WORKER_INDEX',
  advertise: 'INFERENCE_WORKER_ADVERTISE',
  secret: 'INFERENCE_WORKER_SECRET',
} as const;

const RESTARTS_PER_MINUTE = 5;
/** Short: a worker that dies is re-placed within this; IPC renewals are cheap. */
const LEASE_TTL_SECONDS = 3;
/** The overspend bound of budgets and rate limits across workers is about this. */
const COUNTER_SYNC_MS = 100;

/** True in a process the primary forked for `serve --workers`. */
export function isServeWorker(): boolean {
  return cluster.isWorker && process.env[ENV.index] !== undefined;
}

/** This worker's node of the machine's cluster, and the store it coordinates through. */
export function workerCluster(): { cluster: ClusterConfig; coordination: IpcCoordination; index: number } {
  const index = Number(process.env[ENV.index]);
  const advertise = process.env[ENV.advertise] ?? '';
  const channel: KvChannel = {
    send: (m) => {
      if (process.send === undefined || !process.connected) throw new Error('the primary is gone');
      process.send(m);
    },
    onMessage: (listener) => {
      process.on('message', listener);
      return () => { process.off('message', listener); };
    },
  };
  return {
    index,
    coordination: new IpcCoordination(channel),
    cluster: {
      etcd: [], name: 'workers', nodeName: `worker-${String(index)}`, advertise, listenHost: '127.0.0.1',
      leaseTtlSeconds: LEASE_TTL_SECONDS, counterSyncMs: COUNTER_SYNC_MS, secretEnv: ENV.secret,
    },
  };
}

/** Tells the primary this worker serves (it prints one line for all of them). */
export function reportServing(url: string): void {
  if (process.send !== undefined && process.connected) process.send({ workers: 'serving', url });
}

function channelOf(w: Worker): KvChannel {
  return {
    send: (m) => {
      if (!w.isConnected()) throw new Error('worker gone');
      w.send(m as Parameters<Worker['send']>[0]);
    },
    onMessage: (listener) => {
      w.on('message', listener);
      return () => { w.off('message', listener); };
    },
  };
}

/**
 * Runs the primary of `serve --workers n` until SIGTERM/SIGINT. `log` prints a line;
 * resolves with the exit code once every worker has exited.
 */
export async function runPrimary(n: number, log: (line: string) => void): Promise<number> {
  const store = new MemoryStore();
  const backend = store.backend();
  const secret = randomBytes(32).toString('hex');
  const ports = await Promise.all(Array.from({ length: n }, () => freeLoopbackPort()));
  const restarts = new Map<number, number[]>();
  const live = new Map<number, Worker>();
  let stopping = false;
  let announced = false;
  const serving = new Set<number>();

  return new Promise<number>((resolve) => {
    const fork = (index: number): void => {
      const env: Record<string, string> = { [ENV.index]: String(index), [ENV.advertise]: `127.0.0.1:${String(ports[index - 1] ?? 0)}`, [ENV.secret]: secret };
      // The GPUs are the first worker's: the others must not place GPU replicas on them too.
      if (index > 1) env['CUDA_VISIBLE_DEVICES'] = '';
      const w = cluster.fork(env);
      live.set(index, w);
      const detach = serveKv(backend, channelOf(w));
      // A send to a worker that just died must not end the primary.
      w.on('error', () => undefined);
      w.on('message', (m: unknown) => {
        if (typeof m !== 'object' || m === null || (m as { workers?: unknown }).workers !== 'serving') return;
        serving.add(index);
        if (!announced && serving.size === n) {
          announced = true;
          log(`serving with ${String(n)} workers on ${String((m as { url?: unknown }).url)}`);
        }
      });
      w.on('exit', (code, signal) => {
        detach();
        live.delete(index);
        serving.delete(index);
        if (stopping) {
          if (live.size === 0) {
            store.close();
            resolve(0);
          }
          return;
        }
        const now = Date.now();
        const recent = (restarts.get(index) ?? []).filter((t) => now - t < 60_000);
        if (recent.length >= RESTARTS_PER_MINUTE) {
          const how = `(${signal ?? String(code)}) ${String(recent.length)} times within a minute`;
          log(`worker ${String(index)} exited ${how}: not restarted; the others keep serving`);
          if (live.size === 0) {
            store.close();
            resolve(1);
          }
          return;
        }
        restarts.set(index, [...recent, now]);
        log(`worker ${String(index)} exited (${signal ?? String(code)}); restarting it`);
        fork(index);
      });
    };
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) return;
      stopping = true;
      log(`${signal}, draining ${String(live.size)} workers`);
      if (live.size === 0) {
        store.close();
        resolve(0);
        return;
      }
      for (const w of live.values()) w.process.kill(signal);
    };
    process.on('SIGTERM', () => { stop('SIGTERM'); });
    process.on('SIGINT', () => { stop('SIGINT'); });
    // SIGHUP is each worker's to act on (a single process re-reads its TLS files on it); the primary has nothing to reload,
    // and without a handler the signal would end it.
    process.on('SIGHUP', () => {
      log(`SIGHUP, passed to ${String(live.size)} workers`);
      for (const w of live.values()) w.process.kill('SIGHUP');
    });
    for (let i = 1; i <= n; i++) fork(i);
  });
}
