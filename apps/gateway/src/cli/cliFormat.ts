// Human-readable rendering of admin replies for the CLI: plain aligned tables,
// no colours, one row per deployment or replica. `--json` bypasses this.

import type { DeploymentStatus, ReplicaStatus } from '@inference/actors';

export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

function age(since: string, now: number): string {
  const s = Math.max(0, Math.round((now - Date.parse(since)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  return `${Math.round(s / 3600)}h`;
}

function gpus(r: ReplicaStatus): string {
  const p = r.placement;
  if (p === undefined) return '-';
  return p.gpus.length === 0 ? 'cpu' : p.gpus.join(',');
}

export function renderList(all: DeploymentStatus[]): string {
  if (all.length === 0) return 'no deployments';
  return table(
    ['NAME', 'RUNTIME', 'STATE', 'SERVING', 'REVISION', 'REASON'],
    all.map((d) => [d.spec.name, d.spec.runtime, d.state, `${d.serving}/${d.desired}`, String(d.revision), d.reason ?? '']),
  );
}

export function renderDeployment(d: DeploymentStatus, now = Date.now()): string {
  const head = [
    `name:      ${d.spec.name}`,
    `runtime:   ${d.spec.runtime}${d.spec.model === undefined ? '' : ` (${d.spec.model})`}`,
    `state:     ${d.state}${d.reason === undefined ? '' : ` — ${d.reason}`}`,
    `replicas:  ${d.serving} serving of ${d.desired} desired, revision ${d.revision}`,
  ];
  if (d.replicas.length === 0) return [...head, '', 'no replicas'].join('\n');
  const rows = d.replicas.map((r) => [
    r.id, r.state, String(r.revision), String(r.restarts), `${r.load.outstanding}/${r.load.capacity}`, gpus(r), age(r.since, now),
    [r.reason, r.placement?.warning].filter((x) => x !== undefined).join('; '),
  ]);
  return [...head, '', table(['REPLICA', 'STATE', 'REV', 'RESTARTS', 'LOAD', 'GPUS', 'AGE', 'REASON'], rows)].join('\n');
}
