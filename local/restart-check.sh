#!/usr/bin/env bash
# make test: the `make dev` stack, with its data kept in a folder, runs a generation job through the
# queue and the worker, idles while the worker long-polls SQS, stops, starts again and still has
# everything: the user's usage (DynamoDB Local's files), the job's audio (moto's S3, replayed from its
# recording) and a working jobs queue. The recording must hold no poll or read: each one used to be
# replayed at the next start, waiting out its long poll, until moto missed its 30 s start-up window.
# Prints the time each start took (figures, not assertions; BENCHMARKS.md has the target).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
py="$root/.venv/bin/python"
free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
fail() { echo "restart-check: FAILED: $*" >&2; for f in "$data"/stack-*.log; do echo "--- $f" >&2; tail -n 30 "$f" >&2; done; exit 1; }

cargo build --quiet --workspace --bin local-api
data=$(mktemp -d)
export LOCAL_DATA="$data/data"
export DYNAMODB_PORT=$(free_port) MOTO_PORT=$(free_port) API_PORT=$(free_port)
export STRIPE_STUB_PORT=$(free_port) PROVIDER_STUB_PORT=$(free_port) OLLAMA_STUB_PORT=$(free_port)
export STRIPE_API_BASE="http://127.0.0.1:${STRIPE_STUB_PORT}"
source local/dev-env.sh
export RUST_LOG=warn
api="http://127.0.0.1:${API_PORT}"
stack=""
stop_stack() {
  [ -n "$stack" ] || return 0
  kill -TERM "$stack" 2>/dev/null || true
  wait "$stack" 2>/dev/null || true
  stack=""
}
trap 'stop_stack; rm -rf "$data"' EXIT

# Starts the stack as `make dev` does (in this shell, so that stop_stack knows its pid); sets
# started_ms to the time until /health answered.
started_ms=""
start_stack() { # name
  local began=$(date +%s%N)
  # The previous stack is gone: nothing answers on the API's port before this one starts.
  if curl -s -o /dev/null "$api/health"; then fail "something still answers on $api before the $1 start"; fi
  local/with-stack.sh bash -c 'target/debug/local-api init && exec target/debug/local-api serve' \
    >"$data/stack-$1.log" 2>&1 &
  stack=$!
  # A bound on a broken start, far above any healthy one: the figure printed is what is measured.
  for _ in $(seq 1 1200); do
    if curl -sf -o /dev/null "$api/health"; then
      started_ms=$(( ($(date +%s%N) - began) / 1000000 ))
      return 0
    fi
    kill -0 "$stack" 2>/dev/null || fail "the $1 start exited"
    sleep 0.1
  done
  fail "the $1 start did not answer /health in 120 s"
}

token=$(target/debug/local-api token --user restart_check --ttl 900)
auth=(-H "Authorization: Bearer ${token}")
field() { "$py" -c 'import json,sys; print(json.load(sys.stdin).get(sys.argv[1]))' "$1"; }
submit() { # id: prints the status code
  curl -s -o "$data/submit.json" -w "%{http_code}" "${auth[@]}" -H 'content-type: application/json' \
    -d '{"generation_id":"'"$1"'","prompt":"rain on a tin roof","quality":"standard","duration_seconds":5}' \
    "$api/api/generations"
}
wait_succeeded() { # id
  local status=""
  for _ in $(seq 1 600); do
    status=$(curl -s "${auth[@]}" "$api/api/generations/$1" | field status)
    [ "$status" = succeeded ] && return 0
    [ "$status" = failed ] && fail "job $1 failed"
    sleep 0.2
  done
  fail "job $1 is still $status after 120 s"
}

start_stack first
first=$started_ms
[ "$(submit restart-1)" = 202 ] || fail "POST /api/generations was not 202: $(cat "$data/submit.json")"
wait_succeeded restart-1
# The worker keeps long-polling the empty queue meanwhile.
sleep 5
recorded="$LOCAL_DATA/s3-writes.jsonl"
polls=$(grep -c 'ReceiveMessage' "$recorded" || true)
reads=$("$py" -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(sum(r["method"] in ("GET", "HEAD") for r in rows))' "$recorded")
[ "$polls" = 0 ] || fail "moto recorded $polls SQS polls (they would be replayed at every start)"
[ "$reads" = 0 ] || fail "moto recorded $reads reads"
writes=$(grep -c . "$recorded")
stop_stack
# A recording from before the filter holds long polls: the next start drops them before replaying.
"$py" - "$recorded" "$MOTO_PORT" <<'PY'
import json, sys
poll = {"QueueUrl": f"http://127.0.0.1:{sys.argv[2]}/123456789012/{'son1k-jobs'}", "WaitTimeSeconds": 20}
entry = {"headers": {"X-Amz-Target": "AmazonSQS.ReceiveMessage", "Content-Type": "application/x-amz-json-1.0"},
         "method": "POST", "url": f"http://127.0.0.1:{sys.argv[2]}/", "body": json.dumps(poll), "body_encoded": False}
with open(sys.argv[1], "a") as f:
    f.write(json.dumps(entry) + "\n")
PY

start_stack second
second=$started_ms
# The job and its audio (S3), the user's usage (DynamoDB) and the queue are still there.
job=$(curl -s "${auth[@]}" "$api/api/generations/restart-1")
[ "$(field status <<<"$job")" = succeeded ] || fail "the job is not succeeded after the restart: $job"
audio=$(field audio_url <<<"$job")
bytes=$(curl -s -o "$data/audio" -w '%{http_code} %{size_download}' "$audio")
[ "${bytes%% *}" = 200 ] && [ "${bytes##* }" -gt 0 ] || fail "the job's audio is gone after the restart: $bytes"
used=$(curl -s "${auth[@]}" "$api/api/tiers/limits/me" | field used)
[ "$used" = 1 ] || fail "usage after the restart is $used, not 1"
[ "$(grep -c 'ReceiveMessage' "$recorded" || true)" = 0 ] || fail "the old recording's poll was kept"
[ "$(submit restart-2)" = 202 ] || fail "POST /api/generations after the restart was not 202"
wait_succeeded restart-2
stop_stack
echo "restart-check: passed: first start ${first} ms, restart ${second} ms with ${writes} recorded writes replayed; 0 polls, 0 reads recorded"
