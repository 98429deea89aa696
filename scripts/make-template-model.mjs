#!/usr/bin/env node
// Writes models/stories260K-qwen-tools.gguf: the shipped stories260K.gguf with a real
// tool-calling chat template (Qwen2.5-7B-Instruct's, from the pinned llama.cpp source)
// in its `tokenizer.chat_template`. Template, tool-call and logprobs tests of local
// deployments use it (docs/chat-templates.md). Nothing is downloaded: llama.cpp's own
// gguf-py (native/vendor/llama.cpp/gguf-py) rewrites the metadata, with Debian's
// python3-numpy and python3-tqdm (scripts/setup.sh installs them).
//
// Idempotent: an existing file whose template matches is kept. The result is checked
// by reading the metadata back. Usage: node scripts/make-template-model.mjs
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const llama = join(root, 'native', 'vendor', 'llama.cpp');
export const SOURCE_MODEL = join(root, 'models', 'stories260K.gguf');
export const TEMPLATE = join(llama, 'models', 'templates', 'Qwen-Qwen2.5-7B-Instruct.jinja');
export const TARGET = join(root, 'models', 'stories260K-qwen-tools.gguf');
const PYTHON = '/usr/bin/python3';

function fail(message) {
  process.stderr.write(`[make-template-model] ${message}\n`);
  process.exit(1);
}

/** The model's tokenizer.chat_template as gguf-py reads it (null when absent). */
function readTemplate(file) {
  const code = [
    'import sys',
    `sys.path.insert(0, ${JSON.stringify(join(llama, 'gguf-py'))})`,
    'from gguf import GGUFReader',
    'f = GGUFReader(sys.argv[1]).get_field("tokenizer.chat_template")',
    'sys.stdout.write("" if f is None else "T" + f.contents())',
  ].join('\n');
  const r = spawnSync(PYTHON, ['-c', code, file], { encoding: 'utf8', maxBuffer: 16 << 20 });
  if (r.status !== 0) fail(`cannot read ${file}: ${r.stderr.trim()}`);
  return r.stdout === '' ? null : r.stdout.slice(1);
}

if (!existsSync(SOURCE_MODEL)) fail(`${SOURCE_MODEL} missing: run node scripts/fetch-model.mjs first`);
if (!existsSync(TEMPLATE)) fail(`${TEMPLATE} missing: run node scripts/build-native.mjs first (it places the llama.cpp source)`);
const template = readFileSync(TEMPLATE, 'utf8');
if (existsSync(TARGET) && readTemplate(TARGET) === template) {
  console.log(`model ${TARGET} present, chat template ok`);
  process.exit(0);
}
const tmp = `${TARGET}.tmp`;
rmSync(tmp, { force: true });
const r = spawnSync(
  PYTHON,
  [join(llama, 'gguf-py', 'gguf', 'scripts', 'gguf_new_metadata.py'), '--chat-template-file', TEMPLATE, '--force', SOURCE_MODEL, tmp],
  { encoding: 'utf8', env: { ...process.env, PYTHONPATH: join(llama, 'gguf-py') } },
);
if (r.status !== 0) {
  rmSync(tmp, { force: true });
  fail(`gguf_new_metadata.py failed (needs python3-numpy and python3-tqdm):\n${r.stderr}`);
}
if (readTemplate(tmp) !== template) {
  rmSync(tmp, { force: true });
  fail('the written model does not carry the template');
}
renameSync(tmp, TARGET);
console.log(`wrote ${TARGET} (tokenizer.chat_template: ${TEMPLATE.slice(root.length + 1)})`);
