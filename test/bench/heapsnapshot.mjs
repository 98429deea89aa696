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
