// The key layout under one cluster root. Every key any node writes is built
// here, so the layout documented in docs/cluster.md has one source.
//
//   <root>members/<node>                   lease-bound, written by <node>
//   <root>replicas/<node>/<replicaId>      lease-bound, written by <node>
//   <root>election/<role>/<leaseHex>       lease-bound, one per candidate
//   <root>catalog/<name>                   fenced: written by the manager leader
//   <root>placement/<...>                  fenced: written by the placement leader
//   <root>counters/<scope>/<node>          written by <node>, a running total
//   <root>responses/<id>                   any node; lease-bound, dropped after the records' TTL

export const PREFIX = {
  members: 'members/',
  replicas: 'replicas/',
  election: 'election/',
  catalog: 'catalog/',
  placement: 'placement/',
  counters: 'counters/',
  responses: 'responses/',
} as const;

/** Prefixes only their owners write; a leader's fenced write may not touch them. */
const RESERVED = [PREFIX.members, PREFIX.replicas, PREFIX.election, PREFIX.counters, PREFIX.responses];

const SEGMENT = /^[A-Za-z0-9._:@#-]+$/;

/** Names become key segments: no '/' and nothing a prefix scan could confuse. */
export function checkSegment(kind: string, s: string): string {
  if (!SEGMENT.test(s)) throw new RangeError(`${kind} '${s}' may only contain letters, digits and . _ : @ # -`);
  return s;
}

export function memberKey(node: string): string {
  return PREFIX.members + checkSegment('node name', node);
}

export function replicaKey(node: string, replicaId: string): string {
  return `${PREFIX.replicas}${checkSegment('node name', node)}/${checkSegment('replica id', replicaId)}`;
}

export function electionPrefix(role: string): string {
  return `${PREFIX.election}${checkSegment('role', role)}/`;
}

/** Fixed width, so one candidate's key is never a prefix of another's. */
export function candidateKey(role: string, lease: string): string {
  return electionPrefix(role) + BigInt(lease).toString(16).padStart(16, '0');
}

export function counterKey(scope: string, node: string): string {
  return `${PREFIX.counters}${checkSegment('counter scope', scope)}/${checkSegment('node name', node)}`;
}

export function checkLeaderKey(key: string): string {
  if (key.length === 0 || RESERVED.some((p) => key.startsWith(p))) {
    throw new RangeError(`'${key}' is not a key a leader may write (reserved prefixes: ${RESERVED.join(', ')})`);
  }
  return key;
}
