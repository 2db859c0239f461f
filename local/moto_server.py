"""Moto's server for the local stack's S3, with DynamoDB refused: DynamoDB is AWS's DynamoDB Local.

Stock `moto_server` also answers DynamoDB, but its DynamoDB is not atomic under concurrent conditional
writes (50 parallel `used < 3` updates let 4-6 through in about one round in five), so a DynamoDB
request that reaches moto is a misconfigured client, not a test: this wrapper answers it with 400
`DynamoDBNotServedHere` and logs it. `--allow-dynamodb` restores stock behaviour, only to show that the
atomicity tests fail on stock moto (`make test-atomicity-on-moto`).

`--persist FILE` keeps what must outlive a restart (`make dev`): S3 object writes and deletes, and the
existence of the SQS queues (and SSM parameters). moto's own recorder appends those requests to FILE and
the next start replays FILE before it announces its port. Reads, polls and messages are never recorded
(the local worker long-polls SQS once a second: recording those made every restart wait out each one);
an older FILE that holds them is compacted to what persists before it is replayed.

It imports moto internals, so moto's version is pinned in requirements.txt.

    python local/moto_server.py [--host 127.0.0.1] [--port 0] [--port-file FILE] [--persist FILE]
                                [--allow-dynamodb]

Port 0 picks a free port; the bound port is written to --port-file once the server accepts connections.
"""

import argparse
import json
import os
import sys
import threading


def dynamodb_refused(app):
    """WSGI middleware: a DynamoDB request (`X-Amz-Target: DynamoDB_...`) gets a 400, S3 passes."""

    def middleware(environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.startswith("DynamoDB_"):
            return app(environ, start_response)
        print(f"moto: refused a DynamoDB request ({target}): DynamoDB is DynamoDB Local", file=sys.stderr, flush=True)
        body = json.dumps(
            {
                "__type": "com.son1k.local#DynamoDBNotServedHere",
                "message": "this moto serves S3 only; DynamoDB is DynamoDB Local (AWS_ENDPOINT_URL_DYNAMODB)",
            }
        ).encode()
        start_response(
            "400 Bad Request",
            [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(body)))],
        )
        return [body]

    return middleware


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("MOTO_PORT", "0")))
    parser.add_argument("--port-file")
    parser.add_argument("--persist", metavar="FILE", help="record S3 writes to FILE and replay it at start")
    parser.add_argument("--allow-dynamodb", action="store_true", help="stock moto: serve DynamoDB too")
    args = parser.parse_args()

    if args.persist:
        # moto's recorder reads these when it is first imported.
        os.environ["MOTO_ENABLE_RECORDING"] = "true"
        os.environ["MOTO_RECORDER_FILEPATH"] = os.path.abspath(args.persist)

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    app = DomainDispatcherApplication(create_backend_app)
    if not args.allow_dynamodb:
        app = dynamodb_refused(app)
    server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    port = server.server_port
    os.environ["MOTO_PORT"] = str(port)

    def ready():
        # The replay sends the recorded requests to this server, so it runs while the server serves;
        # the port is announced only after it, so nobody else sees a half-restored S3.
        if args.persist:
            replay(args.persist, port)
        if args.port_file:
            tmp = args.port_file + ".tmp"
            with open(tmp, "w") as f:
                f.write(str(port))
            os.replace(tmp, args.port_file)
        served = "S3 and DynamoDB (stock, not atomic)" if args.allow_dynamodb else "S3 (DynamoDB refused)"
        print(f"moto: {served} on http://{args.host}:{port}", file=sys.stderr, flush=True)

    threading.Thread(target=ready, daemon=True).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


# The SQS, SSM and Secrets Manager calls (JSON protocol, `X-Amz-Target: <service>.<operation>`) whose effect must outlive
# a restart. Every other targeted call is a read, a poll or a message, and is not recorded.
PERSISTED_TARGETS = {
    "AmazonSQS.CreateQueue",
    "AmazonSQS.DeleteQueue",
    "AmazonSQS.SetQueueAttributes",
    "AmazonSSM.PutParameter",
    "AmazonSSM.DeleteParameter",
    "AmazonSSM.DeleteParameters",
    "secretsmanager.CreateSecret",
    "secretsmanager.PutSecretValue",
    "secretsmanager.UpdateSecret",
    "secretsmanager.DeleteSecret",
}


def persists(method, headers):
    """Whether a request's effect must survive a restart: an S3 write or delete (an untargeted PUT, POST
    or DELETE: object and bucket writes, multipart parts, batch deletes) or a call named above."""
    target = next((v for k, v in headers.items() if k.lower() == "x-amz-target"), "")
    if target:
        return target in PERSISTED_TARGETS
    return method in ("PUT", "POST", "DELETE")


def compact(path):
    """Rewrites FILE with only the entries that persist (a file from before this filter holds polls)."""
    with open(path) as f:
        entries = [line for line in f if line.strip()]
    kept = [line for line in entries if persists(json.loads(line)["method"], json.loads(line)["headers"])]
    if len(kept) != len(entries):
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.writelines(kept)
        os.replace(tmp, path)
        print(f"moto: dropped {len(entries) - len(kept)} recorded reads and polls from {path}", file=sys.stderr, flush=True)
    return len(kept)


def replay(path, port):
    """Replays the recorded writes into this fresh moto, then records only new ones that persist."""
    from moto.moto_api import recorder

    record = recorder._record_request

    def record_persistent(request, body=None):
        if persists(request.method, request.headers):
            record(request, body)

    recorder._record_request = record_persistent
    if os.path.exists(path) and os.path.getsize(path) > 0:
        count = compact(path)
        recorder.replay_recording(target_host=f"http://127.0.0.1:{port}")
        print(f"moto: replayed {count} recorded writes from {path}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
