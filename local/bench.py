"""make bench: measures every function and writes BENCHMARKS.md. Run inside the local stack
(`local/with-stack.sh`, which `make bench` does) with the settings of `local/dev-env.sh`.

Builds the release binaries (and, with BENCH_CLEAN=1, the whole workspace from clean in a scratch
target directory to time it), then measures: stripped binary and zip size; cold start (exec to the
first Runtime API poll, BENCH_RUNS runs, default 20) beside a hello-world lambda_http binary built in
the same run; peak RSS after one invocation; warm latency of every route through the local API over
DynamoDB Local (BENCH_SAMPLES, default 200); DynamoDB calls and consumed capacity of one common-path
request; record-generation's burst figures (local/load.py); and an estimated AWS cost per million
requests of each route; the ways of loading TLS trust roots (local/trust-roots, four builds of one
function); with BENCH_PROFILES=1, release profile variants of record-generation built from clean in
scratch directories (else the figures of the last such run). Never part of the tests."""

import io
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = os.path.join(ROOT, "target", "release")

# Prices (USD, us-east-1, on demand), the assumptions of the cost column.
LAMBDA_GB_SECOND_ARM = 0.0000133334
LAMBDA_PER_REQUEST = 0.20 / 1e6
HTTP_API_PER_REQUEST = 1.00 / 1e6
DDB_PER_WRITE_UNIT = 0.625 / 1e6
DDB_PER_READ_UNIT = 0.125 / 1e6
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}


