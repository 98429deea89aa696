#!/usr/bin/env node
// Builds and runs the stress test of the native process hooks
// (native/test/stress_process_hooks.cpp; docs/flow-control.md, "Native races"):
// engines opened and closed while aborts are reported to every live engine; then,
// except under tsan, the stress test of the host-memory prompt cache
// (native/test/stress_prompt_cache.cpp; docs/architecture.md, "Host-memory prompt cache").
// It reuses the addon's build directory (build/, made by scripts/build-native.mjs);
// the sanitizer instruments only our sources, so nothing of llama.cpp is rebuilt.
//
// Usage: node scripts/native-stress.mjs [--sanitizer asan|tsan|none] [--rounds N]
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : fallback;
};
const sanitizer = opt('--sanitizer', 'asan');
const rounds = opt('--rounds', '60');
const targets = { asan: 'inference_native_stress_asan', tsan: 'inference_native_stress_tsan', none: 'inference_native_stress' };
const target = targets[sanitizer];
if (target === undefined) {
  process.stderr.write(`--sanitizer must be one of ${Object.keys(targets).join(', ')}\n`);
  process.exit(2);
}
const buildDir = join(root, 'build');
if (!existsSync(join(buildDir, 'CMakeCache.txt'))) {
  process.stderr.write('build/ is not configured: run `node scripts/build-native.mjs` first\n');
  process.exit(2);
}
const model = join(root, 'models', 'stories260K.gguf');
const run = (cmd, argv, env) => {
  const r = spawnSync(cmd, argv, { stdio: 'inherit', cwd: root, env: { ...process.env, ...env } });
  if (r.error) throw r.error;
  return r.status ?? 1;
};
const t0 = Date.now();
const cacheTargets = { asan: 'inference_native_cache_stress_asan', none: 'inference_native_cache_stress' };
const cacheTarget = cacheTargets[sanitizer];
const built = cacheTarget === undefined ? [target] : [target, cacheTarget];
if (run('cmake', ['--build', buildDir, '--target', ...built]) !== 0) process.exit(1);
process.stderr.write(`[native-stress] built ${built.join(', ')} in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
// Any sanitizer report fails the run; leaks of llama.cpp's process-wide state at exit are not ours to judge here.
const env = { ASAN_OPTIONS: 'detect_leaks=0:halt_on_error=1', TSAN_OPTIONS: 'halt_on_error=1' };
for (const t of built) {
  const status = run(join(buildDir, t), [model, rounds], env);
  if (status !== 0) process.exit(status);
}
