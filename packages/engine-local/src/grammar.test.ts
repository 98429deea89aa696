// Constrained decoding end to end: the real engine host and the real tiny model
// (stories260K, which only ever writes stories), so any JSON in the output is there
// because the grammar forced it. An invalid grammar or schema fails only its request.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InferenceError } from '@inference/core';
import { EngineHost } from './hostClient.js';
import { jsonSchemaOf } from './localEngineCore.js';
import type { GenerateParams } from './protocol.js';
import { MODEL, requireAddon, requireHostBuild } from './testModel.js';

requireAddon();
requireHostBuild();

const PERSON = {
  type: 'object',
  properties: { name: { type: 'string' }, age: { type: 'integer' } },
  required: ['name', 'age'],
};
const SEEDS = [1, 2, 3, 4, 5];
const never = (): AbortSignal => new AbortController().signal;

async function run(host: EngineHost, params: GenerateParams): Promise<{ text: string; finish: string }> {
  let text = '';
  const r = await host.generate({ prompt: 'Once upon a time' }, params, never(), (t) => {
    text += t;
  });
  return { text, finish: r.finishReason };
}

describe('jsonSchemaOf', () => {
  it('maps response formats to the schema the engine enforces', () => {
    expect(jsonSchemaOf(undefined)).toBeUndefined();
    expect(jsonSchemaOf({ type: 'text' })).toBeUndefined();
    expect(jsonSchemaOf({ type: 'json_object' })).toBe('{"type":"object"}');
    expect(JSON.parse(jsonSchemaOf({ type: 'json_schema', json_schema: { name: 'p', schema: PERSON, strict: true } }) ?? '')).toEqual(PERSON);
    expect(jsonSchemaOf({ type: 'json_schema', json_schema: { name: 'any' } })).toBe('{}');
  });
});

describe('grammar-constrained decoding with stories260K', () => {
  let host: EngineHost;
  beforeAll(async () => {
    host = await EngineHost.start({ modelPath: MODEL, contextSize: 4096, maxSequences: 8, gpuLayers: 0, threads: 1, batchTokens: 256 });
  });
  afterAll(async () => {
    await host.close();
  });

  it('unconstrained, the model writes prose, not JSON', async () => {
    const { text } = await run(host, { maxTokens: 40, stop: [], temperature: 1, seed: 1 });
    expect(() => JSON.parse(text) as unknown).toThrow();
  });

  it('a JSON schema with a bounded string: every seed at temperature 1 yields an object with a string name and an integer age', async () => {
    // maxLength bounds the only free-form part, so the whole object fits in max_tokens whatever the numerics.
    const schema = JSON.stringify({ ...PERSON, properties: { ...PERSON.properties, name: { type: 'string', maxLength: 40 } } });
    const results = await Promise.all(SEEDS.map((seed) => run(host, { maxTokens: 400, stop: [], temperature: 1, seed, jsonSchema: schema })));
    for (const { text, finish } of results) {
      expect(finish).toBe('stop');
      const v = JSON.parse(text) as Record<string, unknown>;
      expect(Object.keys(v).sort()).toEqual(['age', 'name']);
      expect(typeof v['name'] === 'string' && v['name'].length <= 40).toBe(true);
      expect(Number.isInteger(v['age'])).toBe(true);
    }
  });

  it('an unbounded string: a finished reply always parses and matches; an unfinished one is cut JSON (length)', async () => {
    const schema = JSON.stringify(PERSON);
    const results = await Promise.all(SEEDS.map((seed) => run(host, { maxTokens: 400, stop: [], temperature: 1, seed, jsonSchema: schema })));
    expect(results.some((r) => r.finish === 'stop')).toBe(true);
    for (const { text, finish } of results) {
      if (finish === 'length') {
        expect(text).toMatch(/^\{\s*"name"\s*:/);
        continue;
      }
      const v = JSON.parse(text) as Record<string, unknown>;
      expect(typeof v['name']).toBe('string');
      expect(Number.isInteger(v['age'])).toBe(true);
    }
  });

  it('json_object: a parseable JSON object', async () => {
    const schema = jsonSchemaOf({ type: 'json_object' });
    // Any object is allowed, so a random model may still be inside a long string when
    // max_tokens ends it: every output is the start of an object, and each one that
    // the model completes parses to an object.
    let completed = 0;
    for (const seed of SEEDS) {
      const { text, finish } = await run(host, { maxTokens: 400, stop: [], temperature: 1, seed, ...(schema === undefined ? {} : { jsonSchema: schema }) });
      expect(text.trimStart().startsWith('{')).toBe(true);
      if (finish !== 'stop') continue;
      completed++;
      const v: unknown = JSON.parse(text);
      expect(typeof v === 'object' && v !== null && !Array.isArray(v)).toBe(true);
    }
    expect(completed).toBeGreaterThan(0);
  });

  it('a GBNF grammar constrains the text; max_tokens still ends a grammar that is not complete with length', async () => {
    const yes = await run(host, { maxTokens: 20, stop: [], temperature: 1, seed: 7, grammar: 'root ::= ("yes" | "no") "!"' });
    expect(yes).toMatchObject({ finish: 'stop' });
    expect(['yes!', 'no!']).toContain(yes.text);
    const long = await run(host, { maxTokens: 5, stop: [], temperature: 1, seed: 7, grammar: 'root ::= "[" [a-z ]{50,60} "]"' });
    expect(long.finish).toBe('length');
    expect(long.text).toMatch(/^\[[a-z ]+$/);
  });

  it('a schema the converter rejects fails that request with invalid_request naming the schema; the host keeps serving', async () => {
    const err = await run(host, { maxTokens: 8, stop: [], jsonSchema: '{"type":"frobnicate"}' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InferenceError);
    expect(err).toMatchObject({ kind: 'invalid_request', param: 'response_format.json_schema.schema' });
    expect((err as InferenceError).message).toMatch(/frobnicate/);
    const ref = await run(host, { maxTokens: 8, stop: [], jsonSchema: '{"$ref":"#/definitions/missing"}' }).catch((e: unknown) => e);
    expect(ref).toMatchObject({ kind: 'invalid_request', param: 'response_format.json_schema.schema' });
    const ok = await run(host, { maxTokens: 4, stop: [] });
    expect(ok.finish).toBe('length');
  });

  it('a grammar that does not parse fails that request with invalid_request; the host keeps serving', async () => {
    const err = await run(host, { maxTokens: 8, stop: [], grammar: 'root ::= ( "unclosed"' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'invalid_request', param: 'response_format' });
    const noRoot = await run(host, { maxTokens: 8, stop: [], grammar: 'start ::= "x"' }).catch((e: unknown) => e);
    expect(noRoot).toMatchObject({ kind: 'invalid_request', param: 'response_format' });
    const ok = await run(host, { maxTokens: 4, stop: [] });
    expect(ok.finish).toBe('length');
  });
});
