#!/usr/bin/env bash
# One-time setup on a fresh machine (Debian 12, Node 20 + npm): pnpm, the
# workspace's packages, headless Chromium, the native engine and the model. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PNPM_VERSION=10.34.8
if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm -v)" != "$PNPM_VERSION" ]; then
  npm install -g "pnpm@$PNPM_VERSION"
fi
# Debian packages the tests use, each skipped when its command is already there:
# headless Chromium for the status-page browser test, etcd for the cluster tests.
apt_install() { # command package
  command -v "$1" >/dev/null 2>&1 && return 0
  local sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y --no-install-recommends "$2" \
    || { $sudo apt-get update && $sudo apt-get install -y --no-install-recommends "$2"; }
}
apt_install chromium chromium
apt_install etcd etcd-server
# python3-numpy and python3-tqdm for llama.cpp's gguf-py (scripts/make-template-model.mjs).
py_install() { # module package
  /usr/bin/python3 -c "import $1" >/dev/null 2>&1 && return 0
  local sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y --no-install-recommends "$2" \
    || { $sudo apt-get update && $sudo apt-get install -y --no-install-recommends "$2"; }
}
if [ "${INFERENCE_REMOTE_ONLY:-0}" != "1" ]; then
  py_install numpy python3-numpy
  py_install tqdm python3-tqdm
fi
pnpm install --frozen-lockfile
if [ -f scripts/build-native.mjs ] && [ "${INFERENCE_REMOTE_ONLY:-0}" != "1" ]; then
  node scripts/build-native.mjs
fi
if [ -f scripts/fetch-model.mjs ] && [ "${INFERENCE_REMOTE_ONLY:-0}" != "1" ]; then
  node scripts/fetch-model.mjs
  node scripts/make-template-model.mjs   # the same model with a real tool-calling chat template
fi
pnpm build
