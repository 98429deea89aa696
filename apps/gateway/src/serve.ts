// `serve`: the runtime plus its HTTP edge, listening. The one entry point the CLI,
// the examples and the tests use.

import type { ActorRef } from '@inference/actors';
import { ApiGatewayActor, type GatewayMsg } from './apiGatewayActor.js';
import { loadAuthKeys } from './http/auth.js';
import {
  type ClusterConfig, ClusterBudgetShare, type ClusterNode, ClusterRateShare, type Runtime, type RuntimeConfig, type RuntimeOptions, clusterSecret, createRuntime,
  resolveCluster, startClusterNode, tracesConfig,
} from '@inference/runtime';
import { type TracingHandle, startTracing } from './telemetry/otelTracing.js';

export interface ServeOptions extends RuntimeOptions {
  /** Overrides config.server.port (0: any free port). */
  readonly port?: number;
  readonly host?: string;
  readonly logger?: boolean;
  /** Cluster mode (the CLI resolves it from flags and the file); default: from config.cluster. */
  readonly cluster?: ClusterConfig;
}

export interface Server {
  readonly runtime: Runtime;
  readonly gateway: ActorRef<GatewayMsg>;
  /** Base URL, e.g. http://127.0.0.1:8080 */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

export async function serve(config: RuntimeConfig, options: ServeOptions = {}): Promise<Server> {
  // Keys first: an unset key variable stops startup with the key named.
  const auth = loadAuthKeys(config.auth);
  const clusterCfg = options.cluster ?? resolveCluster(config.cluster);
  const secret = clusterCfg === undefined ? undefined : clusterSecret(clusterCfg);
  const traces = tracesConfig(config);
  const tracer: TracingHandle | undefined = traces === undefined ? undefined : startTracing(traces);
  const share = new ClusterBudgetShare();
  const rateShare = new ClusterRateShare();
  const base = await createRuntime(config, clusterCfg === undefined ? options : { ...options, clusterManaged: { budgetShare: share } });
  if (clusterCfg !== undefined) base.reliability.shareRates(rateShare);
  let node: ClusterNode | undefined;
  if (clusterCfg !== undefined) {
    try {
      node = await startClusterNode({
        config: clusterCfg, base, budgetShare: share, rateShare, seed: config.deployments, bodyLimitBytes: config.server.bodyLimitBytes, secret, tracing: tracer?.tracing,
        log: (m) => { process.stderr.write(`inference: ${m}\n`); },
      });
    } catch (e) {
      await base.close();
      await tracer?.shutdown();
      throw e;
    }
  }
  const runtime: Runtime = node?.runtime ?? base;
  const host = options.host ?? config.server.host;
  const gateway = runtime.system.spawn('gateway', () => new ApiGatewayActor(runtime, {
    host,
    port: options.port ?? config.server.port,
    bodyLimitBytes: config.server.bodyLimitBytes,
    logger: options.logger ?? false,
    auth,
    tracing: tracer?.tracing,
  }), { mailbox: 16 });
  await gateway.started();
  if (!gateway.alive) {
    await node?.close();
    await base.close();
    await tracer?.shutdown();
    throw new Error(`could not listen on ${host}:${options.port ?? config.server.port}`);
  }
  const addr = await gateway.ask<{ host: string; port: number }>((reply) => ({ type: 'address', reply }));
  const urlHost = addr.host.includes(':') ? `[${addr.host}]` : addr.host;
  return {
    runtime,
    gateway,
    url: `http://${urlHost}:${addr.port}`,
    port: addr.port,
    close: async () => {
      await gateway.stop();
      await node?.close();
      await base.close();
      // Spans of the last requests are exported before the process goes.
      await tracer?.shutdown().catch(() => undefined);
    },
  };
}
