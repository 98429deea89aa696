// The `telemetry.traces` block of the config file and the standard OTEL_*
// variables that complete it, validated into one typed object (docs/tracing.md).
// Pure: the environment is a parameter (config.ts passes process.env). Tracing is
// off unless the file has a `telemetry.traces` block or the environment asks for
// OTLP traces; OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none turn it off.
// File keys win over the environment. Header values may be secrets, so the file
// names them by environment variable (`headersEnv`), never by value.

import { type Json, InferenceError, asObject, invalid, join, noUnknownKeys, optBool, optNumber, optObject, optString } from '@inference/core';

/** What the file says (every key optional). */
export interface TracesFileConfig {
  readonly enabled?: boolean;
  readonly endpoint?: string;
  readonly serviceName?: string;
  readonly sampleRatio?: number;
  /** Header name to value: not secret (the file holds no secrets). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Header name to the environment variable holding its value (e.g. a collector token). */
  readonly headersEnv?: Readonly<Record<string, string>>;
  readonly batchDelayMs?: number;
  readonly resourceAttributes?: Readonly<Record<string, string>>;
}

/** Tracing as it runs. */
export interface TracesConfig {
  /** Full URL of the OTLP/HTTP traces endpoint (e.g. http://collector:4318/v1/traces). */
  readonly endpoint: string;
  readonly serviceName: string;
  /** Fraction of new traces recorded (0..1); a caller's sampled flag is always honoured. */
  readonly sampleRatio: number;
  /** Sent with every export; values may be secrets and never leave the exporter. */
  readonly headers: Readonly<Record<string, string>>;
  readonly batchDelayMs: number;
  readonly resourceAttributes: Readonly<Record<string, string>>;
}

export type Env = Readonly<Record<string, string | undefined>>;

export const TRACES_DEFAULTS = { endpoint: 'http://localhost:4318/v1/traces', serviceName: 'inference', sampleRatio: 1, batchDelayMs: 5000 } as const;

const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function stringMap(o: Json, key: string, path: string, check: (k: string, v: string, p: string) => void): Record<string, string> | undefined {
  const m = optObject(o, key, path);
  if (m === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(m)) {
    const p = join(join(path, key), k);
    if (typeof v !== 'string') invalid(p, 'expected a string');
    check(k, v, p);
    out[k] = v;
  }
  return out;
}

