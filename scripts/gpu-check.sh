#!/usr/bin/env bash
# The GPU checks in one go (docs/benchmarks.md, "On a GPU"), without network:
#  1. build the addon with CUDA and check that it sees the GPU;
#  2. run the engine tests on it: the slot tests with every layer offloaded, then the
#     package's whole suite (which runs on the CUDA build with its own settings);
#  3. build llama-server, llama-bench and llama-batched-bench with CUDA from the same
#     llama.cpp source and options;
#  4. make the dummy 1B model if it is missing (scripts/make-dummy-model.mjs);
#  5. run the local benchmark with it, every layer offloaded on both sides, and with
#     stories260K (the serving path's overhead).
# Prerequisites: a checkout set up by scripts/setup.sh (node_modules, the llama.cpp source
# in native/vendor, models/stories260K.gguf), nvcc and cuBLAS, cmake, python3-numpy.
# Logs and raw rounds go to $OUT (default gpu-check-out/); docs/bench-raw/local-*-gpu.json
# are written too. Each step stops the script when it fails.
#
#   scripts/gpu-check.sh [--quick]     (--quick: 1 round of 5 s per level, c=1,16)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-check-out}
mkdir -p "$out"
jobs=$(nproc)
rounds=3
seconds=10
levels=1,4,16
if [ "${1:-}" = "--quick" ]; then rounds=1; seconds=5; levels=1,16; fi
step() { echo "== $1 ($(date -u +%T), load $(cut -d' ' -f1-3 /proc/loadavg))"; }

step "device"
nvidia-smi | tee "$out/nvidia-smi.txt"

step "addon with CUDA"
node scripts/build-native.mjs --cuda --jobs "$jobs" 2>&1 | tee "$out/build-native.log"
node -e "
  import('./packages/engine-local/dist/native.js').then(({ tryLoadAddon }) => {
    const { addon, reason } = tryLoadAddon();
    if (addon === null) throw new Error(reason);
    const inv = addon.inventory();
    console.log(JSON.stringify(inv), addon.systemInfo);
    if (inv.backend !== 'cuda' || inv.gpus.length === 0) throw new Error('the addon does not see a CUDA GPU');
  });" | tee "$out/inventory.txt"

step "engine tests (slot choice and prefix sharing, every layer on the GPU)"
(cd packages/engine-local && INFERENCE_TEST_GPU_LAYERS=99 npx vitest run src/slots.test.ts) 2>&1 | tee "$out/test-slots-gpu.log"
step "engine tests (the package's suite on the CUDA build)"
(cd packages/engine-local && npx vitest run) 2>&1 | tee "$out/test-engine-local.log"

step "llama.cpp tools with CUDA"
node scripts/build-llama-tools.mjs --cuda --jobs "$jobs" 2>&1 | tee "$out/build-llama-tools.log"

step "dummy model"
node scripts/make-dummy-model.mjs 2>&1 | tee "$out/make-dummy-model.log"

step "local benchmark: dummy 1B, every layer offloaded"
node test/bench/local.mjs --model models/dummy-llama-1b-q8_0.gguf --gpu-layers 99 --threads 4 --context 8192 \
  --concurrency "$levels" --rounds "$rounds" --seconds "$seconds" --max-tokens 128 2>&1 | tee "$out/local-dummy-gpu.txt"
step "local benchmark: stories260K, every layer offloaded"
node test/bench/local.mjs --gpu-layers 99 --threads 4 --concurrency "$levels" --rounds "$rounds" --seconds "$seconds" \
  2>&1 | tee "$out/local-stories260K-gpu.txt"
cp docs/bench-raw/local-*-gpu.json "$out/"
step "done"
