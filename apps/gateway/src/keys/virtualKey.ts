// A virtual API key: created, changed, rotated and revoked at run time through
// the admin API (docs/keys.md). The secret is `sk-inf-` + 43 base64url characters
// (256 random bits); it is returned once, at create or rotate, and never stored:
// a record holds its SHA-256 (hex) and a short display prefix. Records are plain
// JSON (they live in the storage file or in etcd) and are validated when read.
// Revoked keys keep their record (so a name is never reused by accident and the
// audit trail stays readable); `revokedAt` marks them.

import { createHash, randomBytes } from 'node:crypto';
import {
  type BudgetSpec, InferenceError, asObject, invalid, join, noUnknownKeys, optArray, optNumber, optObject, optString, parseBudget, reqString,
} from '@inference/core';

export const SECRET_PREFIX = 'sk-inf-';
/** Characters of the secret shown in listings: the prefix and 5 more. */
const DISPLAY_CHARS = SECRET_PREFIX.length + 5;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const META_KEY = /^[A-Za-z0-9._-]{1,64}$/;
const MAX_META = 16;
const MAX_META_VALUE = 256;
const MAX_RATE = 100_000_000;

export interface VirtualKey {
  readonly name: string;
  /** SHA-256 of the secret, hex. */
  readonly hash: string;
  /** The secret's first characters, for people to tell keys apart. */
  readonly prefix: string;
  /** Absent: every deployment. */
  readonly deployments?: readonly string[] | undefined;
  readonly budget?: BudgetSpec | undefined;
  readonly rpm?: number | undefined;
  readonly tpm?: number | undefined;
  /** ms since the epoch; absent: never. */
  readonly expiresAt?: number | undefined;
  readonly metadata: Readonly<Record<string, string>>;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly rotatedAt?: number | undefined;
  readonly revokedAt?: number | undefined;
  /** 1 at create, +1 on every change: a write names the version it replaces. */
  readonly version: number;
}

export type KeyState = 'active' | 'expired' | 'revoked';

