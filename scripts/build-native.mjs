#!/usr/bin/env node
// Builds the N-API addon (build/Release/inference_native.node) with cmake-js.
//
// llama.cpp comes from the git bundle that the npm package node-llama-cpp ships
// (package/llama/gitRelease.bundle). The package version, the tarball's integrity and
// the bundle's commit are pinned here; the clone in native/vendor/llama.cpp is a cache
// keyed by a stamp file, so a rebuild neither downloads nor re-clones anything.
//
// Usage: node scripts/build-native.mjs [--cuda] [--clean] [--jobs N]
//   INFERENCE_CUDA=1 is the same as --cuda (needs nvcc and cuBLAS; fails loudly otherwise).
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync, createReadStream } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const NODE_LLAMA_CPP_VERSION = '3.22.1';
export const NODE_LLAMA_CPP_INTEGRITY =
  'sha512-bltIipuWmc123H7tMIgDGKSsSrhmhlQYeVUC48XTjVW7XGJJiJJyCdlTMzQ/LiWoPkGDpcL4FviDpgw7qfTiDw==';
/** The commit the bundle of that version holds (checked after cloning). */
export const LLAMA_CPP_COMMIT = 'de3ff815ea7d559ee917f063901b8986f038abc6';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const vendorDir = join(root, 'native', 'vendor');
export const llamaDir = join(vendorDir, 'llama.cpp');
const stampPath = join(llamaDir, '.inference-source.json');

function log(msg) {
  process.stderr.write(`[build-native] ${msg}\n`);
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', ...opts });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status ?? r.signal}`);
}

async function sha512Base64(file) {
  const hash = createHash('sha512');
  for await (const chunk of createReadStream(file)) hash.update(chunk);
  return `sha512-${hash.digest('base64')}`;
}

function stampMatches() {
  if (!existsSync(stampPath)) return false;
  try {
    const s = JSON.parse(readFileSync(stampPath, 'utf8'));
    return s.nodeLlamaCpp === NODE_LLAMA_CPP_VERSION && s.commit === LLAMA_CPP_COMMIT;
  } catch {
    return false;
  }
}

