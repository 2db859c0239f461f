"""Load figures for record-generation and job submission (never part of the tests): `make load` starts its own local API
over the local stack (local/load.sh) and runs this against it.

    make load                      # all scenarios
    .venv/bin/python local/load.py --scenario same-user --api http://127.0.0.1:8000 [--server-log F]

Scenarios (each run uses fresh user and generation ids, so runs never replay each other):
- distinct:    16 users in parallel, 25 generations each (400 requests), every user on PRO;
- same-user:   16 parallel clients of one STUDIO user, 12 generations each (192 requests);
- same-user-64: 64 parallel clients of one STUDIO user, 3 generations each (192 requests);
- sequential:  one PRO user, 100 generations one after another;
- submit-same-user: 16 parallel clients of one STUDIO user, 12 job submissions each (192 requests, 202
  expected; the local worker runs the jobs meanwhile).
Prints requests/s, p50/p99 latency, the count of each status, p99 over the sequential p50 and, with
--server-log (the API's log, where every recorded generation logs its `spends` and `records`
attempts), the DynamoDB attempts per recorded generation. Targets: every request of one user 201 while
quota remains, p99 at most 10x the sequential p50, at most 2 attempts per commit on average. DynamoDB
Local is a JVM whose first thousand or so requests run while its JIT compiles, so `--warmup` rounds
(default 2) of the distinct scenario run first and are not reported. Tokens come from
`target/debug/local-api token`, so they follow the same LOCAL_JWT_* settings as the server.
"""

import argparse
import os
import re
import json
import statistics
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

ROOT = __file__.rsplit("/local/", 1)[0]


def token(user, admin=False):
    cmd = [os.environ.get("LOCAL_API_BIN", f"{ROOT}/target/debug/local-api"), "token", "--user", user, "--ttl", "3600"]
    if admin:
        cmd.append("--admin")
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


def call(api, method, path, bearer, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{api}{path}", data=data, method=method)
    req.add_header("Authorization", f"Bearer {bearer}")
    req.add_header("Content-Type", "application/json")
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            res.read()
            status = res.status
    except urllib.error.HTTPError as err:
        err.read()
        status = err.code
    return status, (time.perf_counter() - started) * 1000.0


def grant(api, admin, user, bearer, tier):
    """The user's first request creates them; then the admin grants the tier."""
    call(api, "GET", "/api/tiers/limits/me", bearer)
    status, _ = call(api, "PUT", f"/api/admin/users/{user}/tier", admin, {"tier": tier})
    if status != 200:
        raise SystemExit(f"granting {tier} to {user} answered {status}: is `make dev` running?")


RECORD = "/api/tiers/record-generation"
SUBMIT = "/api/generations"


def body(path, gid):
    if path == SUBMIT:
        return {"generation_id": gid, "prompt": "a calm piano by the sea", "quality": "standard",
                "duration_seconds": 5}
    return {"generation_id": gid}


def run(api, work, clients, path=RECORD):
    """work: a list per client of (bearer, generation_id); each client sends its list in order."""

    def client(items):
        return [call(api, "POST", path, bearer, body(path, gid)) for bearer, gid in items]

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        results = [r for rs in pool.map(client, work) for r in rs]
    elapsed = time.perf_counter() - started
    latencies = sorted(ms for _, ms in results)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return {
        "requests": len(results),
        "req_per_s": round(len(results) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies), 1),
        "p99_ms": round(p99, 1),
        "statuses": dict(sorted(Counter(s for s, _ in results).items())),
    }


# name: (users, tier, clients per user, requests per client, route)
SCENARIOS = {
    "distinct": (16, "PRO", 1, 25, RECORD),
    "same-user": (1, "STUDIO", 16, 12, RECORD),
    "same-user-64": (1, "STUDIO", 64, 3, RECORD),
    "sequential": (1, "PRO", 1, 100, RECORD),
    "submit-same-user": (1, "STUDIO", 16, 12, SUBMIT),
}


def scenario(api, name, admin, run_id):
    users, tier, clients, each, path = SCENARIOS[name]
    names = [f"load-{run_id}-{name}-u{i}" for i in range(users)]
    bearers = {u: token(u) for u in names}
    for u in names:
        grant(api, admin, u, bearers[u], tier)
    work = [[(bearers[u], f"{u}-c{c}-g{j}") for j in range(each)]
            for u in names for c in range(clients)]
    return run(api, work, users * clients, path)


def attempts(log_path, offset):
    """Spend and record attempts per recorded generation, from the API's log after `offset`."""
    spends = records = generations = 0
    with open(log_path, errors="replace") as log:
        log.seek(offset)
        for line in log:
            line = re.sub(r"\x1b\[[0-9;]*m", "", line)  # the log's colours
            if "generation recorded" not in line:
                continue
            try:
                fields = json.loads(line).get("fields", {})
            except ValueError:  # the plain-text log format
                fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
            spends += int(str(fields.get("spends", 0)).strip('"'))
            records += int(str(fields.get("records", 0)).strip('"'))
            generations += 1
    if not generations:
        return None
    return {"spend_attempts_per_commit": round(spends / generations, 2),
            "record_attempts_per_commit": round(records / generations, 2)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", default="http://127.0.0.1:8000")
    parser.add_argument("--scenario", action="append",
                        choices=sorted(SCENARIOS))
    parser.add_argument("--warmup", type=int, default=2, help="unreported rounds of `distinct` first")
    parser.add_argument("--server-log", help="the API's log, for the attempts per commit")
    args = parser.parse_args()
    run_id = time.strftime("%H%M%S") + str(time.time_ns() % 1000)
    admin = token(f"load-{run_id}-admin", admin=True)
    for round_ in range(args.warmup):
        scenario(args.api, "distinct", admin, f"{run_id}w{round_}")
    results = {}
    for name in args.scenario or ["sequential", "distinct", "same-user", "same-user-64",
                                  "submit-same-user"]:
        offset = os.path.getsize(args.server_log) if args.server_log else 0
        result = scenario(args.api, name, admin, run_id)
        if args.server_log:
            result["attempts"] = attempts(args.server_log, offset)
        results[name] = result
        if "sequential" in results and name != "sequential":
            result["p99_over_sequential_p50"] = round(result["p99_ms"] / results["sequential"]["p50_ms"], 1)
        print(f"{name:12} {json.dumps(result)}", flush=True)


if __name__ == "__main__":
    main()
