#!/usr/bin/env bash
# make dev: the API on http://127.0.0.1:${API_PORT:-8000} over the local stack. Ctrl-C stops everything.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build --workspace --bin local-api
source local/dev-env.sh
export RUST_LOG="${RUST_LOG:-info}"
exec local/with-stack.sh bash -c 'target/debug/local-api init && exec target/debug/local-api serve'
