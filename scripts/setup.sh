#!/usr/bin/env bash
# One-time setup on a fresh machine (Debian 12, Node 20 + npm): pnpm, the
# workspace's packages, headless Chromium, the native engine and the model. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PNPM_VERSION=10.34.8
if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm -v)" != "$PNPM_VERSION" ]; then
  npm install -g "pnpm@$PNPM_VERSION"
fi
# Headless Chromium (Debian's package) for the status-page browser test; skipped
# when it is already there.
if ! command -v chromium >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y --no-install-recommends chromium \
    || { $SUDO apt-get update && $SUDO apt-get install -y --no-install-recommends chromium; }
fi
# etcd (Debian's etcd-server) for the cluster tests, which start real etcd
# servers of their own; skipped when it is already there.
if ! command -v etcd >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y --no-install-recommends etcd-server \
    || { $SUDO apt-get update && $SUDO apt-get install -y --no-install-recommends etcd-server; }
fi
pnpm install --frozen-lockfile
if [ -f scripts/build-native.mjs ] && [ "${INFERENCE_REMOTE_ONLY:-0}" != "1" ]; then
  node scripts/build-native.mjs
fi
if [ -f scripts/fetch-model.mjs ] && [ "${INFERENCE_REMOTE_ONLY:-0}" != "1" ]; then
  node scripts/fetch-model.mjs
fi
pnpm build
