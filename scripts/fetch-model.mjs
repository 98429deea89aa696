// Puts the default model at models/stories260K.gguf: copied from a local model
// cache when one holds it (the folder INFERENCE_MODEL_CACHE names, else a
// `shared/models` folder beside or inside the checkout), else downloaded from its
// public source; the sha256 is always checked.
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const NAME = 'stories260K.gguf';
const SHA256 = '270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d';
const SOURCE = 'https://huggingface.co/ggml-org/models/resolve/main/tinyllamas/stories260K.gguf';
const target = join(root, 'models', NAME);
const sha = (p) => createHash('sha256').update(readFileSync(p)).digest('hex');

if (existsSync(target) && sha(target) === SHA256) {
  console.log(`model ${target} present, sha256 ok`);
  process.exit(0);
}
mkdirSync(dirname(target), { recursive: true });
const caches = [process.env.INFERENCE_MODEL_CACHE, join(root, '..', 'shared', 'models'), join(root, 'shared', 'models')];
const shared = caches.filter((d) => d !== undefined && d !== '').map((d) => join(d, NAME)).find((p) => existsSync(p));
if (shared !== undefined) {
  copyFileSync(shared, target);
} else {
  console.log(`downloading ${SOURCE}`);
  const res = await fetch(SOURCE);
  if (!res.ok) throw new Error(`download failed: ${res.status}`);
  writeFileSync(target, Buffer.from(await res.arrayBuffer()));
}
const got = sha(target);
if (got !== SHA256) throw new Error(`sha256 mismatch for ${target}: ${got}`);
console.log(`model ${target} ready, sha256 ok`);
