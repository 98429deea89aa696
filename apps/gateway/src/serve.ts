// `serve`: the runtime plus its HTTP edge, listening. The one entry point the CLI,
// the examples and the tests use.

import type { ActorRef } from '@inference/actors';
import type { DeploymentSpec } from '@inference/core';
import { ApiGatewayActor, type GatewayMsg } from './apiGatewayActor.js';
import { loadAuthKeys } from './http/auth.js';
import {
  type ClusterConfig, ClusterBudgetShare, type Coordination, type ClusterNode, ClusterRateShare, type Runtime, type RuntimeConfig, type RuntimeOptions,
  clusterSecret, createRuntime, etcdPassword, resolveCluster, startClusterNode, TlsReloader, tracesConfig,
} from '@inference/runtime';
import { Drain } from './http/drain.js';
import { startAdminServices } from './admin/adminServices.js';
import { checkOpenAdmin } from './http/openAdmin.js';
import { type TracingHandle, startTracing } from './telemetry/otelTracing.js';

export interface ServeOptions extends RuntimeOptions {
  /** Overrides config.server.port (0: any free port). */
  readonly port?: number;
  readonly host?: string;
  readonly logger?: boolean;
  /** Cluster mode (the CLI resolves it from flags and the file); default: from config.cluster. */
  readonly cluster?: ClusterConfig;
  /** --allow-open-admin: as server.allowOpenAdmin (either one is enough). */
  readonly allowOpenAdmin?: boolean;
  /** Cluster mode through this store instead of etcd (the workers of `serve --workers N`). */
  readonly coordination?: Coordination;
  /** Cluster mode: route to another node's replica only when this node's are a full capacity busier. */
  readonly preferLocal?: boolean;
  /** false: Fastify serves the generate routes too, without the lean front in front of it (docs/architecture.md). */
  readonly fastLane?: boolean;
}

export interface Server {
  readonly runtime: Runtime;
  readonly gateway: ActorRef<GatewayMsg>;
  /** Base URL, e.g. http://127.0.0.1:8080 */
  readonly url: string;
  readonly port: number;
  /** Re-reads the TLS files (server.tls, cluster.tls) now, as SIGHUP does; true when one changed. */
  reloadTls(): boolean;
  /**
   * Stops taking work (new requests and /ready get 503) and resolves once the
   * requests in flight have ended (true) or `timeoutMs` has passed (false).
   * The runtime keeps serving them meanwhile; `close()` follows.
   */
  drain(timeoutMs: number): Promise<boolean>;
  /** Requests the HTTP edge has accepted and not yet answered in full. */
  inFlight(): number;
  close(): Promise<void>;
}

