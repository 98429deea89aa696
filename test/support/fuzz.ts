// fast-check arbitraries for bad-input fuzzing: hostile JSON values (wrong types,
// huge and NaN-like numbers, deep nesting, unicode, long strings), mutations of a
// valid body at any path, prototype-pollution keys spliced into the raw text, and
// non-JSON bytes under assorted content types.

import fc from 'fast-check';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };

/** Nested arrays/objects `depth` levels deep around a leaf. */
function nest(depth: number, asObject: boolean): JsonValue {
  let v: JsonValue = 1;
  for (let i = 0; i < depth; i++) v = asObject ? { a: v } : [v];
  return v;
}

/** A value meant to break a field: every JSON type, edge numbers, odd strings, deep and long values. */
export function hostileValue(maxLongString: number): fc.Arbitrary<JsonValue> {
  return fc.oneof(
    fc.constantFrom<JsonValue>(null, true, false, 0, -1, -0, 1e308, -1e308, 2 ** 53 + 2, 1e-320, 0.5, 16, 17, 1025, 4097, 'NaN', 'Infinity', '-Infinity', '1e309', '', ' ', '\u0000', 'null', 'true', '__proto__', 'constructor', '[object Object]'),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.string(),
    fc.string({ unit: 'grapheme', maxLength: 40 }),
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<JsonValue>,
    fc.integer({ min: 20, max: 400 }).chain((d) => fc.boolean().map((o) => nest(d, o))),
    fc.integer({ min: 1000, max: maxLongString }).map((n) => 'x'.repeat(n)),
    fc.array(fc.constantFrom<JsonValue>('a', 1, null, {}), { minLength: 0, maxLength: 3000 }),
  );
}

function clone(v: JsonValue): JsonValue {
  return JSON.parse(JSON.stringify(v)) as JsonValue;
}

/** Every path (keys and indices) inside a value, the root excluded. */
function paths(v: JsonValue, prefix: (string | number)[] = []): (string | number)[][] {
  const out: (string | number)[][] = [];
  if (Array.isArray(v)) v.forEach((x, i) => out.push([...prefix, i], ...paths(x, [...prefix, i])));
  else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) out.push([...prefix, k], ...paths(x, [...prefix, k]));
  return out;
}

function setAt(root: JsonValue, path: (string | number)[], value: JsonValue | undefined): JsonValue {
  const out = clone(root);
  let cur: JsonValue = out;
  for (const k of path.slice(0, -1)) cur = (cur as Record<string | number, JsonValue>)[k] as JsonValue;
  const last = path.at(-1);
  if (last === undefined) return out;
  if (Array.isArray(cur) && typeof last === 'number') {
    if (value === undefined) cur.splice(last, 1);
    else cur[last] = value;
  } else if (cur !== null && typeof cur === 'object' && !Array.isArray(cur)) {
    const rec = cur as Record<string, JsonValue>;
    if (value === undefined) Reflect.deleteProperty(rec, String(last));
    else rec[String(last)] = value;
  }
  return out;
}

/** One to three mutations of `valid`: a field replaced by a hostile value, removed, or a key added. */
export function mutatedBody(valid: JsonValue, maxLongString: number, extraKeys: readonly string[] = []): fc.Arbitrary<JsonValue> {
  const ps = paths(valid);
  const mutation = fc.oneof(
    fc.record({ op: fc.constant('set' as const), path: fc.constantFrom(...ps), value: hostileValue(maxLongString) }),
    fc.record({ op: fc.constant('drop' as const), path: fc.constantFrom(...ps), value: fc.constant(null) }),
    fc.record({ op: fc.constant('add' as const), path: fc.constantFrom<(string | number)[]>(...[...extraKeys, 'stream', 'n', 'zz_unknown'].map((k) => [k])), value: hostileValue(maxLongString) }),
  );
  return fc.array(mutation, { minLength: 1, maxLength: 3 }).map((ms) => {
    let body = clone(valid);
    for (const m of ms) {
      try {
        body = setAt(body, m.path, m.op === 'drop' ? undefined : m.value);
      } catch {
        // An earlier mutation removed this path's parent; this one is a no-op.
      }
    }
    return body;
  });
}

/** Splices prototype-pollution keys into a body's JSON text (JSON.stringify would never emit `__proto__` as a key). */
export function withPollutionKeys(valid: JsonValue): fc.Arbitrary<string> {
  const key = fc.constantFrom('__proto__', 'constructor', 'prototype', 'hasOwnProperty', 'toString', 'valueOf');
  const value = fc.constantFrom('{"polluted":true}', '{"prototype":{"polluted":true}}', 'null', '1', '"x"', '[]');
  return fc.tuple(key, value, fc.boolean()).map(([k, v, nested]) => {
    const text = JSON.stringify(valid);
    if (!nested) return `{"${k}":${v},${text.slice(1)}`;
    // Inside the first nested object of the body, where there is one.
    const at = text.indexOf('{', 1);
    return at < 0 ? `{"${k}":${v},${text.slice(1)}` : `${text.slice(0, at + 1)}"${k}":${v},${text.slice(at + 1)}`;
  });
}

export const CONTENT_TYPES = [
  'application/json', 'application/json; charset=utf-8', 'application/json; charset=latin1', 'application/json; charset=utf-16',
  'text/plain', 'text/plain; charset=utf-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x',
  'application/octet-stream', 'application/xml', 'application/jsonx', 'json', '*/*', 'application/*',
] as const;

/** Bytes that are rarely JSON, and text that is almost JSON. */
export function nonJsonBody(): fc.Arbitrary<Uint8Array | string> {
  return fc.oneof(
    fc.uint8Array({ maxLength: 2000 }),
    fc.string({ unit: 'binary', maxLength: 400 }),
    fc.constantFrom('{', '}', '{"model":', '[', 'null', '"str"', '1', '{"a":1}{"b":2}', '{"model":"gpt",}', "{'model':'gpt'}", '\uFEFF{"model":"gpt"}', 'NaN', '{"a":NaN}', '{"a":1e999}'),
    fc.jsonValue().map((v) => JSON.stringify(v).slice(0, -1)),
  );
}
