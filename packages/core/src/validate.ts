// Small typed readers for untrusted JSON (HTTP bodies, config files, admin calls).
// Each failure is an `invalid_request` error whose `param` is the path of the
// offending field, so clients and operators see exactly what to fix.

import { InferenceError } from './errors.js';

export type Json = Record<string, unknown>;

function fail(path: string, message: string): never {
  throw new InferenceError('invalid_request', path === '' ? message : `${path}: ${message}`, { param: path === '' ? null : path });
}

export function join(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path === '' ? key : `${path}.${key}`;
}

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

export function asObject(v: unknown, path: string): Json {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(path, `expected an object, got ${describe(v)}`);
  return v as Json;
}

/** Rejects keys outside `allowed`, naming the first unknown one. */
export function noUnknownKeys(o: Json, allowed: readonly string[], path: string): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) fail(join(path, k), `unknown key '${k}'`);
  }
}

export function reqString(o: Json, key: string, path: string, opts: { nonEmpty?: boolean } = {}): string {
  const v = o[key];
  if (v === undefined || v === null) fail(join(path, key), 'is required');
  if (typeof v !== 'string') fail(join(path, key), `expected a string, got ${describe(v)}`);
  if (opts.nonEmpty === true && v.length === 0) fail(join(path, key), 'must not be empty');
  return v;
}

export function optString(o: Json, key: string, path: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') fail(join(path, key), `expected a string, got ${describe(v)}`);
  return v;
}

export function optNumber(o: Json, key: string, path: string, range: { min?: number; max?: number; integer?: boolean } = {}): number | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(join(path, key), `expected a number, got ${describe(v)}`);
  if (range.integer === true && !Number.isInteger(v)) fail(join(path, key), 'expected an integer');
  if (range.min !== undefined && v < range.min) fail(join(path, key), `must be >= ${range.min}`);
  if (range.max !== undefined && v > range.max) fail(join(path, key), `must be <= ${range.max}`);
  return v;
}

export function optBool(o: Json, key: string, path: string): boolean | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') fail(join(path, key), `expected a boolean, got ${describe(v)}`);
  return v;
}

export function optEnum<T extends string>(o: Json, key: string, path: string, values: readonly T[]): T | undefined {
  const v = optString(o, key, path);
  if (v === undefined) return undefined;
  if (!(values as readonly string[]).includes(v)) fail(join(path, key), `must be one of ${values.join(', ')}`);
  return v as T;
}

export function optArray(o: Json, key: string, path: string): unknown[] | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) fail(join(path, key), `expected an array, got ${describe(v)}`);
  return v as unknown[];
}

export function optObject(o: Json, key: string, path: string): Json | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  return asObject(v, join(path, key));
}

export function invalid(path: string, message: string): never {
  fail(path, message);
}
