#!/usr/bin/env node
// Builds llama.cpp's own llama-server, llama-bench and llama-batched-bench from the
// same pinned source as the addon (native/vendor/llama.cpp, see build-native.mjs) into
// native/vendor/tools-build/bin. Benchmarks compare our engine against them; nothing
// else uses them. Incremental: a second run only re-links what changed.
//
// Usage: node scripts/build-llama-tools.mjs [--cuda] [--jobs N]
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureLlamaSource, findCuda, llamaDir, vendorDir } from './build-native.mjs';

export const toolsBuildDir = join(vendorDir, 'tools-build');
export const TOOLS = ['llama-server', 'llama-bench', 'llama-batched-bench'];

function run(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: 'inherit' });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status ?? r.signal}`);
}

async function main() {
  const argv = process.argv.slice(2);
  let cuda = process.env.INFERENCE_CUDA === '1';
  let jobs = 2;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--cuda') cuda = true;
    else if (argv[i] === '--jobs' || argv[i] === '-j') jobs = Number(argv[++i]);
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  const t0 = Date.now();
  await ensureLlamaSource();
  const defines = {
    CMAKE_BUILD_TYPE: 'Release',
    BUILD_SHARED_LIBS: 'OFF',
    LLAMA_BUILD_TESTS: 'OFF',
    LLAMA_BUILD_EXAMPLES: 'ON', // llama-batched-bench lives among the examples in some versions
    LLAMA_BUILD_TOOLS: 'ON',
    LLAMA_BUILD_SERVER: 'ON',
    LLAMA_BUILD_UI: 'OFF',
    LLAMA_USE_PREBUILT_UI: 'OFF',
    LLAMA_CURL: 'OFF', // deprecated no-op in this llama.cpp; kept so an older pin still builds offline
    LLAMA_OPENSSL: 'OFF',
    // The addon's build options (CMakeLists.txt), so that a comparison measures the
    // engines and not the builds: native CPU code, ggml's own thread pool (no OpenMP),
    // backends linked in.
    GGML_NATIVE: 'ON',
    GGML_OPENMP: 'OFF',
    GGML_BACKEND_DL: 'OFF',
    GGML_CCACHE: 'OFF',
    GGML_CUDA: cuda ? 'ON' : 'OFF',
  };
  if (cuda) {
    const c = findCuda();
    if (!c.ok) throw new Error(`CUDA build requested but impossible: ${c.reason}`);
    Object.assign(defines, { GGML_CUDA_NO_VMM: 'ON', GGML_CUDA_NCCL: 'OFF', CMAKE_CUDA_COMPILER: c.nvcc });
  }
  const generator = spawnSync('sh', ['-c', 'command -v ninja']).status === 0 ? ['-G', 'Ninja'] : [];
  if (!existsSync(join(toolsBuildDir, 'CMakeCache.txt'))) {
    run('cmake', ['-S', llamaDir, '-B', toolsBuildDir, ...generator, ...Object.entries(defines).map(([k, v]) => `-D${k}=${v}`)]);
  } else {
    run('cmake', [toolsBuildDir, ...Object.entries(defines).map(([k, v]) => `-D${k}=${v}`)]);
  }
  run('cmake', ['--build', toolsBuildDir, '--config', 'Release', '--parallel', String(jobs), '--target', ...TOOLS]);
  process.stderr.write(
    `[build-llama-tools] ${TOOLS.join(', ')} in ${join(toolsBuildDir, 'bin')} (${((Date.now() - t0) / 1000).toFixed(1)} s)\n`,
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    process.stderr.write(`[build-llama-tools] failed: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
