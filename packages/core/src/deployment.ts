// A deployment: what clients address by `model`, how many replicas serve it and
// with which runtime. The keys are a contract with users (docs/config.md): add keys,
// rename none. Parsing is shared by the config file and the admin API.

import {
  type Json, asObject, invalid, join, noUnknownKeys, optArray, optBool, optEnum, optNumber, optObject, optString, reqString,
} from './validate.js';

/** The runtimes built in: the native engine (llama) and the remote provider kinds. */
export const BUILTIN_RUNTIMES = ['llama', 'openai', 'anthropic'] as const;
export type BuiltinRuntime = (typeof BUILTIN_RUNTIMES)[number];
/**
 * A built-in runtime, or the name of one registered with
 * `createRuntime({ runtimes })` (docs/architecture.md, "Pluggable runtimes").
 */
export type RuntimeKind = BuiltinRuntime | (string & Record<never, never>);
export type CapacityPolicy = 'reject' | 'queue' | 'fallback';

export interface EngineSpec {
  contextSize: number;
  maxSequences: number;
  gpuLayers: number;
  threads: number;
  /** Tokens per decode step (chunked-prefill budget). */
  batchTokens: number;
  /** Requests waiting for a sequence slot before `overloaded`. */
  maxQueue: number;
  /**
   * Host memory for saved prompt states of a local replica (docs/config.md; 0: off).
   * Absent: DEFAULT_PROMPT_CACHE_MIB (left out so a catalog entry reads the same to older nodes).
   */
  promptCacheMiB?: number;
  /** GPUs a replica reserves (0: CPU only). Default: 0 when gpuLayers is 0, else 1. */
  gpus: number;
  /** Free memory each reserved GPU must have for this replica (MiB; 0: no check). */
  gpuMemoryMiB: number;
  /** How replicas choose GPUs: fill the busiest GPU that fits first, or the idlest. */
  placement: PlacementStrategy;
  /**
   * The chat template instead of the model's own: a Jinja template file, or the name of
   * one of llama.cpp's built-in templates (docs/chat-templates.md). Absent: the model's.
   */
  chatTemplate?: string;
  timeouts: LocalTimeoutSpec;
}

/** Deadlines of a local request (docs/flow-control.md). */
export interface LocalTimeoutSpec {
  /** Longest wait for a sequence slot; then `overloaded` (503, retry-after). */
  queueMs: number;
  /** Longest a request may run, queue wait included; then `upstream_timeout` (504). */
  totalMs: number;
}

/** engine.promptCacheMiB when absent. */
export const DEFAULT_PROMPT_CACHE_MIB = 1024;

export const DEFAULT_LOCAL_TIMEOUTS: LocalTimeoutSpec = { queueMs: 30_000, totalMs: 600_000 };

export type PlacementStrategy = 'binpack' | 'spread';

export interface TimeoutSpec {
  connectMs: number;
  firstByteMs: number;
  idleMs: number;
  totalMs: number;
}

export interface RemoteSpec {
  maxConcurrent: number;
  /** Requests waiting for a worker before `overloaded`. */
  maxQueue: number;
  rpm?: number;
  tpm?: number;
  /** The window rpm and tpm count over, in ms (absent: 60 000, a minute); docs/config.md "Remote reliability". */
  rateWindowMs?: number;
  maxRetries: number;
  /** How long a request may wait for the rate limiter when onCapacityExhausted is `queue`. */
  queueTimeoutMs: number;
  /** Backoff before retry n is a uniform draw in [0, min(retryMaxMs, retryBaseMs * 2^n)]. */
  retryBaseMs: number;
  retryMaxMs: number;
  timeouts: TimeoutSpec;
  breaker: { failureThreshold: number; openMs: number };
}

export interface PriceSpec {
  inputPerMTok: number;
  outputPerMTok: number;
}

export interface BudgetSpec {
  window: string;
  maxTokens?: number;
  maxCostUsd?: number;
  onExceeded: 'reject' | 'fallback';
}

/** How the DpCoordinatorActor chooses among a deployment's replicas (docs/config.md, "Routing"). */
export type RoutingPolicy = 'prefix' | 'least_load' | 'round_robin';

export interface RoutingSpec {
  policy: RoutingPolicy;
  /**
   * Prefix policy: the most requests (outstanding) a replica holding the prompt's
   * prefix may carry above the least-loaded replica and still be chosen.
   */
  prefixLoadSlack: number;
  /**
   * Prefix policy: a holder with a free sequence slot (outstanding below its capacity)
   * is followed whatever its load; the slack applies once it is full. Default: on,
   * unless `prefixLoadSlack` is set explicitly (docs/config.md, "Routing").
   */
  prefixFreeSlot: boolean;
}

