// The operations on virtual keys behind the admin API and the CLI: create (the
// secret is returned once), list, get, update, rotate (a new secret; the old one
// stops working) and revoke (the record stays, refused from then on). Each change
// goes to the backend (storage or etcd) naming the record it replaces, and is
// recorded in the audit trail with the key's view before and after (never a
// secret or a hash). Names of keys from the config file (`auth.apiKeys`) are
// taken: budgets and metrics know keys by name.

import { InferenceError } from '@inference/core';
import type { AuditAction, AuditLog } from '../audit/auditLog.js';
import type { KeyBackend } from './keyBackend.js';
import type { KeyRegistry } from './keyRegistry.js';
import {
  type KeySettings, type KeyView, type VirtualKey, checkKeyName, createRecord, newSecret, parseCreateBody, parseUpdateBody, viewOf, withSettings,
} from './virtualKey.js';

/** Who asked (for the audit trail). */
export interface ChangeContext {
  readonly actor: string | null;
  readonly requestId: string | null;
}

export class KeyService {
  constructor(
    private readonly registry: KeyRegistry,
    private readonly backend: KeyBackend,
    private readonly audit: AuditLog,
    /** Names of the config file's API keys. */
    private readonly reserved: ReadonlySet<string>,
    private readonly now: () => number = Date.now,
  ) {}

  list(): KeyView[] {
    const now = this.now();
    return this.registry.list().map((k) => viewOf(k, now));
  }

  get(name: string): KeyView {
    return viewOf(this.find(name), this.now());
  }

  async create(body: unknown, ctx: ChangeContext): Promise<{ key: KeyView; secret: string }> {
    const now = this.now();
    const { name, settings } = parseCreateBody(body, now);
    if (this.reserved.has(name)) {
      throw new InferenceError('invalid_request', `name '${name}' belongs to a key of the config file (auth.apiKeys)`, { param: 'name' });
    }
    if (this.registry.get(name) !== undefined) {
      throw new InferenceError('invalid_request', `a key named '${name}' already exists (revoked keys keep their name)`, { param: 'name' });
    }
    const secret = newSecret();
    const record = createRecord(name, settings, now, secret);
    await this.change('key.create', undefined, record, ctx);
    return { key: viewOf(record, now), secret: secret.secret };
  }

  async update(name: string, body: unknown, ctx: ChangeContext): Promise<KeyView> {
    const now = this.now();
    const settings: KeySettings = parseUpdateBody(body, now);
    const old = this.live(name);
    const record = withSettings(old, settings, now);
    await this.change('key.update', old, record, ctx);
    return viewOf(record, now);
  }

  async rotate(name: string, ctx: ChangeContext): Promise<{ key: KeyView; secret: string }> {
    const now = this.now();
    const old = this.live(name);
    const secret = newSecret();
    const record: VirtualKey = { ...old, hash: secret.hash, prefix: secret.prefix, rotatedAt: now, updatedAt: now, version: old.version + 1 };
    await this.change('key.rotate', old, record, ctx);
    return { key: viewOf(record, now), secret: secret.secret };
  }

  async revoke(name: string, ctx: ChangeContext): Promise<KeyView> {
    const now = this.now();
    const old = this.find(name);
    if (old.revokedAt !== undefined) throw new InferenceError('invalid_request', `key '${name}' is already revoked`, { param: 'name' });
    const record: VirtualKey = { ...old, revokedAt: now, updatedAt: now, version: old.version + 1 };
    await this.change('key.revoke', old, record, ctx);
    return viewOf(record, now);
  }

  private async change(action: AuditAction, old: VirtualKey | undefined, record: VirtualKey, ctx: ChangeContext): Promise<void> {
    await this.backend.write(record, old);
    const now = this.now();
    await this.audit.append({
      action, target: record.name, actor: ctx.actor, requestId: ctx.requestId,
      before: old === undefined ? null : viewOf(old, now), after: viewOf(record, now),
    });
  }

  private find(name: string): VirtualKey {
    checkKeyName(name);
    const k = this.registry.get(name);
    if (k === undefined) throw new InferenceError('not_found', `no key named '${name}'`, { param: 'name' });
    return k;
  }

  /** A key that may still change: revoked keys are final. */
  private live(name: string): VirtualKey {
    const k = this.find(name);
    if (k.revokedAt !== undefined) throw new InferenceError('invalid_request', `key '${name}' is revoked; create a new key instead`, { param: 'name' });
    return k;
  }
}
