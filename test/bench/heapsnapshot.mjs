// Reads a V8 heap snapshot (.heapsnapshot) and sums its nodes by kind: objects by
// constructor name, closures by function name, contexts, arrays, strings, native
// and code. `diff(before, after, n)` gives what the `after` heap holds beyond
// `before`, per unit of n (per idle stream): the count and self size of each kind.
// Self size (not retained size): every byte is counted once, by the node that
// owns it, so the kinds add up to the heap's growth.
import { readFileSync } from 'node:fs';

/** Map of kind -> { count, size } for one snapshot file. */
export function summarize(file) {
  const snap = JSON.parse(readFileSync(file, 'utf8'));
  const meta = snap.snapshot.meta;
  const fields = meta.node_fields;
  const types = meta.node_types[0];
  const width = fields.length;
  const iType = fields.indexOf('type');
  const iName = fields.indexOf('name');
  const iSize = fields.indexOf('self_size');
  const { nodes, strings } = snap;
  const out = new Map();
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + iType]];
    const name = strings[nodes[i + iName]];
    const key = kindOf(type, name);
    const e = out.get(key);
    if (e === undefined) out.set(key, { count: 1, size: nodes[i + iSize] });
    else {
      e.count++;
      e.size += nodes[i + iSize];
    }
  }
  return out;
}

function kindOf(type, name) {
  switch (type) {
    case 'object':
      // V8 names a function context 'system / Context'; other internals start with 'system /'.
      return name === 'system / Context' ? 'Context' : `${name}`;
    case 'closure':
      return `closure ${name === '' ? '(anonymous)' : name}`;
    case 'string': case 'concatenated string': case 'sliced string':
      return `(${type})`;
    case 'array':
      return `(array ${name})`;
    case 'native':
      // Native names carry addresses or URLs: keep the first word.
      return `(native ${name.split(/[\s/]/)[0]})`;
    case 'code': case 'hidden': case 'object shape':
      return `(${type} ${name.length > 40 ? name.slice(0, 40) : name})`;
    default:
      return `(${type})`;
  }
}

/** Per-unit growth of each kind from `before` to `after`, largest first. */
export function diff(before, after, n) {
  const rows = [];
  for (const [kind, a] of after) {
    const b = before.get(kind) ?? { count: 0, size: 0 };
    const count = (a.count - b.count) / n;
    const size = (a.size - b.size) / n;
    if (count !== 0 || size !== 0) rows.push({ kind, count, size });
  }
  for (const [kind, b] of before) if (!after.has(kind)) rows.push({ kind, count: -b.count / n, size: -b.size / n });
  rows.sort((x, y) => y.size - x.size);
  return rows;
}

/** Rolls closures into one row (and keeps their names apart in `closures`). */
export function totals(rows) {
  const sum = (f) => rows.filter(f).reduce((t, r) => ({ count: t.count + r.count, size: t.size + r.size }), { count: 0, size: 0 });
  return {
    all: sum(() => true),
    closures: sum((r) => r.kind.startsWith('closure ')),
    contexts: sum((r) => r.kind === 'Context'),
    promises: sum((r) => r.kind === 'Promise'),
    // Suspended generators and async functions (V8 names them after their kind).
    generators: sum((r) => !r.kind.startsWith('closure ') && !r.kind.startsWith('(') && /generator|async/i.test(r.kind)),
    strings: sum((r) => r.kind.endsWith('string)')),
  };
}

/**
 * The heap graph of `afterFile`, with accessors by node index, and which of its nodes
 * are new: not in `beforeFile` (both from one process: V8 keeps an object's id across
 * snapshots). `scriptUrl` is the URL of a closure's script, undefined when it has none.
 */
