// `GET /admin/audit?limit=N&before=CURSOR`: the audit trail, newest first, a page
// at a time (`next` is the cursor of the following page, null at the end), and
// `recordChange`, which the admin routes call around every change so the record
// holds the admin key's name, the request id, and the value before and after.

import type { FastifyInstance, FastifyRequest } from 'fastify';
import { InferenceError } from '@inference/core';
import { adminOf } from '../http/auth.js';
import { AUDIT_ID, type AuditAction, type AuditLog, type AuditRecord } from './auditLog.js';

const DEFAULT_PAGE = 50;
const MAX_PAGE = 500;

export function parsePage(query: unknown): { before: string | undefined; limit: number } {
  const q = (typeof query === 'object' && query !== null ? query : {}) as Record<string, unknown>;
  for (const k of Object.keys(q)) {
    if (k !== 'limit' && k !== 'before') throw new InferenceError('invalid_request', `unknown query parameter '${k}'`, { param: k });
  }
  let limit = DEFAULT_PAGE;
  if (q.limit !== undefined) {
    const n = typeof q.limit === 'string' && /^\d{1,6}$/.test(q.limit) ? Number(q.limit) : NaN;
    if (!(n >= 1 && n <= MAX_PAGE)) throw new InferenceError('invalid_request', `limit: expected a whole number 1..${MAX_PAGE}`, { param: 'limit' });
    limit = n;
  }
  let before: string | undefined;
  if (q.before !== undefined) {
    if (typeof q.before !== 'string' || !AUDIT_ID.test(q.before)) {
      throw new InferenceError('invalid_request', 'before: expected a cursor from a previous page (its `next`)', { param: 'before' });
    }
    before = q.before;
  }
  return { before, limit };
}

export function registerAuditRoutes(app: FastifyInstance, audit: AuditLog): void {
  app.get('/admin/audit', async (req) => {
    const { before, limit } = parsePage(req.query);
    // One more than asked tells whether a next page exists.
    const rows = await audit.page(before, limit + 1);
    const records = rows.slice(0, limit);
    const last = records[records.length - 1];
    return { records, next: rows.length > limit && last !== undefined ? last.id : null };
  });
}

/**
 * Runs an admin change and records it. `before` is read first; the record is
 * written after the change succeeded (a refused change leaves no record) and
 * before the answer, so a client that saw the answer can find the record.
 */
export async function recordChange<T>(
  audit: AuditLog | undefined, req: FastifyRequest, action: AuditAction, target: string,
  before: () => Promise<unknown>, run: () => Promise<T>, after: (result: T) => unknown,
): Promise<T> {
  if (audit === undefined) return run();
  const was = await before();
  const result = await run();
  await audit.append({ action, target, actor: adminOf(req) ?? null, requestId: req.id, before: was, after: after(result) });
  return result;
}

export type { AuditRecord };