export async function serve(config: RuntimeConfig, options: ServeOptions = {}): Promise<Server> {
  // Keys first: an unset key variable stops startup with the key named.
  const auth = loadAuthKeys(config.auth);
  const host = options.host ?? config.server.host;
  checkOpenAdmin(host, auth.admin.size, config.server.allowOpenAdmin || options.allowOpenAdmin === true);
  const tlsLog = (m: string): void => { process.stderr.write(`inference: ${m}\n`); };
  const st = config.server.tls;
  // Files are read and checked before anything starts: a bad certificate stops start-up naming its key.
  const serverTls =
    st === undefined
      ? undefined
      : new TlsReloader({ certFile: st.certFile, keyFile: st.keyFile, caFile: st.clientCaFile }, 'server.tls', tlsLog, 'clientCaFile');
  const clusterCfg = options.cluster ?? resolveCluster(config.cluster);
  const secret = clusterCfg === undefined ? undefined : clusterSecret(clusterCfg);
  const traces = tracesConfig(config);
  const tracer: TracingHandle | undefined = traces === undefined ? undefined : startTracing(traces);
  // Budget windows, for the cluster counters' expiry: the deployment's (once the runtime exists) or the key's.
  let specOf: (name: string) => DeploymentSpec | undefined = () => undefined;
  const keyWindows = new Map(config.auth.apiKeys.flatMap((k) => (k.budget === undefined ? [] : [[k.name, k.budget.window] as const])));
  const share = new ClusterBudgetShare((scope, name) => (scope === 'deployment' ? specOf(name)?.budget?.window : keyWindows.get(name)));
  const rateShare = new ClusterRateShare();
  const base = await createRuntime(config, clusterCfg === undefined ? options : { ...options, clusterManaged: { budgetShare: share } });
  specOf = (name) => base.spec(name);
  if (clusterCfg !== undefined) base.reliability.shareRates(rateShare);
  let node: ClusterNode | undefined;
  if (clusterCfg !== undefined) {
    if (clusterCfg.tls === undefined && secret === undefined) {
      process.stderr.write(
        `inference: cluster.insecure: the cluster port ${clusterCfg.advertise} accepts unauthenticated admin writes and runs from anyone who can reach it\n`,
      );
    }
    try {
      node = await startClusterNode({
        config: clusterCfg,
        base,
        budgetShare: share,
        rateShare,
        seed: config.deployments,
        bodyLimitBytes: config.server.bodyLimitBytes,
        secret,
        etcdPassword: etcdPassword(clusterCfg),
        ...(config.responses?.ttlSeconds === undefined ? {} : { responsesTtlSeconds: config.responses.ttlSeconds }),
        tracing: tracer?.tracing,
        log: (m) => {
          process.stderr.write(`inference: ${m}\n`);
        },
        ...(options.coordination === undefined ? {} : { coordination: options.coordination }),
        ...(options.preferLocal === undefined ? {} : { preferLocal: options.preferLocal }),
      });
    } catch (e) {
      await base.close();
      await tracer?.shutdown();
      throw e;
    }
  }
  const runtime: Runtime = node?.runtime ?? base;
  const services = startAdminServices({
    base,
    cluster: node === undefined ? undefined : { shared: node.shared, budgetShare: share },
    log: (m) => { process.stderr.write(`inference: ${m}\n`); },
  });
  const drain = new Drain();
  const gateway = runtime.system.spawn('gateway', () => new ApiGatewayActor(runtime, {
    host,
    port: options.port ?? config.server.port,
    bodyLimitBytes: config.server.bodyLimitBytes,
    streamStallMs: config.server.streamStallMs,
    ...(config.responses?.ttlSeconds === undefined ? {} : { responsesTtlMs: config.responses.ttlSeconds * 1000 }),
    logger: options.logger ?? false,
    ...(options.fastLane === undefined ? {} : { fastLane: options.fastLane }),
    auth: { ...auth, virtual: services.registry },
    tracing: tracer?.tracing,
    drain,
    admin: services,
    ...(config.server.cors === undefined ? {} : { cors: config.server.cors }),
    ...(serverTls === undefined || st === undefined ? {} : { tls: { reloader: serverTls, requireClientCert: st.requireClientCert } }),
  }), { mailbox: 16 });
  await gateway.started();
  serverTls?.watch();
  if (!gateway.alive) {
    services.close();
    serverTls?.close();
    await node?.close();
    await base.close();
    await tracer?.shutdown();
    throw new Error(`could not listen on ${host}:${options.port ?? config.server.port}`);
  }
  const addr = await gateway.ask<{ host: string; port: number }>((reply) => ({ type: 'address', reply }));
  let draining: Promise<void> | undefined;
  const urlHost = addr.host.includes(':') ? `[${addr.host}]` : addr.host;
  return {
    runtime,
    gateway,
    url: `${serverTls === undefined ? 'http' : 'https'}://${urlHost}:${addr.port}`,
    port: addr.port,
    reloadTls: () => {
      const a = serverTls?.reload() ?? false;
      const b = node?.reloadTls() ?? false;
      return a || b;
    },
    drain: async (timeoutMs) => {
      const until = Date.now() + timeoutMs;
      drain.begin();
      // In a cluster the node leaves placement and routing at once, and requests forwarded to it finish too.
      draining = node?.drain().catch((e: unknown) => { process.stderr.write(`inference: cluster drain: ${e instanceof Error ? e.message : String(e)}\n`); });
      if (!(await drain.idle(timeoutMs))) return false;
      while (node !== undefined && node.forwarded() > 0) {
        if (Date.now() >= until) return false;
        await new Promise((r) => setTimeout(r, 100));
      }
      return true;
    },
    inFlight: () => drain.inFlight + (node?.forwarded() ?? 0),
    close: async () => {
      await draining;
      serverTls?.close();
      await gateway.stop();
      services.close();
      await node?.close();
      await base.close();
      // Spans of the last requests are exported before the process goes.
      await tracer?.shutdown().catch(() => undefined);
    },
  };
}
