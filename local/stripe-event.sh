#!/usr/bin/env bash
# make stripe-event: sends the running `make dev` API a signed customer.subscription.* event, as
# Stripe would after a checkout or a plan change. Arguments go to `local-api stripe-event`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source local/dev-env.sh
cargo build --quiet --workspace --bin local-api
# The user's Stripe customer, as the stub knows it from a checkout (none before the first one).
user=$(printf '%s\n' "$@" | awk 'prev == "--user" {print} {prev = $0}')
customer=$(curl -sS -G "${STRIPE_API_BASE}/v1/customers/search" -H "authorization: Bearer ${STRIPE_SECRET_KEY}" \
  --data-urlencode "query=metadata['user_id']:'${user}'" |
  python3 -c 'import json, sys; d = json.load(sys.stdin)["data"]; print(d[-1]["id"] if d else "")')
body=$(target/debug/local-api stripe-event "$@" ${customer:+--customer "$customer"})
signature=$(printf '%s' "$body" | target/debug/local-api stripe-sign)
curl -sS -X POST "http://127.0.0.1:${API_PORT:-8000}/api/tiers/webhook" \
  -H 'content-type: application/json' -H "stripe-signature: ${signature}" --data-binary "$body"
echo
