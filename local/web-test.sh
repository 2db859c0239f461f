#!/usr/bin/env bash
# The browser tests (web/tests, Playwright on Debian's Chromium) against the real local stack: run
# inside local/with-stack.sh. Starts the local API (with its Stripe, provider and Ollama stubs) and
# the built app, each on a free loopback port, the app on its own origin as in AWS; runs the tests;
# stops both. Screenshots land in target/screenshots.
#   local/with-stack.sh local/web-test.sh [playwright args]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
venv="${VENV:-$root/.venv}"
chromium="${CHROMIUM:-$(command -v chromium || true)}"
[ -x "$chromium" ] || { echo "no chromium: run 'make tools' (it installs Debian's chromium)" >&2; exit 2; }
[ -d web/node_modules ] || { echo "web/node_modules is missing: run 'make tools'" >&2; exit 2; }

source local/lib.sh

cargo build --quiet --workspace --bin local-api
(cd web && npm run --silent build)

work=$(mktemp -d)
pids=()
cleanup() {
  stop_pids
  rm -rf "$work"
}
trap cleanup EXIT

export API_PORT=$(free_port) WEB_PORT=$(free_port)
export STRIPE_STUB_PORT=$(free_port) PROVIDER_STUB_PORT=$(free_port) OLLAMA_STUB_PORT=$(free_port)
export FRONTEND_URL="http://localhost:${WEB_PORT}"
source local/dev-env.sh
export RUST_LOG="${RUST_LOG:-warn}"
target/debug/local-api init >"$work/init.log" 2>&1 || { cat "$work/init.log" >&2; exit 1; }
target/debug/local-api serve >"$work/api.log" 2>&1 &
pids+=($!)
wait_http "the local API" "http://127.0.0.1:${API_PORT}/health" "${pids[-1]}" "$work/api.log"

# The app, built once, told where the API and the sign-in are.
cat >web/dist/app/config.json <<JSON
{"apiUrl": "http://127.0.0.1:${API_PORT}", "authUrl": "http://127.0.0.1:${API_PORT}", "clientId": "${LOCAL_JWT_AUDIENCE}"}
JSON
(cd web && exec node_modules/.bin/vite preview --host 127.0.0.1 --port "$WEB_PORT" --strictPort) >"$work/web.log" 2>&1 &
pids+=($!)
wait_http "the app" "http://127.0.0.1:${WEB_PORT}/" "${pids[-1]}" "$work/web.log"

export WEB_URL="$FRONTEND_URL" API_URL="http://127.0.0.1:${API_PORT}" STRIPE_URL="$STRIPE_API_BASE"
export CHROMIUM="$chromium" LOCAL_API_BIN="$root/target/debug/local-api"
status=0
(cd web && npx playwright test "$@") || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- local API log (last 60 lines)" >&2
  tail -60 "$work/api.log" >&2
fi
exit "$status"
