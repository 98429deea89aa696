#!/usr/bin/env node
// Writes models/dummy-llama-1b-<type>.gguf: a model with Llama-3.2-1B's shapes (hidden
// 2048, 16 layers, 32 heads, 8 KV heads, FFN 8192, vocabulary 128256, tied output)
// and random weights, quantized (Q8_0 by default, or Q4_0), as vLLM's dummy load format
// does. Its throughput is a 1B model's; its text is noise. The local benchmarks use it
// for a compute-bound comparison beside stories260K (docs/benchmarks.md).
//
// Tokenizer: stories260K's SentencePiece vocabulary (512 pieces; no real 128k tokenizer
// ships in models/), padded to 128256 entries with pieces that no text tokenizes into,
// so the embedding table, the output layer and sampling are Llama-3.2-1B's size and
// prompts tokenize as on stories260K. No chat template.
//
// Nothing is downloaded: llama.cpp's gguf-py (native/vendor/llama.cpp/gguf-py) writes
// it, with Debian's python3-numpy and python3-tqdm. Deterministic (fixed seed) and
// idempotent: a present file whose description matches is kept. The result is checked
// by loading it in the addon and generating a few tokens. About 1.3 GB (Q8_0) and a few
// minutes on 2 cores: not part of CI's setup, made on demand.
//
//   node scripts/make-dummy-model.mjs [--type q8_0|q4_0] [--seed 1234]
import { spawnSync } from 'node:child_process';
import { existsSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const ggufPy = join(root, 'native', 'vendor', 'llama.cpp', 'gguf-py');
const PYTHON = '/usr/bin/python3';
const TOKENIZER = join(root, 'models', 'stories260K.gguf');
const { values } = parseArgs({ options: { type: { type: 'string', default: 'q8_0' }, seed: { type: 'string', default: '1234' } } });
const type = values.type;
const seed = Number(values.seed);
if (type !== 'q8_0' && type !== 'q4_0') fail(`--type ${type}: q8_0 or q4_0`);
if (!Number.isInteger(seed) || seed < 0) fail(`--seed ${values.seed}: a non-negative integer`);
export const TARGET = join(root, 'models', `dummy-llama-1b-${type}.gguf`);
// Written into general.description: a file made with other settings is made again.
const DESCRIPTION = `random weights (seed ${seed}), Llama-3.2-1B shapes, ${type.toUpperCase()}, stories260K tokenizer padded to 128256; v1`;

function fail(message) {
  process.stderr.write(`[make-dummy-model] ${message}\n`);
  process.exit(1);
}

function description(file) {
  const code = [
    'import sys',
    `sys.path.insert(0, ${JSON.stringify(ggufPy)})`,
    'from gguf import GGUFReader',
    'f = GGUFReader(sys.argv[1]).get_field("general.description")',
    'sys.stdout.write("" if f is None else f.contents())',
  ].join('\n');
  const r = spawnSync(PYTHON, ['-c', code, file], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout : null;
}

/** Loads the model in the addon and greedily generates a few tokens. */
async function check(file) {
  const { tryLoadAddon } = await import(join(root, 'packages', 'engine-local', 'dist', 'native.js'));
  const load = tryLoadAddon();
  if (load.addon === null) fail(`cannot check the model: ${load.reason}`);
  let finish;
  const finished = new Promise((r) => { finish = r; });
  const engine = new load.addon.Engine(
    { modelPath: file, contextSize: 256, maxSequences: 1, gpuLayers: 0, threads: 2, batchTokens: 64, embeddings: false },
    (ev) => { for (const it of ev.items) if (it.done !== undefined || it.error !== undefined) finish(it); },
  );
  try {
    await engine.ready();
    const info = engine.modelInfo();
    if (info.nVocab !== 128256 || info.nEmbd !== 2048) fail(`${file}: vocabulary ${info.nVocab}, embedding ${info.nEmbd}`);
    engine.submit({ id: 1, prompt: engine.tokenize('Once upon a time', true, false), maxTokens: 4, temperature: 0, stop: [] });
    const item = await finished;
    if (item.error !== undefined || item.completionTokens !== 4) fail(`${file}: generation failed: ${JSON.stringify(item)}`);
    return info;
  } finally {
    engine.close();
  }
}

if (!existsSync(TOKENIZER)) fail(`${TOKENIZER} missing: run node scripts/fetch-model.mjs first`);
if (!existsSync(ggufPy)) fail(`${ggufPy} missing: run node scripts/build-native.mjs first (it places the llama.cpp source)`);
if (existsSync(TARGET) && description(TARGET) === DESCRIPTION) {
  await check(TARGET);
  console.log(`model ${TARGET} present (${DESCRIPTION}), loads and generates`);
  process.exit(0);
}
const tmp = `${TARGET}.tmp`;
rmSync(tmp, { force: true });
const t0 = Date.now();
const r = spawnSync(PYTHON, [join(root, 'scripts', 'make-dummy-model.py'), ggufPy, TOKENIZER, tmp, type, String(seed), DESCRIPTION], { stdio: 'inherit' });
if (r.status !== 0) {
  rmSync(tmp, { force: true });
  fail('make-dummy-model.py failed (needs python3-numpy and python3-tqdm)');
}
if (description(tmp) !== DESCRIPTION) {
  rmSync(tmp, { force: true });
  fail('the written model does not read back');
}
const info = await check(tmp);
renameSync(tmp, TARGET);
console.log(`wrote ${TARGET} in ${((Date.now() - t0) / 1000).toFixed(0)} s (vocabulary ${info.nVocab}, embedding ${info.nEmbd}; loads and generates)`);