function checkUrl(url: string, path: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    invalid(path, `'${url}' is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') invalid(path, 'must be an http:// or https:// URL');
  if (u.username !== '' || u.password !== '') invalid(path, 'must not hold credentials (use headersEnv)');
}

export function parseTracesBlock(raw: unknown): TracesFileConfig {
  const p = 'telemetry.traces';
  const o = asObject(raw ?? {}, p);
  noUnknownKeys(o, ['enabled', 'endpoint', 'serviceName', 'sampleRatio', 'headers', 'headersEnv', 'batchDelayMs', 'resourceAttributes'], p);
  const out: { -readonly [K in keyof TracesFileConfig]: TracesFileConfig[K] } = {};
  const enabled = optBool(o, 'enabled', p);
  if (enabled !== undefined) out.enabled = enabled;
  const endpoint = optString(o, 'endpoint', p);
  if (endpoint !== undefined) {
    checkUrl(endpoint, join(p, 'endpoint'));
    out.endpoint = endpoint;
  }
  const serviceName = optString(o, 'serviceName', p);
  if (serviceName !== undefined) {
    if (serviceName === '') invalid(join(p, 'serviceName'), 'must not be empty');
    out.serviceName = serviceName;
  }
  const ratio = optNumber(o, 'sampleRatio', p, { min: 0, max: 1 });
  if (ratio !== undefined) out.sampleRatio = ratio;
  const delay = optNumber(o, 'batchDelayMs', p, { min: 10, max: 600_000, integer: true });
  if (delay !== undefined) out.batchDelayMs = delay;
  const headerName = (k: string, _v: string, hp: string): void => {
    if (!HEADER_NAME.test(k)) invalid(hp, 'is not a valid header name');
  };
  const headers = stringMap(o, 'headers', p, headerName);
  if (headers !== undefined) out.headers = headers;
  const headersEnv = stringMap(o, 'headersEnv', p, (k, v, hp) => {
    headerName(k, v, hp);
    if (!ENV_NAME.test(v)) invalid(hp, 'expected an environment variable name');
  });
  if (headersEnv !== undefined) out.headersEnv = headersEnv;
  const attrs = stringMap(o, 'resourceAttributes', p, () => undefined);
  if (attrs !== undefined) out.resourceAttributes = attrs;
  return out;
}

/** `k=v,k2=v2` (OTEL_EXPORTER_OTLP_HEADERS, OTEL_RESOURCE_ATTRIBUTES), values percent-decoded. */
export function parseKeyValues(text: string, variable: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(',')) {
    if (part.trim() === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) throw new InferenceError('invalid_request', `${variable}: expected key=value pairs separated by commas`);
    try {
      out[decodeURIComponent(part.slice(0, eq).trim())] = decodeURIComponent(part.slice(eq + 1).trim());
    } catch {
      throw new InferenceError('invalid_request', `${variable}: bad percent-encoding`);
    }
  }
  return out;
}

function envRatio(env: Env): number | undefined {
  const sampler = env.OTEL_TRACES_SAMPLER;
  if (sampler === undefined || sampler === '') return undefined;
  switch (sampler) {
    case 'always_on':
    case 'parentbased_always_on':
      return 1;
    case 'always_off':
    case 'parentbased_always_off':
      return 0;
    case 'traceidratio':
    case 'parentbased_traceidratio': {
      const arg = env.OTEL_TRACES_SAMPLER_ARG;
      const r = arg === undefined || arg === '' ? 1 : Number(arg);
      if (!Number.isFinite(r) || r < 0 || r > 1) throw new InferenceError('invalid_request', 'OTEL_TRACES_SAMPLER_ARG: expected a number from 0 to 1');
      return r;
    }
    default:
      throw new InferenceError(
        'invalid_request',
        `OTEL_TRACES_SAMPLER: '${sampler}' is not supported (always_on, always_off, traceidratio, or their parentbased_ forms)`,
      );
  }
}

function envEndpoint(env: Env): string | undefined {
  const traces = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  if (traces !== undefined && traces !== '') return traces;
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (base !== undefined && base !== '') return `${base.replace(/\/+$/, '')}/v1/traces`;
  return undefined;
}

/**
 * Tracing from the file block and the environment, or undefined when it is off.
 * An environment variable the file names but that is unset is an error naming the key.
 */
export function resolveTraces(file: TracesFileConfig | undefined, env: Env): TracesConfig | undefined {
  if (env.OTEL_SDK_DISABLED?.toLowerCase() === 'true') return undefined;
  const exporter = env.OTEL_TRACES_EXPORTER;
  if (exporter !== undefined && exporter !== '' && exporter !== 'otlp' && exporter !== 'none') {
    throw new InferenceError('invalid_request', `OTEL_TRACES_EXPORTER: '${exporter}' is not supported (otlp or none)`);
  }
  const protocol = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL;
  if (protocol === 'grpc') throw new InferenceError('invalid_request', 'OTEL_EXPORTER_OTLP_PROTOCOL: grpc is not supported; traces are sent over OTLP/HTTP');
  if (exporter === 'none' || file?.enabled === false) return undefined;
  const fromEnv = envEndpoint(env);
  if (file === undefined && exporter !== 'otlp' && fromEnv === undefined) return undefined;
  const endpoint = file?.endpoint ?? fromEnv ?? TRACES_DEFAULTS.endpoint;
  if (file?.endpoint === undefined) checkUrl(endpoint, fromEnv === undefined ? 'telemetry.traces.endpoint' : 'OTEL_EXPORTER_OTLP_ENDPOINT');
  const headers: Record<string, string> = {
    ...parseKeyValues(env.OTEL_EXPORTER_OTLP_HEADERS ?? '', 'OTEL_EXPORTER_OTLP_HEADERS'),
    ...parseKeyValues(env.OTEL_EXPORTER_OTLP_TRACES_HEADERS ?? '', 'OTEL_EXPORTER_OTLP_TRACES_HEADERS'),
    ...file?.headers,
  };
  for (const [name, variable] of Object.entries(file?.headersEnv ?? {})) {
    const v = env[variable];
    if (v === undefined || v === '') invalid(join('telemetry.traces.headersEnv', name), `environment variable ${variable} is not set`);
    headers[name] = v;
  }
  let batchDelayMs: number = file?.batchDelayMs ?? TRACES_DEFAULTS.batchDelayMs;
  const bsp = env.OTEL_BSP_SCHEDULE_DELAY;
  if (file?.batchDelayMs === undefined && bsp !== undefined && bsp !== '') {
    const n = Number(bsp);
    if (!Number.isInteger(n) || n < 10) throw new InferenceError('invalid_request', 'OTEL_BSP_SCHEDULE_DELAY: expected milliseconds (an integer >= 10)');
    batchDelayMs = n;
  }
  const envService = env.OTEL_SERVICE_NAME === '' ? undefined : env.OTEL_SERVICE_NAME;
  return {
    endpoint,
    serviceName: file?.serviceName ?? envService ?? TRACES_DEFAULTS.serviceName,
    sampleRatio: file?.sampleRatio ?? envRatio(env) ?? TRACES_DEFAULTS.sampleRatio,
    headers,
    batchDelayMs,
    resourceAttributes: { ...parseKeyValues(env.OTEL_RESOURCE_ATTRIBUTES ?? '', 'OTEL_RESOURCE_ATTRIBUTES'), ...file?.resourceAttributes },
  };
}