function heapGraph(beforeFile, afterFile) {
  // (Native and synthetic nodes take their ids from addresses, not from that sequence: a set, not a bound.)
  const seen = new Set();
  {
    const s = JSON.parse(readFileSync(beforeFile, 'utf8'));
    const f = s.snapshot.meta.node_fields;
    const w = f.length;
    const iId = f.indexOf('id');
    for (let i = 0; i < s.nodes.length; i += w) seen.add(s.nodes[i + iId]);
  }
  const snap = JSON.parse(readFileSync(afterFile, 'utf8'));
  const meta = snap.snapshot.meta;
  const f = meta.node_fields;
  const w = f.length;
  const [iType, iName, iId, iSize, iEdges] = ['type', 'name', 'id', 'self_size', 'edge_count'].map((k) => f.indexOf(k));
  const ef = meta.edge_fields;
  const ew = ef.length;
  const [eType, eName, eTo] = ['type', 'name_or_index', 'to_node'].map((k) => ef.indexOf(k));
  const nTypes = meta.node_types[0];
  const eTypes = meta.edge_types[0];
  const { nodes, edges, strings } = snap;
  const count = nodes.length / w;
  const firstEdge = new Uint32Array(count + 1);
  for (let i = 0, e = 0; i < count; i++) {
    firstEdge[i] = e;
    e += nodes[i * w + iEdges] * ew;
    firstEdge[i + 1] = e;
  }
  const type = (i) => nTypes[nodes[i * w + iType]];
  const name = (i) => strings[nodes[i * w + iName]];
  const isNew = (i) => !seen.has(nodes[i * w + iId]);
  const edgeName = (e) => {
    const t = eTypes[edges[e + eType]];
    return t === 'element' || t === 'hidden' ? `[${edges[e + eName]}]` : strings[edges[e + eName]];
  };
  const child = (i, label) => {
    for (let e = firstEdge[i]; e < firstEdge[i + 1]; e += ew) if (edgeName(e) === label) return edges[e + eTo] / w;
    return -1;
  };
  const scriptUrl = (closure) => {
    const shared = child(closure, 'shared');
    if (shared < 0) return undefined;
    let script = child(shared, 'script');
    if (script < 0) script = child(shared, 'script_or_debug_info');
    const source = script < 0 ? -1 : child(script, 'name');
    return source < 0 ? undefined : name(source);
  };
  return { snap, meta, nodes, edges, w, ew, iSize, eType, eTo, eTypes, count, firstEdge, type, name, isNew, edgeName, child, scriptUrl };
}

/**
 * Who holds what a stream adds: the objects of `afterFile` that `beforeFile` did not
 * have (heapGraph), by owner. A closure is named by
 * its function and source line (file:line); a function context by the closures that
 * use it; a suspended async function by its function; any other object by its kind
 * and the object and property that hold it (`(array) <- Cancellation.listeners`).
 * Per unit of n, largest first: { site, count, size }.
 */
