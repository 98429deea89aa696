// `serve`: the runtime plus its HTTP edge, listening. The one entry point the CLI,
// the examples and the tests use.

import type { ActorRef } from '@inference/actors';
import { ApiGatewayActor, type GatewayMsg } from './apiGatewayActor.js';
import type { RuntimeConfig } from './config.js';
import { loadAuthKeys } from './auth.js';
import { type Runtime, type RuntimeOptions, createRuntime } from './runtime.js';

export interface ServeOptions extends RuntimeOptions {
  /** Overrides config.server.port (0: any free port). */
  readonly port?: number;
  readonly host?: string;
  readonly logger?: boolean;
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
  const runtime = await createRuntime(config, options);
  const host = options.host ?? config.server.host;
  const gateway = runtime.system.spawn('gateway', () => new ApiGatewayActor(runtime, {
    host,
    port: options.port ?? config.server.port,
    bodyLimitBytes: config.server.bodyLimitBytes,
    logger: options.logger ?? false,
    auth,
  }), { mailbox: 16 });
  await gateway.started();
  if (!gateway.alive) {
    await runtime.close();
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
      await runtime.close();
    },
  };
}
