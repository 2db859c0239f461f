#!/usr/bin/env bash
# make load: the local API (release build if there is one, as `make bench` measures) on a port of its
# own over the local stack (run inside local/with-stack.sh), then local/load.py against it, reading
# the attempts per commit off the API's log. Figures only: nothing here passes or fails on speed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
free_port() { "$root/.venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cargo build --quiet --workspace --bin local-api
# The release build, unless a source changed since it was built (then the debug build just made).
bin=target/debug/local-api
if [ -x target/release/local-api ] &&
  [ -z "$(find shared functions local/api -name '*.rs' -newer target/release/local-api | head -n 1)" ]; then
  bin=target/release/local-api
fi
export API_PORT=$(free_port) STRIPE_STUB_PORT=$(free_port) PROVIDER_STUB_PORT=$(free_port) OLLAMA_STUB_PORT=$(free_port)
export STRIPE_API_BASE="http://127.0.0.1:${STRIPE_STUB_PORT}"
source local/dev-env.sh
export RUST_LOG="${RUST_LOG:-warn,son1k_app::metering=info}"
log=$(mktemp)
"$bin" init >/dev/null
"$bin" serve >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 300); do
  curl -sf -o /dev/null "http://127.0.0.1:${API_PORT}/health" && break
  sleep 0.1
done
echo "load: $bin on 127.0.0.1:${API_PORT}"
.venv/bin/python local/load.py --api "http://127.0.0.1:${API_PORT}" --server-log "$log" "$@"
