#!/usr/bin/env bash
# make dev: the app on http://localhost:${WEB_PORT:-3000} and the API on
# http://127.0.0.1:${API_PORT:-8000} over the local stack. Ctrl-C stops everything.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build --workspace --bin local-api
export API_PORT="${API_PORT:-8000}" WEB_PORT="${WEB_PORT:-3000}"
export FRONTEND_URL="${FRONTEND_URL:-http://localhost:${WEB_PORT}}"
source local/dev-env.sh
export RUST_LOG="${RUST_LOG:-info}"
# The app, built and served on its own origin, so every API call is cross-origin as in AWS.
(cd web && npm run --silent build)
cat >web/dist/app/config.json <<JSON
{"apiUrl": "http://127.0.0.1:${API_PORT}", "authUrl": "http://127.0.0.1:${API_PORT}", "clientId": "${LOCAL_JWT_AUDIENCE}"}
JSON
exec local/with-stack.sh bash -c '
  target/debug/local-api init
  (cd web && exec node_modules/.bin/vite preview --host 127.0.0.1 --port "$WEB_PORT" --strictPort) &
  web=$!
  trap "kill $web 2>/dev/null" EXIT
  echo "the app: $FRONTEND_URL (sign in as test_user_1, or any user id)"
  target/debug/local-api serve'