def sh(cmd, **kw):
    return subprocess.run(cmd, cwd=ROOT, check=True, **kw)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def timed_build(target_dir=None, release=True):
    env = dict(os.environ)
    if target_dir:
        env["CARGO_TARGET_DIR"] = target_dir
    cmd = ["cargo", "build", "--workspace", "--bins"] + (["--release"] if release else [])
    started = time.perf_counter()
    sh(cmd, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


# The ways of getting the HTTPS client's trust roots that `local/trust-roots` can be built with.
TRUST_VARIANTS = ["compiled", "bundle", "native", "lazy"]
# Release profile variants measured on record-generation with BENCH_PROFILES=1 (opt-level, lto);
# the first is the profile of Cargo.toml, measured in the main build.
PROFILES = [("z", "fat"), ("s", "fat"), ("3", "thin"), ("s", "thin")]


def cold(local_api, binary, name, runs, env=()):
    """Cold starts of one binary (local-api bench-cold), as a dict like the report's."""
    cmd = [local_api, "bench-cold", "--bin", binary, "--name", name, "--runs", str(runs)]
    for k, v in env:
        cmd += ["--env", f"{k}={v}"]
    return json.loads(subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout)


def trust_roots(local_api, runs):
    """Cold start and first answer of `trust-roots` built each way (see local/trust-roots)."""
    binary = os.path.join(RELEASE, "trust-roots")
    return {v: cold(local_api, binary, "trust-roots", runs, [("TRUST_ROOTS", v)]) for v in TRUST_VARIANTS}


def profiles(local_api, runs):
    """record-generation (and the hello-world beside it) built with each release profile variant in a
    scratch target directory: stripped size, cold start and build time."""
    found = {}
    for opt, lto in PROFILES[1:]:
        scratch = tempfile.mkdtemp(prefix="son1k-bench-profile-")
        try:
            env = dict(os.environ, CARGO_TARGET_DIR=scratch, CARGO_PROFILE_RELEASE_OPT_LEVEL=opt,
                       CARGO_PROFILE_RELEASE_LTO=lto)
            started = time.perf_counter()
            sh(["cargo", "build", "--release", "-p", "record-generation", "-p", "hello-world"], env=env,
               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            took = time.perf_counter() - started
            bins = os.path.join(scratch, "release")
            found[f"{opt}/{lto}"] = {
                "size": os.path.getsize(os.path.join(bins, "record-generation")),
                "build_s": took,
                "record-generation": cold(local_api, os.path.join(bins, "record-generation"),
                                          "record-generation", runs),
                "hello-world": cold(local_api, os.path.join(bins, "hello-world"), "hello-world", runs),
            }
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return found


def zip_size(path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o755 << 16
        with open(path, "rb") as f:
            z.writestr(info, f.read(), compress_type=zipfile.ZIP_DEFLATED)
    return len(buf.getvalue())


def memory_sizes():
    """MemorySize per function from template.yaml (the Globals value unless a function sets its own)."""
    text = open(os.path.join(ROOT, "template.yaml")).read()
    default = int(re.search(r"Globals:.*?MemorySize: (\d+)", text, re.S).group(1))
    sizes = {}
    for block in re.split(r"\n  (?=[A-Z][A-Za-z]+:\n    Type: AWS::Serverless::Function)", text):
        binary = re.search(r"Binary: ([a-z-]+)", block)
        if binary and "AWS::Serverless::Function" in block:
            own = re.search(r"\n      MemorySize: (\d+)", block)
            sizes[binary.group(1)] = int(own.group(1)) if own else default
    return sizes


def bursts(local_api):
    """record-generation's burst figures against a release local API of its own."""
    port, stub = free_port(), free_port()
    env = dict(os.environ, API_PORT=str(port), STRIPE_STUB_PORT=str(stub),
               STRIPE_API_BASE=f"http://127.0.0.1:{stub}", RUST_LOG="warn")
    server = subprocess.Popen([local_api, "serve"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
                break
            except OSError:
                time.sleep(0.05)
        out = subprocess.run(
            [sys.executable, "local/load.py", "--api", f"http://127.0.0.1:{port}",
             "--scenario", "sequential", "--scenario", "distinct", "--scenario", "same-user",
             "--scenario", "same-user-64"],
            cwd=ROOT, env=dict(env, LOCAL_API_BIN=local_api), check=True, capture_output=True, text=True,
        ).stdout
    finally:
        server.terminate()
        server.wait()
    figures = {}
    for line in out.splitlines():
        name, _, data = line.partition(" ")
        figures[name] = json.loads(data.strip())
    return figures


# Why a binary misses a target, and what would close it (printed under "Targets missed").
WHY = {
    "generation-worker": "the only function with a general HTTP client (reqwest with its rustls and the "
                         "platform verifier, for the providers' APIs, which may be any public host) and the "
                         "SSM client (providers' keys) on top of DynamoDB and S3's multipart upload, whose "
                         "checksums link crc-fast's tables for every CRC variant (about 0.7 MiB). (Its "
                         "providers' HTTP client and keys are made on the first batch, not at cold start: "
                         "nobody waits on a queue consumer's first invocation.)",
}


TRUST_LABELS = {
    "compiled": "compiled in (Amazon Trust Services roots, 6.4 KB) — what the functions use",
    "bundle": "one bundle file (the system CA bundle, read and parsed whole)",
    "native": "rustls-native-certs (the SDK default: the bundle and every file of the CA directory)",
    "lazy": "compiled in, client built on the first event",
}
TRUST_CHOICE = ("The functions keep the compiled-in roots, with their clients built on first use (`AppState::dynamo`, "
                "`AppState::s3`): the fastest start and first answer, "
                "and the only choice that trusts nothing but the roots AWS endpoints "
                "chain to and does not depend on the files of the runtime image. Reading one bundle costs "
                "the parse of every root in it; rustls-native-certs also walks the CA directory.")
PROFILE_CHOICE = ("Cargo.toml uses `opt-level = \"z\"` with fat LTO: the functions wait on DynamoDB, S3 "
                  "and the providers, so size and start matter more than instruction speed (TLS's "
                  "cryptography is aws-lc's C, which the Rust opt-level does not touch). Fat LTO costs build "
                  "time only in release builds (`make package`, `make bench`); `make test` builds the dev "
                  "profile.")


def main():
    runs = int(os.environ.get("BENCH_RUNS", "20"))
    samples = int(os.environ.get("BENCH_SAMPLES", "200"))
    clean = {}
    saved = os.path.join(ROOT, "target", "bench-clean-build.json")
    if os.environ.get("BENCH_CLEAN", "1") == "1":
        scratch = tempfile.mkdtemp(prefix="son1k-bench-target-")
        try:
            clean["dev"] = timed_build(scratch, release=False)
            # An edit of a rule: only the domain crate and what depends on it build again.
            os.utime(os.path.join(ROOT, "shared", "domain", "src", "tiers.rs"))
            clean["dev_domain_edit"] = timed_build(scratch, release=False)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        os.makedirs(os.path.dirname(saved), exist_ok=True)
        json.dump(clean, open(saved, "w"))
    elif os.path.exists(saved):
        clean = json.load(open(saved))
    release_build = timed_build()
    local_api = os.path.join(RELEASE, "local-api")
    prefix = f"bench{int(time.time())}"
    env = dict(os.environ, USERS_TABLE=f"{prefix}-users", STATS_TABLE=f"{prefix}-stats",
               POOL_TABLE=f"{prefix}-pool", ALERTS_TABLE=f"{prefix}-alerts", AUDIT_TABLE=f"{prefix}-audit",
               AUDIO_BUCKET=f"{prefix}-audio",
               STRIPE_STUB_PORT=str(free_port()), RUST_LOG="warn")
    env["STRIPE_API_BASE"] = f"http://127.0.0.1:{env['STRIPE_STUB_PORT']}"
    # generation-submit needs its queue's URL to start (moto's form; `local-api bench` creates it).
    env["JOBS_QUEUE_URL"] = f"{os.environ['AWS_ENDPOINT_URL_S3']}/123456789012/bench-jobs"
    # alert-delivery needs its queues' URLs to start (never sent to by the cold starts).
    env["ALERT_RETRY_QUEUE_URL"] = f"{os.environ['AWS_ENDPOINT_URL_S3']}/123456789012/bench-alert-retries"
    env["ALERT_DEAD_LETTER_QUEUE_URL"] = f"{os.environ['AWS_ENDPOINT_URL_S3']}/123456789012/bench-alert-retries-dlq"
    # voices and voice-delete need the voice jobs queue's URL to start (`local-api bench` creates it).
    env["VOICE_JOBS_QUEUE_URL"] = f"{os.environ['AWS_ENDPOINT_URL_S3']}/123456789012/bench-voice-jobs"
    # account and account-worker need the account queue's URL and the user pool's id to start.
    env["ACCOUNT_QUEUE_URL"] = f"{os.environ['AWS_ENDPOINT_URL_S3']}/123456789012/bench-accounts"
    env["COGNITO_USER_POOL_ID"] = "us-east-1_bench"
    os.environ.update(env)
    sh([local_api, "init"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    report = json.loads(subprocess.run(
        [local_api, "bench", "--bins", RELEASE, "--runs", str(runs), "--samples", str(samples)],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout)
    report["trust"] = trust_roots(local_api, runs)
    saved_profiles = os.path.join(ROOT, "target", "bench-profiles.json")
    if os.environ.get("BENCH_PROFILES", "0") == "1":
        report["profiles"] = profiles(local_api, runs)
        json.dump(report["profiles"], open(saved_profiles, "w"))
    elif os.path.exists(saved_profiles):
        report["profiles"] = json.load(open(saved_profiles))
    burst = bursts(local_api)
    json.dump({"report": report, "burst": burst, "clean": clean, "release_build": release_build},
              open(os.path.join(ROOT, "target", "bench.json"), "w"), indent=1)
    write(report, burst, clean, release_build, runs, samples)


def kept_section(heading):
    """The section of the current BENCHMARKS.md under `heading`, up to the next section, verbatim."""
    try:
        text = open(os.path.join(ROOT, "BENCHMARKS.md")).read()
    except FileNotFoundError:
        return ""
    start = text.find("\n" + heading)
    if start < 0:
        return ""
    start += 1
    end = text.find("\n## ", start + len(heading))
    section = text[start:] if end < 0 else text[start:end + 1]
    # One blank line after it, however many the file had.
    return section.rstrip("\n") + "\n"


def write(report, burst, clean, release_build, runs, samples):
    memory = memory_sizes()
    cold = {c["binary"]: c for c in report["cold"] if c["binary"] != "trust-roots"}
    hello = cold.pop("hello-world")
    hello_median = statistics.median(hello["runs_ms"])
    lines = []
    w = lines.append
    w("# Benchmarks")
    w("")
    w(f"Written by `make bench` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
      f"{platform.machine()}, {os.cpu_count()} cores, release profile of `Cargo.toml`, "
      f"{runs} cold starts per binary, {samples} warm requests per route. Regenerate with `make bench` "
      "(about 25 minutes on 2 cores, most of it the release build of every binary with fat LTO; `BENCH_CLEAN=0` skips the clean dev build, `BENCH_PROFILES=1` adds the release profile variants, about 20 minutes more). These are figures of this machine and "
      "the local stack, not of AWS; the targets are those of the README.")
    w("")
    w("## Binaries: size, cold start, memory")
    w("")
    w("Cold start: exec to the first `GET /runtime/invocation/next` against a fake Runtime API "
      "(`local-api bench`), median and max; the runs are interleaved (each round starts every binary "
      "once, the hello-world included), so a drift of the machine falls on all alike. Peak RSS: `VmHWM` after serving one real event "
      "(its route's request over the local stack). Targets: ≤ 2× hello-world, ≤ 8 MiB stripped, ≤ 16 MiB RSS.")
    w("")
    w("| binary | stripped | zip | cold start median / max | × hello-world | peak RSS | one event answered | memory (template) |")
    w("|---|---|---|---|---|---|---|---|")
    rows = [("hello-world", hello)] + sorted(cold.items())
    for name, c in rows:
        path = os.path.join(RELEASE, name)
        size = os.path.getsize(path)
        med, mx = statistics.median(c["runs_ms"]), max(c["runs_ms"])
        rss = max(c["peak_rss_kib"]) / 1024
        mem = memory.get(name, "—")
        flag = " ⚠" if (med > 2 * hello_median or size > 8 * 2**20 or rss > 16) and name != "hello-world" else ""
        w(f"| {name}{flag} | {size / 2**20:.2f} MiB | {zip_size(path) / 2**20:.2f} MiB | "
          f"{med:.2f} / {mx:.2f} ms | {med / hello_median:.2f} | {rss:.1f} MiB | {c['outcome']} | {mem} |")
    w("")
    misses = []
    for name, c in sorted(cold.items()):
        med = statistics.median(c["runs_ms"])
        size = os.path.getsize(os.path.join(RELEASE, name)) / 2**20
        rss = max(c["peak_rss_kib"]) / 1024
        missed = [f"cold start {med / hello_median:.2f}×" for _ in [0] if med > 2 * hello_median]
        missed += [f"{size:.2f} MiB" for _ in [0] if size > 8]
        missed += [f"RSS {rss:.1f} MiB" for _ in [0] if rss > 16]
        if missed:
            misses.append(f"- **{name}** ({', '.join(missed)}): {WHY.get(name, 'not yet explained.')}")
    within = [n for n, c in cold.items() if statistics.median(c["runs_ms"]) <= 1.5 * hello_median]
    w(f"Cold start within 1.5× the hello-world's: {len(within)} of {len(cold)} functions"
      + (f" (over: {', '.join(sorted(set(cold) - set(within)))})." if len(within) < len(cold) else "."))
    w("")
    w("### Targets missed")
    w("")
    lines.extend(misses or ["None."])
    w("")
    w("## TLS trust roots")
    w("")
    w("`local/trust-roots` (bench only): one function answering each event with one DynamoDB call "
      "(ListTables over DynamoDB Local), built with the production SDK config and each way of getting "
      "the HTTPS client's trust roots. The SDK parses roots when it builds its connector, on the first "
      "request, so the difference is in the first answer (exec → first event answered), not the first "
      f"poll. {runs} runs each; the hello-world answers its first event in "
      f"{statistics.median(hello['first_answer_ms']):.2f} ms.")
    w("")
    w("| roots | cold start median / max | first answer median / max | peak RSS |")
    w("|---|---|---|---|")
    trust = report.get("trust", {})
    for name, c in trust.items():
        w(f"| {TRUST_LABELS[name]} | {statistics.median(c['runs_ms']):.2f} / {max(c['runs_ms']):.2f} ms | "
          f"{statistics.median(c['first_answer_ms']):.2f} / {max(c['first_answer_ms']):.2f} ms | "
          f"{max(c['peak_rss_kib']) / 1024:.1f} MiB |")
    if trust:
        best = min(trust, key=lambda v: statistics.median(trust[v]["first_answer_ms"]))
        w("")
        w(f"Fastest first answer: **{best}**. {TRUST_CHOICE}")
    w("")
    if report.get("profiles"):
        rg = cold["record-generation"]
        w("## Release profile")
        w("")
        w("record-generation and the hello-world built with each variant (`BENCH_PROFILES=1 make bench` "
          "rebuilds them in scratch target directories; otherwise the figures of the last such run). "
          "Cold start ratio against the hello-world of the same profile.")
        w("")
        w("| opt-level / lto | stripped | cold start median | × hello-world | build from clean |")
        w("|---|---|---|---|---|")
        rg_med = statistics.median(rg["runs_ms"])
        w(f"| {PROFILES[0][0]} / {PROFILES[0][1]} (Cargo.toml) | {os.path.getsize(os.path.join(RELEASE, 'record-generation')) / 2**20:.2f} MiB | "
          f"{rg_med:.2f} ms | {rg_med / hello_median:.2f} | (the main build) |")
        for name, p in report["profiles"].items():
            med = statistics.median(p["record-generation"]["runs_ms"])
            hmed = statistics.median(p["hello-world"]["runs_ms"])
            opt, lto = name.split("/")
            w(f"| {opt} / {lto} | {p['size'] / 2**20:.2f} MiB | {med:.2f} ms | {med / hmed:.2f} | {p['build_s']:.0f} s |")
        w("")
        sizes = {name: p["size"] for name, p in report["profiles"].items()}
        main_size = os.path.getsize(os.path.join(RELEASE, "record-generation"))
        smaller = sorted(n for n, size in sizes.items() if size < main_size)
        w(PROFILE_CHOICE + (f" Smaller than Cargo.toml's: {', '.join(smaller)}." if smaller else
                            " It is the smallest binary of the variants."))
        w("")
    else:
        # Not measured in this run nor kept in target/: the section as it stands.
        w(kept_section("## Release profile"))
    w("## Routes: warm latency, DynamoDB calls, cost")
    w("")
    w("Warm latency through the local API (release build) over DynamoDB Local on this machine. "
      "DynamoDB calls and capacity units of one common-path request, counted by SDK interceptors "
      "(`CallCounter`, `CapacityMeter`). One user makes each route's requests back to back, so the "
      "per-user request budget is set to one request a millisecond with no burst limit: each measured "
      "request finds it idle, as a person's does (its burst path is the tests'). "
      "Targets: record-generation ≤ 2 calls, read routes 1 where the data allows.")
    w("")
    w("| route | p50 | p99 | statuses | DynamoDB calls | capacity units | est. USD per 1M |")
    w("|---|---|---|---|---|---|---|")
    for r in report["routes"]:
        calls = r["dynamodb_calls"]
        writes = sum(1 for c in calls if c in WRITES)
        mem_gb = memory.get(r["function"], 256) / 1024
        duration_s = max(r["p50_ms"], 1.0) / 1000
        units = r["capacity_units"]
        write_units = units if writes and writes == len(calls) else (units * writes / len(calls) if calls else 0)
        read_units = units - write_units
        cost = 1e6 * (LAMBDA_GB_SECOND_ARM * mem_gb * duration_s + LAMBDA_PER_REQUEST + HTTP_API_PER_REQUEST
                      + DDB_PER_WRITE_UNIT * write_units + DDB_PER_READ_UNIT * read_units)
        statuses = ", ".join(f"{k}×{v}" for k, v in r["statuses"].items())
        w(f"| `{r['route']}` | {r['p50_ms']:.1f} ms | {r['p99_ms']:.1f} ms | {statuses} | "
          f"{len(calls)}: {' + '.join(calls) or '—'} | {abs(units):g} | {cost:.2f} |")
    w("")
    w("Cost assumptions (us-east-1, on demand): Lambda arm64 $0.0000133334 per GB-s at the function's "
      "configured memory for the measured p50 (at least 1 ms) plus $0.20 per million requests; API Gateway "
      "HTTP API $1.00 per million; DynamoDB $0.625 per million write units and $0.125 per million read "
      "units, the reported capacity split between reads and writes by call. Data transfer, CloudWatch "
      "logs, S3 and Stripe are not counted.")
    w("")
    w("Reads with more than one call, and writes with more than two, and why: the analytics summary "
      "reads its 16 counter shards (one Query each, in parallel; the price of counting inside every "
      "transaction without one hot item); a claim reads the user (tier), the day's claim count, the "
      "item (listed?) and then writes (a random claim also reads the newest items and the caller's "
      "claims); a manual contribution reads the user and the generation; upload-url reads the user "
      "(quota) and the generation before granting; play writes in one transaction and reads the item "
      "back for its counts; like reads the item first (listed? its genre, for the liker's taste), "
      "writes in one transaction and reads the item back (its count after its own effect); Pixel's chat reads the conversation's memory, takes its unit (one "
      "UpdateItem that answers the user), reads the caller's preferences, a pool item in their "
      "favourite genre and their drafts (these three together), asks the model, and writes the turn: "
      "the facts its suggestions are computed from cost a round of reads. Lyrics are two calls to "
      "write (the unit, then the draft with its list entry in one transaction) and an edit two (the "
      "latest version, then one transaction). The costly routes take one request of the caller's "
      "budget: record-generation, submit, lyrics and Pixel in the update of the user item they make "
      "anyway, play in its transaction, and checkout, portal, upload-url, claim and like in one "
      "UpdateItem of their own (one call more each). Every other read route is one call; record-generation "
      "is three: one read of the user and a possible replay together, the spend (one UpdateItem on the "
      "user item, so a user's parallel requests queue at DynamoDB instead of racing) and the record "
      "transaction (docs/metering.md); a replay is one.")
    w("")
    w("## record-generation under bursts")
    w("")
    w("`local/load.py` against the release local API over DynamoDB Local:")
    w("")
    w("| scenario | requests | req/s | p50 | p99 | answers |")
    w("|---|---|---|---|---|---|")
    for name, f in burst.items():
        statuses = ", ".join(f"{v} × {k}" for k, v in f["statuses"].items())
        w(f"| {name} | {f['requests']} | {f['req_per_s']} | {f['p50_ms']} ms | {f['p99_ms']} ms | {statuses} |")
    w("")
    w("distinct: 16 PRO users in parallel, 25 generations each; same-user: 16 parallel clients of one STUDIO "
      "user, 12 each; same-user-64: 64 parallel clients of one STUDIO user, 3 each; sequential: one PRO "
      "user, 100 in a row. Targets: every request of one user 201, p99 at most 10x the sequential p50.")
    w("")
    # The before/after figures of `make load` are kept by hand (what changed and why): carried over.
    w(kept_section("## One user's burst"))
    w(kept_section("## Build: one crate and crates by layer"))
    w("## Build")
    w("")
    if clean:
        w(f"- Clean build of the workspace (dev profile, as `make test` builds it): {clean['dev']:.0f} s.")
        if "dev_domain_edit" in clean:
            w(f"- The same build again after an edit of a domain rule (`shared/domain/src/tiers.rs` touched): "
              f"{clean['dev_domain_edit']:.0f} s.")
    w(f"- Release build of every binary in this run (incremental from the cache): {release_build:.0f} s.")
    w("")
    open(os.path.join(ROOT, "BENCHMARKS.md"), "w").write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