/** Local replicas keep a prompt cache worth aiming at; remote ones do not expose theirs. */
export function defaultRouting(runtime: RuntimeKind): RoutingSpec {
  return { policy: runtime === 'llama' ? 'prefix' : 'least_load', prefixLoadSlack: 4, prefixFreeSlot: true };
}

export interface DeploymentSpec {
  name: string;
  runtime: RuntimeKind;
  /** GGUF path (llama) or the upstream's model name (remote; defaults to `name`). */
  model?: string;
  endpoint?: string;
  apiKeyEnv?: string;
  replicas: number;
  engine: EngineSpec;
  remote: RemoteSpec;
  fallbacks: string[];
  onCapacityExhausted: CapacityPolicy;
  price?: PriceSpec;
  budget?: BudgetSpec;
  routing: RoutingSpec;
}

const DEPLOYMENT_KEYS = [
  'name', 'runtime', 'model', 'endpoint', 'apiKeyEnv', 'replicas', 'engine', 'remote', 'fallbacks',
  'onCapacityExhausted', 'price', 'budget', 'routing',
] as const;

function parseRouting(v: Json | undefined, path: string, runtime: RuntimeKind): RoutingSpec {
  const o = v ?? {};
  noUnknownKeys(o, ['policy', 'prefixLoadSlack', 'prefixFreeSlot'], path);
  const d = defaultRouting(runtime);
  const slack = optNumber(o, 'prefixLoadSlack', path, { min: 0, max: 1_000_000, integer: true });
  return {
    policy: optEnum(o, 'policy', path, ['prefix', 'least_load', 'round_robin'] as const) ?? d.policy,
    prefixLoadSlack: slack ?? d.prefixLoadSlack,
    // An explicit slack keeps the meaning it had before the free-slot rule existed.
    prefixFreeSlot: optBool(o, 'prefixFreeSlot', path) ?? (slack === undefined ? d.prefixFreeSlot : false),
  };
}

export const DEFAULT_TIMEOUTS: TimeoutSpec = { connectMs: 5000, firstByteMs: 30000, idleMs: 30000, totalMs: 600000 };

function parseEngine(v: Json | undefined, path: string): EngineSpec {
  const o = v ?? {};
  noUnknownKeys(
    o,
    [
      'contextSize', 'maxSequences', 'gpuLayers', 'threads', 'batchTokens', 'maxQueue', 'gpus', 'gpuMemoryMiB', 'placement', 'timeouts', 'chatTemplate',
      'promptCacheMiB',
    ],
    path,
  );
  const tPath = join(path, 'timeouts');
  const t = optObject(o, 'timeouts', path) ?? {};
  noUnknownKeys(t, ['queueMs', 'totalMs'], tPath);
  const ms = { min: 1, max: 86_400_000, integer: true };
  const maxSequences = optNumber(o, 'maxSequences', path, { min: 1, max: 256, integer: true }) ?? 8;
  const gpuLayers = optNumber(o, 'gpuLayers', path, { min: -1, max: 10000, integer: true }) ?? 0;
  const gpus = optNumber(o, 'gpus', path, { min: 0, max: 64, integer: true }) ?? (gpuLayers === 0 ? 0 : 1);
  const gpuMemoryMiB = optNumber(o, 'gpuMemoryMiB', path, { min: 0, max: 1 << 24, integer: true }) ?? 0;
  if (gpus === 0 && gpuMemoryMiB > 0) invalid(join(path, 'gpuMemoryMiB'), 'needs gpus >= 1');
  const chatTemplate = optString(o, 'chatTemplate', path);
  if (chatTemplate === '') invalid(join(path, 'chatTemplate'), 'must not be empty (a template file or a built-in template name)');
  const spec: EngineSpec = {
    contextSize: optNumber(o, 'contextSize', path, { min: 64, max: 1 << 20, integer: true }) ?? 4096,
    maxSequences,
    gpuLayers,
    gpus,
    gpuMemoryMiB,
    placement: optEnum(o, 'placement', path, ['binpack', 'spread'] as const) ?? 'binpack',
    threads: optNumber(o, 'threads', path, { min: 1, max: 1024, integer: true }) ?? 1,
    batchTokens: optNumber(o, 'batchTokens', path, { min: 16, max: 65536, integer: true }) ?? 512,
    maxQueue: optNumber(o, 'maxQueue', path, { min: 0, max: 100000, integer: true }) ?? 256,
    timeouts: {
      queueMs: optNumber(t, 'queueMs', tPath, ms) ?? DEFAULT_LOCAL_TIMEOUTS.queueMs,
      totalMs: optNumber(t, 'totalMs', tPath, ms) ?? DEFAULT_LOCAL_TIMEOUTS.totalMs,
    },
  };
  if (chatTemplate !== undefined) spec.chatTemplate = chatTemplate;
  const promptCacheMiB = optNumber(o, 'promptCacheMiB', path, { min: 0, max: 1 << 20, integer: true });
  if (promptCacheMiB !== undefined) spec.promptCacheMiB = promptCacheMiB;
  return spec;
}