export function owners(beforeFile, afterFile, n) {
  const { snap, meta, nodes, edges, w, ew, iSize, eType, eTo, eTypes, count, firstEdge, type, name, isNew, edgeName, child, scriptUrl } =
    heapGraph(beforeFile, afterFile);
  // A closure's source: function name and file:line, through its SharedFunctionInfo and Script.
  const lineOf = new Map();
  if (Array.isArray(snap.locations)) {
    const lf = meta.location_fields;
    const lw = lf.length;
    const [lObj, lLine] = [lf.indexOf('object_index'), lf.indexOf('line')];
    for (let k = 0; k < snap.locations.length; k += lw) lineOf.set(snap.locations[k + lObj] / w, snap.locations[k + lLine] + 1);
  }
  const fileOf = (closure) => {
    const url = scriptUrl(closure);
    return url === undefined ? '?' : url.replace(/^file:\/\//, '').split('/').slice(-3).join('/');
  };
  const fnSite = (closure) => `${name(closure) === '' ? '(anonymous)' : name(closure)} @ ${fileOf(closure)}:${lineOf.get(closure) ?? '?'}`;
  // Retainers of new nodes (strong edges only), and the closures that use each context.
  const retainers = new Map();
  const contextUsers = new Map();
  for (let i = 0; i < count; i++) {
    for (let e = firstEdge[i]; e < firstEdge[i + 1]; e += ew) {
      const to = edges[e + eTo] / w;
      if (!isNew(to) || eTypes[edges[e + eType]] === 'weak') continue;
      if (type(i) === 'closure' && edgeName(e) === 'context') (contextUsers.get(to) ?? contextUsers.set(to, []).get(to)).push(i);
      const list = retainers.get(to);
      if (list === undefined) retainers.set(to, [e, i]);
      else if (list.length < 8) list.push(e, i);
    }
  }
  const ownerName = (i) => {
    const t = type(i);
    if (t === 'closure') return `closure ${fnSite(i)}`;
    if (t === 'object') return name(i) === 'system / Context' ? 'Context' : name(i);
    return `(${t} ${name(i).slice(0, 30)})`;
  };
  // An EventEmitter's once(): a state object and onceWrapper bound to it; both named by the listener.
  const onceListener = (state) => {
    const l = child(state, 'listener');
    return l < 0 || child(state, 'wrapFn') < 0 ? undefined : fnSite(l);
  };
  const siteOf = (i) => {
    const t = type(i);
    if (t === 'closure' && name(i) === 'native_bind') {
      const state = child(i, 'bound_this');
      const once = state < 0 ? undefined : onceListener(state);
      if (once !== undefined) return `once() wrapper of ${once}`;
      const target = child(i, 'bound_function');
      return target < 0 ? 'bound function' : `bound ${fnSite(target)}`;
    }
    if (t === 'closure' && fileOf(i) === '?') return 'closure without source (a builtin: a promise\'s resolve or reject, ...)';
    if (t === 'closure') return `closure ${fnSite(i)}`;
    if (t === 'object' && name(i) === 'Object') {
      const once = onceListener(i);
      if (once !== undefined) return `once() state of ${once}`;
    }
    const nm = name(i);
    if (nm === 'system / Context') {
      const users = contextUsers.get(i);
      return users === undefined ? 'Context (of no closure)' : `Context of ${fnSite(users[0])}`;
    }
    if (t === 'object' && /generator|async/i.test(nm)) {
      const fn = child(i, 'function');
      return fn < 0 ? nm : `${nm} ${fnSite(fn)}`;
    }
    const kind = kindOf(t, nm);
    const r = retainers.get(i);
    if (r === undefined) return `${kind} <- (root)`;
    // The first retainer that is not a system internal names the holder.
    let best = 0;
    for (let k = 0; k < r.length; k += 2) if (!ownerName(r[k + 1]).startsWith('(')) { best = k; break; }
    return `${kind} <- ${ownerName(r[best + 1])}.${edgeName(r[best])}`;
  };
  const out = new Map();
  for (let i = 0; i < count; i++) {
    if (!isNew(i)) continue;
    const site = siteOf(i);
    const e = out.get(site);
    const size = nodes[i * w + iSize];
    if (e === undefined) out.set(site, { site, count: 1, size });
    else {
      e.count++;
      e.size += size;
    }
  }
  return [...out.values()].map((r) => ({ site: r.site, count: r.count / n, size: r.size / n })).sort((a, b) => b.size - a.size);
}

/** Classes whose instances name their owner (a package, or Node itself). */
const CLASS_OWNER = {
  UpstreamCall: 'engine-remote', ChoiceAggregator: 'engine-remote', SseParser: 'engine-remote',
  OpenAIStream: 'gateway/openai/streaming', CoalescedWriter: 'gateway/http/coalesce',
  RequestActor: 'actors', Cell: 'actors', ActorRef: 'actors',
  LinkedCancellation: 'core', Cancellation: 'core', Flow: 'core', Entry: 'core', ChunkWriter: 'core',
  UnwrapController: 'undici', UnwrapHandler: 'undici', Reply: 'fastify',
  ClientHttp2Stream: 'node', Http2Stream: 'node', ServerResponse: 'node', IncomingMessage: 'node', Socket: 'node',
  TLSSocket: 'node', HTTPParser: 'node', TCP: 'node', ClientHttp2Session: 'node', Http2Session: 'node', TLSWrap: 'node', Timeout: 'node',
};

/** The package (or node, undici, fastify) a script URL belongs to; a gateway file by its path. */
function packageOfUrl(u) {
  if (u === '') return undefined;
  if (u.startsWith('node:')) return 'node';
  if (u.includes('/undici/')) return 'undici';
  if (u.includes('/fastify/') || u.includes('/avvio/') || u.includes('find-my-way')) return 'fastify';
  const m = /\/(apps|packages)\/([^/]+)\/dist\/(.*)$/.exec(u);
  if (m) return m[2] === 'gateway' ? `gateway/${m[3].replace(/\.js$/, '')}` : m[2];
  return u.split('/').slice(-2).join('/');
}

/**
 * What a stream adds, by owner: the objects of `afterFile` that `beforeFile` did not
 * have, each charged to the first owner found on its retainer chain (a closure or
 * suspended async function by its script's package; an instance of a known class by
 * CLASS_OWNER; native memory to Node). Approximate (an object held by two owners
 * goes to the first retainer V8 lists), but every byte is counted once.
 * Per unit of n, largest first: { owner, size }.
 */
export function byOwner(beforeFile, afterFile, n) {
  const { nodes, edges, w, ew, iSize, eType, eTo, eTypes, count, firstEdge, type, name, isNew, edgeName, child, scriptUrl } =
    heapGraph(beforeFile, afterFile);
  const urlOf = (closure) => scriptUrl(closure) ?? '';
  const retainers = new Map();
  for (let i = 0; i < count; i++) {
    for (let e = firstEdge[i]; e < firstEdge[i + 1]; e += ew) {
      const to = edges[e + eTo] / w;
      if (!isNew(to) || eTypes[edges[e + eType]] === 'weak') continue;
      const list = retainers.get(to);
      if (list === undefined) retainers.set(to, [i]);
      else if (list.length < 6) list.push(i);
    }
  }
  const memo = new Map();
  const direct = (i) => {
    const t = type(i);
    const nm = name(i);
    if (t === 'closure') return packageOfUrl(urlOf(i));
    if (t === 'object' && /generator|async/i.test(nm)) {
      const fn = child(i, 'function');
      return fn < 0 ? undefined : packageOfUrl(urlOf(fn));
    }
    // Fastify's Request has `raw`; undici's has none.
    if (t === 'object' && nm === 'Request') return child(i, 'raw') >= 0 ? 'fastify' : 'undici';
    if (CLASS_OWNER[nm] !== undefined) return CLASS_OWNER[nm];
    if (t === 'native' || t === 'synthetic') return 'node (native)';
    return undefined;
  };
  const ownerOf = (i, depth) => {
    const known = memo.get(i);
    if (known !== undefined) return known;
    let o = direct(i);
    const r = retainers.get(i);
    if (o === undefined && r !== undefined && depth < 12) {
      // New holders first (what the stream made), then old ones (a pool, a session).
      for (const pass of [true, false]) {
        for (const p of r) {
          if (isNew(p) !== pass) continue;
          o = ownerOf(p, depth + 1);
          if (o !== undefined) break;
        }
        if (o !== undefined) break;
      }
    }
    if (o !== undefined || depth === 0) memo.set(i, o);
    return o;
  };
  const out = new Map();
  for (let i = 0; i < count; i++) {
    if (!isNew(i)) continue;
    const o = ownerOf(i, 0) ?? '(unattributed)';
    out.set(o, (out.get(o) ?? 0) + nodes[i * w + iSize]);
  }
  return [...out].map(([owner, size]) => ({ owner, size: size / n })).sort((a, b) => b.size - a.size);
}