/** Makes native/vendor/llama.cpp hold the pinned source; a no-op when it already does. */
export async function ensureLlamaSource() {
  if (stampMatches()) return;
  mkdirSync(vendorDir, { recursive: true });
  const tarball = join(vendorDir, `node-llama-cpp-${NODE_LLAMA_CPP_VERSION}.tgz`);
  if (!existsSync(tarball) || (await sha512Base64(tarball)) !== NODE_LLAMA_CPP_INTEGRITY) {
    log(`fetching node-llama-cpp@${NODE_LLAMA_CPP_VERSION} from the npm registry`);
    run('npm', ['pack', `node-llama-cpp@${NODE_LLAMA_CPP_VERSION}`, '--pack-destination', vendorDir, '--silent'], {
      cwd: vendorDir,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  }
  const integrity = await sha512Base64(tarball);
  if (integrity !== NODE_LLAMA_CPP_INTEGRITY) {
    rmSync(tarball, { force: true });
    throw new Error(`integrity mismatch for ${tarball}: got ${integrity}, pinned ${NODE_LLAMA_CPP_INTEGRITY}`);
  }
  const extractDir = join(vendorDir, 'extract');
  rmSync(extractDir, { recursive: true, force: true });
  mkdirSync(extractDir, { recursive: true });
  run('tar', ['-xzf', tarball, '-C', extractDir, 'package/llama/gitRelease.bundle']);
  const bundle = join(extractDir, 'package', 'llama', 'gitRelease.bundle');
  const tmpClone = join(vendorDir, 'llama.cpp.tmp');
  rmSync(tmpClone, { recursive: true, force: true });
  log('cloning llama.cpp from the bundle');
  run('git', ['-c', 'advice.detachedHead=false', 'clone', '--quiet', bundle, tmpClone]);
  const head = execFileSync('git', ['-C', tmpClone, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
  if (head !== LLAMA_CPP_COMMIT) {
    throw new Error(`bundle of node-llama-cpp@${NODE_LLAMA_CPP_VERSION} holds ${head}, pinned ${LLAMA_CPP_COMMIT}`);
  }
  writeFileSync(
    join(tmpClone, '.inference-source.json'),
    JSON.stringify({ nodeLlamaCpp: NODE_LLAMA_CPP_VERSION, integrity, commit: head }, null, 2) + '\n',
  );
  rmSync(llamaDir, { recursive: true, force: true });
  renameSync(tmpClone, llamaDir);
  rmSync(extractDir, { recursive: true, force: true });
  log(`llama.cpp ${head.slice(0, 12)} ready in ${llamaDir}`);
}

/** Where nvcc and cuBLAS are, or why CUDA cannot be built. */
export function findCuda() {
  const candidates = [process.env.CUDA_PATH, process.env.CUDA_HOME, '/usr/local/cuda'].filter(Boolean);
  let nvcc = null;
  for (const c of candidates) {
    if (existsSync(join(c, 'bin', 'nvcc'))) {
      nvcc = join(c, 'bin', 'nvcc');
      break;
    }
  }
  if (nvcc === null) {
    const w = spawnSync('sh', ['-c', 'command -v nvcc'], { encoding: 'utf8' });
    if (w.status === 0 && w.stdout.trim() !== '') nvcc = w.stdout.trim();
  }
  if (nvcc === null) return { ok: false, reason: 'nvcc not found (set CUDA_PATH or put nvcc on PATH)' };
  const home = dirname(dirname(nvcc));
  const libDirs = [join(home, 'lib64'), join(home, 'lib'), join(home, 'targets', 'x86_64-linux', 'lib'), '/usr/lib/x86_64-linux-gnu'];
  const cublas = libDirs.find((d) => existsSync(d) && readdirSync(d).some((f) => /^libcublas(_static)?\.(so|a)/.test(f)));
  if (cublas === undefined) {
    return {
      ok: false,
      reason:
        `cuBLAS not found next to ${nvcc} (looked in ${libDirs.join(', ')}); ggml-cuda links libcublas, ` +
        'so install the CUDA math libraries (e.g. the libcublas-dev package of the same CUDA version)',
    };
  }
  return { ok: true, nvcc, home, cublas };
}

function parseArgs(argv) {
  const args = { cuda: process.env.INFERENCE_CUDA === '1', clean: false, jobs: 2 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--cuda') args.cuda = true;
    else if (a === '--cpu') args.cuda = false;
    else if (a === '--clean') args.clean = true;
    else if (a === '--jobs' || a === '-j') args.jobs = Number(argv[++i]);
    else throw new Error(`unknown argument ${a}`);
  }
  return args;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const t0 = Date.now();
  await ensureLlamaSource();
  const defines = [`INFERENCE_CUDA=${args.cuda ? 'ON' : 'OFF'}`];
  if (args.cuda) {
    const cuda = findCuda();
    if (!cuda.ok) throw new Error(`CUDA build requested but impossible: ${cuda.reason}`);
    defines.push(`CMAKE_CUDA_COMPILER=${cuda.nvcc}`);
    log(`CUDA: nvcc ${cuda.nvcc}, cuBLAS in ${cuda.cublas}`);
  }
  // ccache, when installed, makes rebuilds in other checkouts of the same source cheap;
  // CCACHE_BASEDIR makes its keys independent of where the checkout lives.
  const env = { ...process.env };
  if (spawnSync('sh', ['-c', 'command -v ccache'], { encoding: 'utf8' }).status === 0) {
    defines.push('CMAKE_C_COMPILER_LAUNCHER=ccache', 'CMAKE_CXX_COMPILER_LAUNCHER=ccache');
    env.CCACHE_BASEDIR ??= dirname(root);
  }
  const cmakeJs = join(root, 'node_modules', '.bin', 'cmake-js');
  if (args.clean) run(cmakeJs, ['clean', '--log-level', 'warn'], { cwd: root });
  // cmake-js reconfigures only when the cache is missing; a changed backend needs a fresh cache.
  const cache = join(root, 'build', 'CMakeCache.txt');
  if (existsSync(cache)) {
    const want = `INFERENCE_CUDA:UNINITIALIZED=${args.cuda ? 'ON' : 'OFF'}`;
    const text = readFileSync(cache, 'utf8');
    if (!text.includes(want) && !text.includes(want.replace('UNINITIALIZED', 'BOOL'))) rmSync(cache);
  }
  run(
    cmakeJs,
    ['build', '--log-level', 'warn', '--parallel', String(args.jobs), ...defines.map((d) => `--CD${d}`)],
    { cwd: root, env },
  );
  log(`built build/Release/inference_native.node (${args.cuda ? 'cuda' : 'cpu'}) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    log(`failed: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  });
}
