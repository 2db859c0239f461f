"""Seeds the fuzzing run's fresh tables (local/fuzz.sh): a PRO user's 20th generation shared with the pool
and its audio stored, so that the pool lists an item whose id the fuzzer's links can carry to play, like
and claim. Usage: fuzz_seed.py API_BASE ADMIN_TOKEN SEED_TOKEN"""

import json
import sys
import time
import urllib.request


def call(api, method, path, token, body=None, data=None, headers=None):
    payload = data if data is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(f"{api}{path}", data=payload, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    req.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    with urllib.request.urlopen(req, timeout=10) as res:
        text = res.read()
        return json.loads(text) if text else None


def main():
    api, admin, seed = sys.argv[1:4]
    call(api, "GET", "/api/tiers/limits/me", seed)
    call(api, "PUT", "/api/admin/users/fuzz_seed/tier", admin, {"tier": "PRO"})
    shared = None
    for n in range(1, 21):
        answer = call(api, "POST", "/api/tiers/record-generation", seed,
                      {"generation_id": f"seed-{n}", "genre": "house", "title": f"Seed {n}"})
        shared = answer["pool_contribution"] or shared
    if shared is None:
        raise SystemExit("fuzz seed: the 20th paid generation did not contribute")
    audio = b"ID3 fuzz seed audio"
    link = call(api, "POST", "/api/generations/seed-20/upload-url", seed,
                {"content_type": "audio/mpeg", "size_bytes": len(audio)})
    urllib.request.urlopen(urllib.request.Request(
        link["upload_url"], data=audio, method="PUT", headers=link["headers"]), timeout=10).read()
    # The local API accounts the upload within a second or two (as S3 → storage-events would).
    for _ in range(100):
        page = call(api, "GET", "/api/community/pool", None)
        if page["items"]:
            print(f"fuzz seed: pool item {page['items'][0]['id']} listed")
            return
        time.sleep(0.1)
    raise SystemExit("fuzz seed: the contribution was never listed")


if __name__ == "__main__":
    main()
