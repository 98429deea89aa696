// The start-up guard against an open admin API on the network: admin routes
// (/admin/*, /metrics) served without admin keys on an address other hosts can
// reach is refused, unless the operator says so (server.allowOpenAdmin or
// --allow-open-admin). Loopback stays open without keys: only this host reaches
// it, the embedded default and local trials need nothing (docs/security.md).

import { isIP } from 'node:net';
import { invalid } from '@inference/core';

/** True when only this host can reach a listener bound to `host`. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  if (isIP(v4) === 4) return v4.startsWith('127.');
  return isIP(h) === 6 && (h === '::1' || /^0{0,4}(:0{0,4}){6}:0{0,3}1$/.test(h));
}

/** Throws (naming server.allowOpenAdmin) when the admin API would be open on the network. */
export function checkOpenAdmin(host: string, adminKeys: number, allowOpenAdmin: boolean): void {
  if (adminKeys > 0 || allowOpenAdmin || isLoopbackHost(host)) return;
  invalid('server.allowOpenAdmin', `the admin API (/admin/*, /metrics) would be served without auth.adminKeys on ${host}, which other hosts can reach: `
    + 'anyone there could apply, scale and remove deployments. Configure auth.adminKeys, listen on a loopback address, '
    + 'or set server.allowOpenAdmin: true (or --allow-open-admin) to serve it open on purpose');
}
