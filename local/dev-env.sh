# Sourced by local/dev.sh and local/stripe-event.sh: the settings `make dev` runs with, each
# overridable from the environment. None of these values is a secret: they only work locally.
# An empty LOCAL_JWT_SECRET is passed on (and refused by the server), hence `-` rather than `:-`.
export LOCAL_JWT_SECRET="${LOCAL_JWT_SECRET-local-dev-secret}"
export LOCAL_JWT_ISSUER="${LOCAL_JWT_ISSUER-son1k-local}"
export LOCAL_JWT_AUDIENCE="${LOCAL_JWT_AUDIENCE-son1k-local}"
# Stripe: the local stub (started by local-api serve) stands in for api.stripe.com.
export STRIPE_STUB_PORT="${STRIPE_STUB_PORT:-12111}"
export STRIPE_API_BASE="${STRIPE_API_BASE:-http://127.0.0.1:${STRIPE_STUB_PORT}}"
# The keys live in Secrets Manager (moto's, locally), as in AWS: `local-api init` writes these local
# values under STRIPE_SECRET_NAME and APP_SECRET_NAME, where the functions read them.
export STRIPE_SECRET_NAME="${STRIPE_SECRET_NAME:-son1k/stripe}"
export APP_SECRET_NAME="${APP_SECRET_NAME:-son1k/app}"
export STRIPE_SECRET_KEY="${STRIPE_SECRET_KEY:-sk_test_local_stub_only}"
export STRIPE_WEBHOOK_SECRET="${STRIPE_WEBHOOK_SECRET:-whsec_local_dev}"
export STRIPE_PRICE_CREATOR="${STRIPE_PRICE_CREATOR:-price_creator_monthly}"
export STRIPE_PRICE_PRO="${STRIPE_PRICE_PRO:-price_pro_monthly}"
export STRIPE_PRICE_STUDIO="${STRIPE_PRICE_STUDIO:-price_studio_monthly}"
export STRIPE_PRICE_CREATOR_ANNUAL="${STRIPE_PRICE_CREATOR_ANNUAL:-price_creator_yearly}"
export STRIPE_PRICE_PRO_ANNUAL="${STRIPE_PRICE_PRO_ANNUAL:-price_pro_yearly}"
export STRIPE_PRICE_STUDIO_ANNUAL="${STRIPE_PRICE_STUDIO_ANNUAL:-price_studio_yearly}"
# A first checkout of PRO offers a 14-day trial locally; packs of 10 and 50 generations are on sale.
export STRIPE_TRIAL_DAYS_PRO="${STRIPE_TRIAL_DAYS_PRO:-14}"
export CREDIT_PACKS="${CREDIT_PACKS:-pack_10:10:499:usd:price_pack_10,pack_50:50:1999:usd:price_pack_50}"
# Signs pool listing cursors (written into the app secret by `local-api init`).
export POOL_CURSOR_SECRET="${POOL_CURSOR_SECRET:-local-cursor-secret-not-for-production}"
export FRONTEND_URL="${FRONTEND_URL:-http://localhost:3000}"
# Generation jobs: the queue on moto's SQS (created by local-api serve), and two providers played
# by the local provider stub (local-api serve starts it), each within its own limits.
export JOBS_QUEUE_NAME="${JOBS_QUEUE_NAME:-son1k-jobs}"
export PROVIDER_STUB_PORT="${PROVIDER_STUB_PORT:-12112}"
stub="http://127.0.0.1:${PROVIDER_STUB_PORT}"
providers='[{"name":"alpha","base_url":"'"$stub"'/alpha","requests_per_second":2,"burst":2,"max_concurrency":4,"weight":2,"timeout_seconds":60,"poll_ms":200},'
providers+='{"name":"beta","base_url":"'"$stub"'/beta","requests_per_second":1,"max_concurrency":2,"timeout_seconds":60,"poll_ms":200}]'
export GENERATION_PROVIDERS="${GENERATION_PROVIDERS:-$providers}"
unset stub providers
# Language models: the local Ollama stub (local-api serve starts it) unless OLLAMA_URL names a real
# Ollama (then OLLAMA_STUB_PORT is left unset and no stub starts).
if [ -z "${OLLAMA_URL:-}" ]; then
  export OLLAMA_STUB_PORT="${OLLAMA_STUB_PORT:-12113}"
  export OLLAMA_URL="http://127.0.0.1:${OLLAMA_STUB_PORT}"
fi
export OLLAMA_MODEL="${OLLAMA_MODEL:-llama3.2:1b}"