export function stateOf(k: VirtualKey, now: number): KeyState {
  if (k.revokedAt !== undefined) return 'revoked';
  if (k.expiresAt !== undefined && now >= k.expiresAt) return 'expired';
  return 'active';
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** A fresh secret with its hash and display prefix. */
export function newSecret(): { secret: string; hash: string; prefix: string } {
  const secret = SECRET_PREFIX + randomBytes(32).toString('base64url');
  return { secret, hash: hashSecret(secret), prefix: secret.slice(0, DISPLAY_CHARS) };
}

/** The fields an operator sets (create and update). */
export interface KeySettings {
  deployments?: string[] | null;
  budget?: BudgetSpec | null;
  rpm?: number | null;
  tpm?: number | null;
  expiresAt?: number | null;
  metadata?: Record<string, string>;
}

const SETTINGS = ['deployments', 'budget', 'rpm', 'tpm', 'expiresAt', 'metadata'] as const;

export function checkKeyName(name: string, path = 'name'): string {
  if (!NAME.test(name)) invalid(path, 'may hold letters, digits and . _ - (at most 64)');
  return name;
}

/** Reads the settings of a create or update body; `null` clears a setting (update only). */
function parseSettings(o: Record<string, unknown>, allowNull: boolean, now: number): KeySettings {
  const out: KeySettings = {};
  const cleared = (k: string): boolean => {
    if (o[k] !== null) return false;
    if (!allowNull) invalid(k, 'may not be null');
    return true;
  };
  if (o.deployments !== undefined) {
    if (cleared('deployments')) out.deployments = null;
    else {
      const list = optArray(o, 'deployments', '') ?? [];
      out.deployments = list.map((d, i) => {
        if (typeof d !== 'string' || d === '') invalid(join('deployments', i), 'expected a deployment name');
        return d;
      });
    }
  }
  if (o.budget !== undefined) {
    if (cleared('budget')) out.budget = null;
    else out.budget = parseBudget(optObject(o, 'budget', '') ?? {}, 'budget', 'key');
  }
  for (const k of ['rpm', 'tpm'] as const) {
    if (o[k] === undefined) continue;
    if (cleared(k)) out[k] = null;
    else out[k] = optNumber(o, k, '', { min: 1, max: MAX_RATE, integer: true }) ?? null;
  }
  if (o.expiresAt !== undefined) {
    if (cleared('expiresAt')) out.expiresAt = null;
    else {
      const text = optString(o, 'expiresAt', '') ?? '';
      const at = Date.parse(text);
      if (!/^\d{4}-\d{2}-\d{2}T/.test(text) || Number.isNaN(at)) invalid('expiresAt', 'expected an ISO 8601 time, e.g. 2030-01-31T00:00:00Z');
      if (at <= now) invalid('expiresAt', 'is in the past');
      out.expiresAt = at;
    }
  }
  if (o.metadata !== undefined) out.metadata = parseMetadata(o.metadata, 'metadata');
  return out;
}

function parseMetadata(raw: unknown, path: string): Record<string, string> {
  const m = asObject(raw, path);
  const entries = Object.entries(m);
  if (entries.length > MAX_META) invalid(path, `at most ${MAX_META} entries`);
  const out: Record<string, string> = {};
  for (const [k, v] of entries) {
    if (!META_KEY.test(k)) invalid(join(path, k), 'names may hold letters, digits and . _ - (at most 64)');
    if (typeof v !== 'string' || v.length > MAX_META_VALUE) invalid(join(path, k), `expected a string of at most ${MAX_META_VALUE} characters`);
    out[k] = v;
  }
  return out;
}

/** `POST /admin/keys` body: a name and the settings. */
export function parseCreateBody(body: unknown, now: number): { name: string; settings: KeySettings } {
  const o = asObject(body ?? {}, '');
  noUnknownKeys(o, ['name', ...SETTINGS], '');
  const name = checkKeyName(reqString(o, 'name', '', { nonEmpty: true }));
  return { name, settings: parseSettings(o, false, now) };
}

/** `PATCH /admin/keys/:name` body: the settings to change (null clears one). */
export function parseUpdateBody(body: unknown, now: number): KeySettings {
  const o = asObject(body ?? {}, '');
  noUnknownKeys(o, SETTINGS, '');
  const s = parseSettings(o, true, now);
  if (Object.keys(s).length === 0) throw new InferenceError('invalid_request', `nothing to change: give one of ${SETTINGS.join(', ')}`);
  return s;
}

/** A record with `settings` applied. */
export function withSettings(k: VirtualKey, s: KeySettings, now: number): VirtualKey {
  const pick = <T>(v: T | null | undefined, old: T | undefined): T | undefined => (v === undefined ? old : v ?? undefined);
  return compact({
    ...k,
    deployments: pick(s.deployments, k.deployments),
    budget: pick(s.budget, k.budget),
    rpm: pick(s.rpm, k.rpm),
    tpm: pick(s.tpm, k.tpm),
    expiresAt: pick(s.expiresAt, k.expiresAt),
    metadata: s.metadata ?? k.metadata,
    updatedAt: now,
    version: k.version + 1,
  });
}

/** Drops undefined fields, so a record compares and stores as plain JSON. */
function compact(k: VirtualKey): VirtualKey {
  return Object.fromEntries(Object.entries(k).filter(([, v]) => v !== undefined)) as unknown as VirtualKey;
}

export function createRecord(name: string, s: KeySettings, now: number, secret: { hash: string; prefix: string }): VirtualKey {
  return withSettings({ name, hash: secret.hash, prefix: secret.prefix, metadata: {}, createdAt: now, updatedAt: now, version: 0 }, s, now);
}

/** Validates a record read from storage or etcd. */
export function parseStoredKey(raw: unknown): VirtualKey {
  const o = asObject(raw, 'key');
  const name = checkKeyName(reqString(o, 'name', 'key'), 'key.name');
  const num = (k: string, min = 0): number | undefined => optNumber(o, k, 'key', { min, integer: true });
  const hash = reqString(o, 'hash', 'key');
  if (!/^[0-9a-f]{64}$/.test(hash)) invalid('key.hash', 'expected a SHA-256 in hex');
  const deployments = optArray(o, 'deployments', 'key')?.map((d, i) => {
    if (typeof d !== 'string') invalid(join('key.deployments', i), 'expected a deployment name');
    return d;
  });
  const budget = optObject(o, 'budget', 'key');
  return compact({
    name,
    hash,
    prefix: reqString(o, 'prefix', 'key'),
    deployments,
    budget: budget === undefined ? undefined : parseBudget(budget, 'key.budget', 'deployment'),
    rpm: num('rpm', 1),
    tpm: num('tpm', 1),
    expiresAt: num('expiresAt'),
    metadata: o.metadata === undefined ? {} : parseMetadata(o.metadata, 'key.metadata'),
    createdAt: num('createdAt') ?? 0,
    updatedAt: num('updatedAt') ?? 0,
    rotatedAt: num('rotatedAt'),
    revokedAt: num('revokedAt'),
    version: num('version', 1) ?? 1,
  });
}

const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());

/** What the admin API, the CLI and the audit trail show of a key: never the secret, never the hash. */
export interface KeyView {
  name: string;
  prefix: string;
  state: KeyState;
  deployments: readonly string[] | null;
  budget: { window: string; maxTokens: number | null; maxCostUsd: number | null } | null;
  rpm: number | null;
  tpm: number | null;
  expiresAt: string | null;
  metadata: Readonly<Record<string, string>>;
  createdAt: string | null;
  updatedAt: string | null;
  rotatedAt: string | null;
  revokedAt: string | null;
  version: number;
}

export function viewOf(k: VirtualKey, now: number): KeyView {
  return {
    name: k.name,
    prefix: k.prefix,
    state: stateOf(k, now),
    deployments: k.deployments ?? null,
    budget: k.budget === undefined ? null : { window: k.budget.window, maxTokens: k.budget.maxTokens ?? null, maxCostUsd: k.budget.maxCostUsd ?? null },
    rpm: k.rpm ?? null,
    tpm: k.tpm ?? null,
    expiresAt: iso(k.expiresAt),
    metadata: k.metadata,
    createdAt: iso(k.createdAt),
    updatedAt: iso(k.updatedAt),
    rotatedAt: iso(k.rotatedAt),
    revokedAt: iso(k.revokedAt),
    version: k.version,
  };
}
