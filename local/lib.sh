# Sourced by the local scripts: a free loopback port, waiting for a server to answer, stopping the
# servers a script started. Needs $venv (the project's .venv) set.

free_port() {
  "$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until an HTTP server answers at the URL (any status), or its process dies.
wait_http() { # name url pid log
  for _ in $(seq 1 600); do
    if "$venv/bin/python" - "$2" 2>/dev/null <<'PY'; then return 0; fi
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1], timeout=1)
except urllib.error.HTTPError:
    pass
PY
    kill -0 "$3" 2>/dev/null || { cat "$4" >&2; echo "$1 did not start" >&2; exit 1; }
    sleep 0.1
  done
  cat "$4" >&2
  echo "$1 did not answer in 60 s" >&2
  exit 1
}

# Stops every process in the array `pids` and waits for each.
stop_pids() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
