#!/usr/bin/env bash
# make dev: the API on http://127.0.0.1:${API_PORT:-8000} over the local stack. Ctrl-C stops everything.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build --workspace --bin local-api
# An empty LOCAL_JWT_SECRET is passed on (and refused by the server), hence `-` rather than `:-`.
export LOCAL_JWT_SECRET="${LOCAL_JWT_SECRET-local-dev-secret}"
export LOCAL_JWT_ISSUER="${LOCAL_JWT_ISSUER-son1k-local}"
export LOCAL_JWT_AUDIENCE="${LOCAL_JWT_AUDIENCE-son1k-local}"
export STRIPE_WEBHOOK_SECRET="${STRIPE_WEBHOOK_SECRET:-whsec_local_dev}"
export STRIPE_PRICE_CREATOR="${STRIPE_PRICE_CREATOR:-price_creator_monthly}"
export STRIPE_PRICE_PRO="${STRIPE_PRICE_PRO:-price_pro_monthly}"
export STRIPE_PRICE_STUDIO="${STRIPE_PRICE_STUDIO:-price_studio_monthly}"
export FRONTEND_URL="${FRONTEND_URL:-http://localhost:3000}"
export RUST_LOG="${RUST_LOG:-info}"
exec local/with-stack.sh bash -c 'target/debug/local-api init && exec target/debug/local-api serve'
