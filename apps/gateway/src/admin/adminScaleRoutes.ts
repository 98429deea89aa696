// Admin routes of the managed catalog beyond PUT/GET/DELETE of a deployment:
// `POST /admin/deployments/:name/scale {"replicas": N}` sets the desired replica
// count at run time (the spec otherwise unchanged, so nothing rolls), and
// `GET /admin/node` shows the node inventory and the reservations placement made.
// Handlers only validate, call the runtime and render; admin auth (when
// configured) applies through the gateway's onRequest hook like every /admin route.

import type { FastifyInstance } from 'fastify';
import { type NodeInventory, type Placement, MAX_REPLICAS } from '@inference/actors';
import { asObject, noUnknownKeys, optNumber, invalid } from '@inference/core';
import type { Runtime } from '@inference/runtime';

/** Validates a scale body: exactly `{"replicas": <integer 0..MAX_REPLICAS>}`. */
export function parseScaleBody(body: unknown): number {
  const o = asObject(body, '');
  noUnknownKeys(o, ['replicas'], '');
  const n = optNumber(o, 'replicas', '', { min: 0, max: MAX_REPLICAS, integer: true });
  if (n === undefined) invalid('replicas', 'is required');
  return n;
}

export function registerAdminScaleRoutes(app: FastifyInstance, rt: Runtime): void {
  app.post<{ Params: { name: string } }>('/admin/deployments/:name/scale', (req) => rt.scale(req.params.name, parseScaleBody(req.body)));
  app.get('/admin/node', async () => {
    const node = await rt.placement.ask<{ inventory: NodeInventory; reservations: Record<string, Placement> }>((reply) => ({ type: 'inventory', reply }));
    return node;
  });
}