function parseRemote(v: Json | undefined, path: string): RemoteSpec {
  const o = v ?? {};
  const keys = ['maxConcurrent', 'maxQueue', 'rpm', 'tpm', 'rateWindowMs', 'maxRetries', 'queueTimeoutMs', 'retryBaseMs', 'retryMaxMs', 'timeouts', 'breaker'];
  noUnknownKeys(o, keys, path);
  const tPath = join(path, 'timeouts');
  const t = optObject(o, 'timeouts', path) ?? {};
  noUnknownKeys(t, ['connectMs', 'firstByteMs', 'idleMs', 'totalMs'], tPath);
  const bPath = join(path, 'breaker');
  const b = optObject(o, 'breaker', path) ?? {};
  noUnknownKeys(b, ['failureThreshold', 'openMs'], bPath);
  const ms = { min: 1, max: 86_400_000, integer: true };
  const spec: RemoteSpec = {
    maxConcurrent: optNumber(o, 'maxConcurrent', path, { min: 1, max: 100000, integer: true }) ?? 64,
    maxQueue: optNumber(o, 'maxQueue', path, { min: 0, max: 1_000_000, integer: true }) ?? 1024,
    maxRetries: optNumber(o, 'maxRetries', path, { min: 0, max: 10, integer: true }) ?? 2,
    queueTimeoutMs: optNumber(o, 'queueTimeoutMs', path, { min: 0, max: 3_600_000, integer: true }) ?? 30_000,
    retryBaseMs: optNumber(o, 'retryBaseMs', path, { min: 1, max: 600_000, integer: true }) ?? 200,
    retryMaxMs: optNumber(o, 'retryMaxMs', path, { min: 1, max: 600_000, integer: true }) ?? 10_000,
    timeouts: {
      connectMs: optNumber(t, 'connectMs', tPath, ms) ?? DEFAULT_TIMEOUTS.connectMs,
      firstByteMs: optNumber(t, 'firstByteMs', tPath, ms) ?? DEFAULT_TIMEOUTS.firstByteMs,
      idleMs: optNumber(t, 'idleMs', tPath, ms) ?? DEFAULT_TIMEOUTS.idleMs,
      totalMs: optNumber(t, 'totalMs', tPath, ms) ?? DEFAULT_TIMEOUTS.totalMs,
    },
    breaker: {
      failureThreshold: optNumber(b, 'failureThreshold', bPath, { min: 1, max: 10000, integer: true }) ?? 5,
      openMs: optNumber(b, 'openMs', bPath, ms) ?? 30000,
    },
  };
  const rpm = optNumber(o, 'rpm', path, { min: 1, integer: true });
  const tpm = optNumber(o, 'tpm', path, { min: 1, integer: true });
  if (rpm !== undefined) spec.rpm = rpm;
  if (tpm !== undefined) spec.tpm = tpm;
  // Left out when absent: a catalog entry then reads the same to nodes of an older version.
  const rateWindowMs = optNumber(o, 'rateWindowMs', path, { min: 1000, max: 3_600_000, integer: true });
  if (rateWindowMs !== undefined) spec.rateWindowMs = rateWindowMs;
  return spec;
}

/** `<n><unit>` (m minute, h hour, d day, mo month; n from 1) or one of the unit words. */
export const BUDGET_WINDOW = /^(?:[1-9]\d{0,5}(?:s|m|h|d|mo)|minute|hour|day|month)$/;

/**
 * Parses a budget: a deployment's (`onExceeded` allowed) or an API key's (always
 * rejects: a key's budget spans every deployment, so another one would not help).
 */
