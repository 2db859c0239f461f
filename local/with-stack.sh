#!/usr/bin/env bash
# Runs a command with the local AWS stack up: starts moto (DynamoDB serialised, S3) on loopback,
# exports the AWS environment that points at it, runs the command, stops moto, keeps the exit code.
#   local/with-stack.sh cargo test --workspace
# MOTO_PORT picks the port (default: a free one).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
venv="${VENV:-$root/.venv}"
[ -x "$venv/bin/python" ] || { echo "no project venv at $venv: run 'make venv'" >&2; exit 2; }

workdir=$(mktemp -d)
moto_pid=""
cleanup() {
  if [ -n "$moto_pid" ] && kill -0 "$moto_pid" 2>/dev/null; then
    kill "$moto_pid" 2>/dev/null || true
    wait "$moto_pid" 2>/dev/null || true
  fi
  rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$venv/bin/python" "$here/moto_server.py" --host 127.0.0.1 --port "${MOTO_PORT:-0}" \
  --port-file "$workdir/port" 2>"$workdir/moto.log" &
moto_pid=$!

for _ in $(seq 1 300); do
  [ -s "$workdir/port" ] && break
  kill -0 "$moto_pid" 2>/dev/null || { cat "$workdir/moto.log" >&2; echo "moto did not start" >&2; exit 1; }
  sleep 0.1
done
[ -s "$workdir/port" ] || { echo "moto did not report its port in 30 s" >&2; exit 1; }
port=$(cat "$workdir/port")

export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export SON1K_TEST_ENDPOINT="$AWS_ENDPOINT_URL"
export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export S3_FORCE_PATH_STYLE=true
unset AWS_PROFILE AWS_SESSION_TOKEN
echo "local stack: DynamoDB + S3 at $AWS_ENDPOINT_URL" >&2

set +e
"$@"
status=$?
set -e
exit $status
