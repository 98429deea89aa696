// Admin routes of virtual keys (docs/keys.md). Handlers only validate, call the
// KeyService and render; admin auth applies through the gateway's onRequest hook
// like every /admin route. A secret appears in exactly two answers: create (201)
// and rotate; responses carrying one are marked `cache-control: no-store`.
//   POST   /admin/keys                 create   {name, deployments?, budget?, rpm?, tpm?, expiresAt?, metadata?}
//   GET    /admin/keys                 list
//   GET    /admin/keys/:name           get
//   PATCH  /admin/keys/:name           update   (any of the settings; null clears one)
//   POST   /admin/keys/:name/rotate    rotate
//   POST   /admin/keys/:name/revoke    revoke

import type { FastifyInstance, FastifyRequest } from 'fastify';
import { adminOf } from '../http/auth.js';
import type { ChangeContext, KeyService } from './keyService.js';

function ctxOf(req: FastifyRequest): ChangeContext {
  return { actor: adminOf(req) ?? null, requestId: req.id };
}

export function registerKeyRoutes(app: FastifyInstance, keys: KeyService): void {
  app.post('/admin/keys', async (req, reply) => {
    const out = await keys.create(req.body, ctxOf(req));
    return reply.code(201).header('cache-control', 'no-store').send(out);
  });
  app.get('/admin/keys', () => ({ keys: keys.list() }));
  app.get<{ Params: { name: string } }>('/admin/keys/:name', (req) => keys.get(req.params.name));
  app.patch<{ Params: { name: string } }>('/admin/keys/:name', (req) => keys.update(req.params.name, req.body, ctxOf(req)));
  app.post<{ Params: { name: string } }>('/admin/keys/:name/rotate', async (req, reply) => {
    const out = await keys.rotate(req.params.name, ctxOf(req));
    return reply.header('cache-control', 'no-store').send(out);
  });
  app.post<{ Params: { name: string } }>('/admin/keys/:name/revoke', (req) => keys.revoke(req.params.name, ctxOf(req)));
}
