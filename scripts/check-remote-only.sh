#!/usr/bin/env bash
# The remote-only install path: a clean clone of HEAD set up with
# INFERENCE_REMOTE_ONLY=1 (no C++ compiled, no model fetched) must build, serve its
# embedded default (the bundled mock upstream) and pass the remote end-to-end tests.
# A local deployment applied there fails to load with a clear reason while the
# gateway keeps serving. CI runs this after the full setup.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="$(mktemp -d)"
cleanup() {
  if [ -n "${pid:-}" ]; then kill "$pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT
git clone --quiet --no-hardlinks . "$dir/repo"
cd "$dir/repo"
INFERENCE_REMOTE_ONLY=1 bash scripts/setup.sh >"$dir/setup.log" 2>&1 || { tail -50 "$dir/setup.log"; exit 1; }
if find . -name '*.node' -path '*build*' -not -path './node_modules/*' | grep -q .; then
  echo "remote-only: a native addon was built" >&2
  exit 1
fi
node apps/gateway/dist/cli.js serve --port 0 --quiet >"$dir/serve.log" 2>&1 &
pid=$!
url=""
for _ in $(seq 1 100); do
  url="$(grep -o 'on http://[^ ]*' "$dir/serve.log" | head -1 | cut -c4- || true)"
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { cat "$dir/serve.log"; echo "remote-only: the server did not start" >&2; exit 1; }
grep -q "deployment 'mock'" "$dir/serve.log" || { cat "$dir/serve.log"; exit 1; }
body='{"model":"mock","messages":[{"role":"user","content":"hi"}]}'
curl -fsS -H 'content-type: application/json' -d "$body" "$url/v1/chat/completions" | grep -q '"object":"chat.completion"'
# A local deployment cannot load without the addon: it is Failed with the reason, requests get engine_unavailable.
curl -fsS -X PUT -H 'content-type: application/json' -d '{"runtime":"llama","model":"models/none.gguf","replicas":1}' "$url/admin/deployments/local" >/dev/null
for _ in $(seq 1 100); do
  curl -fsS "$url/admin/deployments/local" | grep -q '"state":"failed"' && break
  sleep 0.1
done
curl -fsS "$url/admin/deployments/local" | grep -q 'native addon is not available'
code="$(curl -sS -o "$dir/local.json" -w '%{http_code}' -H 'content-type: application/json' -d '{"model":"local","prompt":"x"}' "$url/v1/completions")"
[ "$code" = 503 ] && grep -q 'engine_unavailable' "$dir/local.json" || { echo "remote-only: local request got $code $(cat "$dir/local.json")" >&2; exit 1; }
curl -fsS -H 'content-type: application/json' -d "$body" "$url/v1/chat/completions" | grep -q '"object":"chat.completion"'
kill "$pid"
pid=""
(cd test && pnpm exec vitest run e2e/openai-sdk.test.ts e2e/bad-requests.test.ts e2e/admin-lifecycle.test.ts)
echo "remote-only install: ok"
