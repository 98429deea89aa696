// Property-based fuzzing of the config loader: mutations of a full valid config
// document through parseConfig, arbitrary documents, and YAML text mutations
// through loadConfigFile. Every outcome is either a valid config or an
// InferenceError (invalid_request) — never another exception type — and a
// rejected object document names the offending key in `param`.

import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InferenceError } from '@inference/core';
import { loadConfigFile, parseConfig } from '@inference/gateway';
import { type JsonValue, mutatedBody } from '../support/fuzz.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);

/** The contract example shipped with the project: every key of docs/config.md. */
const VALID_YAML = readFileSync(fileURLToPath(new URL('../../examples/config.yaml', import.meta.url)), 'utf8');

const ENV = { TEAM_A_KEY: 'a', ADMIN_KEY: 'b', OPENAI_API_KEY: 'c' };

let dir: string;
let validDoc: JsonValue;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fuzz-config-'));
  const path = join(dir, 'valid.yaml');
  await writeFile(path, VALID_YAML);
  // The sample is valid as it stands; its parsed form is the seed of the object mutations.
  const cfg = await loadConfigFile(path, ENV);
  expect(cfg.deployments.map((d) => d.name)).toEqual(['smollm', 'gpt-4o-mini']);
  validDoc = parseYaml(VALID_YAML) as JsonValue;
  expect(parseConfig(validDoc).deployments).toHaveLength(2);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs `f`; a throw must be an invalid_request InferenceError, returned for further checks. */
function outcome(f: () => unknown): InferenceError | undefined {
  try {
    f();
    return undefined;
  } catch (e) {
    expect(e, String(e)).toBeInstanceOf(InferenceError);
    const err = e as InferenceError;
    expect(err.kind).toBe('invalid_request');
    expect(err.message.length).toBeGreaterThan(0);
    return err;
  }
}

describe('parseConfig', () => {
  it('mutations of a valid document: a config, or an error naming the key', () => {
    fc.assert(fc.property(mutatedBody(validDoc, 4096, ['cluster', 'zz_unknown']), (doc) => {
      const err = outcome(() => parseConfig(doc));
      if (err !== undefined) {
        expect(typeof err.param).toBe('string');
        expect(err.param).not.toBe('');
      }
    }), { numRuns: RUNS * 2 });
  });

  it('arbitrary documents never throw anything but InferenceError', () => {
    fc.assert(fc.property(fc.jsonValue({ maxDepth: 5 }), (doc) => {
      outcome(() => parseConfig(doc));
    }), { numRuns: RUNS });
  });

  it('an unknown key is named with its full path, at every level', () => {
    const levels: [(string | number)[], string][] = [[[], ''], [['server'], 'server'], [['auth'], 'auth'], [['auth', 'apiKeys', 0], 'auth.apiKeys[0]'], [['deployments', 0], 'deployments[0]'], [['deployments', 1, 'remote'], 'deployments[1].remote'], [['deployments', 1, 'budget'], 'deployments[1].budget']];
    fc.assert(fc.property(fc.constantFrom(...levels), fc.stringMatching(/^[a-zA-Z0-9_]{1,12}$/), ([at, prefix], suffix) => {
      // A 'zz' prefix is no key of the schema at any level.
      const key = `zz${suffix}`;
      const doc = JSON.parse(JSON.stringify(validDoc)) as Record<string, unknown>;
      let target: Record<string | number, unknown> = doc;
      for (const k of at) target = target[k] as Record<string | number, unknown>;
      target[key] = 1;
      const err = outcome(() => parseConfig(doc));
      expect(err?.param).toBe(prefix === '' ? key : `${prefix}.${key}`);
    }), { numRuns: RUNS });
  });
});

interface YamlEdit { kind: 'cut' | 'insert' | 'dup' | 'indent'; at: number; len: number; text: string }

/** Text edits that keep some of YAML's structure: cut, insert YAML punctuation or a hostile line, duplicate a line, re-indent. */
const yamlEdit: fc.Arbitrary<YamlEdit> = fc.oneof(
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 40 }), text: fc.constant('') }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), len: fc.constant(0), text: fc.oneof(
    fc.stringMatching(/^[:\-[\]{}#&*!|>'"%@`?, \n\ta-z0-9]{1,8}$/),
    fc.constantFrom('\n__proto__: { polluted: true }\n', '\nconstructor: 1\n', ' &a [*a, *a]', '\n  - *nope\n', '\n!!binary x\n', ': : :', '\uFEFF', '\u0000', '\t', '\n---\n', '\n...\n', ' 1e999', ' .nan', ' -.inf', ' 0x1F', ' ~', ' 9007199254740993'),
  ) }),
  fc.record({ kind: fc.constant('dup' as const), at: fc.nat(), len: fc.constant(0), text: fc.constant('') }),
  fc.record({ kind: fc.constant('indent' as const), at: fc.nat(), len: fc.integer({ min: -4, max: 4 }), text: fc.constant('') }),
);

function applyEdit(text: string, e: YamlEdit): string {
  const at = e.at % (text.length + 1);
  switch (e.kind) {
    case 'cut':
      return text.slice(0, at) + text.slice(at + e.len);
    case 'insert':
      return text.slice(0, at) + e.text + text.slice(at);
    case 'dup': {
      const lines = text.split('\n');
      const i = e.at % lines.length;
      lines.splice(i, 0, lines[i] ?? '');
      return lines.join('\n');
    }
    case 'indent': {
      const lines = text.split('\n');
      const i = e.at % lines.length;
      const line = lines[i] ?? '';
      lines[i] = e.len >= 0 ? ' '.repeat(e.len) + line : line.replace(new RegExp(`^ {0,${-e.len}}`), '');
      return lines.join('\n');
    }
    default: {
      const never: never = e.kind;
      return never;
    }
  }
}

describe('loadConfigFile', () => {
  it('YAML text mutations: a config, or an InferenceError', async () => {
    let n = 0;
    await fc.assert(fc.asyncProperty(fc.array(yamlEdit, { minLength: 1, maxLength: 4 }), async (edits) => {
      const text = edits.reduce(applyEdit, VALID_YAML);
      const path = join(dir, `m${n++}.yaml`);
      await writeFile(path, text);
      try {
        const cfg = await loadConfigFile(path, ENV);
        expect(Array.isArray(cfg.deployments)).toBe(true);
      } catch (e) {
        expect(e, String(e)).toBeInstanceOf(InferenceError);
        expect((e as InferenceError).kind).toBe('invalid_request');
      } finally {
        await rm(path, { force: true });
      }
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    }), { numRuns: RUNS });
  });
});