export function parseBudget(o: Json, path: string, owner: 'deployment' | 'key' = 'deployment'): BudgetSpec {
  noUnknownKeys(o, owner === 'deployment' ? ['window', 'maxTokens', 'maxCostUsd', 'onExceeded'] : ['window', 'maxTokens', 'maxCostUsd'], path);
  const window = reqString(o, 'window', path);
  if (!BUDGET_WINDOW.test(window)) invalid(join(path, 'window'), "expected a window like '30s', '1m', '1h', '1d', '1mo' or minute, hour, day, month");
  const spec: BudgetSpec = { window, onExceeded: optEnum(o, 'onExceeded', path, ['reject', 'fallback'] as const) ?? 'reject' };
  const maxTokens = optNumber(o, 'maxTokens', path, { min: 0, integer: true });
  const maxCostUsd = optNumber(o, 'maxCostUsd', path, { min: 0 });
  if (maxTokens !== undefined) spec.maxTokens = maxTokens;
  if (maxCostUsd !== undefined) spec.maxCostUsd = maxCostUsd;
  return spec;
}

/** Where an anthropic deployment goes when it names no endpoint. */
export const ANTHROPIC_ENDPOINT = 'https://api.anthropic.com/v1';

export const DEPLOYMENT_NAME = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/;

/**
 * Parses one deployment (config file entry or admin PUT body). `runtimes` names
 * the runtimes registered beside the built-in ones; any other name is refused.
 */
export function parseDeployment(raw: unknown, path = '', runtimes: readonly string[] = []): DeploymentSpec {
  const o = asObject(raw, path);
  noUnknownKeys(o, DEPLOYMENT_KEYS, path);
  const name = reqString(o, 'name', path, { nonEmpty: true });
  if (!DEPLOYMENT_NAME.test(name)) invalid(join(path, 'name'), 'may hold letters, digits and . _ : / - (at most 128)');
  const known: readonly RuntimeKind[] = [...BUILTIN_RUNTIMES, ...runtimes];
  const runtime = optEnum(o, 'runtime', path, known);
  if (runtime === undefined) invalid(join(path, 'runtime'), `is required (${known.join(' | ')})`);
  const spec: DeploymentSpec = {
    name,
    runtime,
    replicas: optNumber(o, 'replicas', path, { min: 0, max: 1024, integer: true }) ?? 1,
    engine: parseEngine(optObject(o, 'engine', path), join(path, 'engine')),
    remote: parseRemote(optObject(o, 'remote', path), join(path, 'remote')),
    fallbacks: (optArray(o, 'fallbacks', path) ?? []).map((f, i) => {
      if (typeof f !== 'string' || f === '') invalid(join(join(path, 'fallbacks'), i), 'expected a deployment name');
      return f;
    }),
    onCapacityExhausted: optEnum(o, 'onCapacityExhausted', path, ['reject', 'queue', 'fallback'] as const) ?? 'queue',
    routing: parseRouting(optObject(o, 'routing', path), join(path, 'routing'), runtime),
  };
  const model = optString(o, 'model', path);
  const endpoint = optString(o, 'endpoint', path);
  const apiKeyEnv = optString(o, 'apiKeyEnv', path);
  if (model !== undefined) spec.model = model;
  if (endpoint !== undefined) {
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      invalid(join(path, 'endpoint'), 'expected an absolute http(s) URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') invalid(join(path, 'endpoint'), 'expected an http(s) URL');
    spec.endpoint = endpoint.replace(/\/+$/, '');
  }
  if (apiKeyEnv !== undefined) spec.apiKeyEnv = apiKeyEnv;
  if (runtime === 'llama' && model === undefined) invalid(join(path, 'model'), 'is required for runtime llama (a GGUF file)');
  if (runtime === 'anthropic' && endpoint === undefined) spec.endpoint = ANTHROPIC_ENDPOINT;
  if (runtime === 'openai' && endpoint === undefined) invalid(join(path, 'endpoint'), `is required for runtime ${runtime}`);
  if (spec.fallbacks.includes(name)) invalid(join(path, 'fallbacks'), 'a deployment cannot fall back to itself');
  const price = optObject(o, 'price', path);
  if (price !== undefined) {
    const pPath = join(path, 'price');
    noUnknownKeys(price, ['inputPerMTok', 'outputPerMTok'], pPath);
    spec.price = {
      inputPerMTok: optNumber(price, 'inputPerMTok', pPath, { min: 0 }) ?? 0,
      outputPerMTok: optNumber(price, 'outputPerMTok', pPath, { min: 0 }) ?? 0,
    };
  }
  const budget = optObject(o, 'budget', path);
  if (budget !== undefined) spec.budget = parseBudget(budget, join(path, 'budget'));
  return spec;
}
