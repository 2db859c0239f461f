"""Moto's server with DynamoDB requests serialised: the project's local DynamoDB + S3.

Stock `moto_server` runs werkzeug with threads and its DynamoDB backend is not atomic under concurrent
conditional writes (measured: 50 parallel `used < 3` updates let 4-6 through in about one round in
five; transactions over-granted and sometimes failed with "dictionary changed size during iteration").
AWS evaluates a condition and its write atomically, so our quota rests on that. This wrapper runs every
DynamoDB request (`X-Amz-Target: DynamoDB_...`) behind one lock, body included; S3 stays concurrent.

It imports moto internals, so moto's version is pinned in requirements.txt.

    python local/moto_server.py [--host 127.0.0.1] [--port 0] [--port-file FILE]

Port 0 picks a free port; the bound port is written to --port-file once the server accepts connections.
"""

import argparse
import os
import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server


class SerialisedDynamoDB:
    """WSGI middleware: one DynamoDB request at a time, from parsing to the last byte of its response."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            return self.app(environ, start_response)
        captured = []
        chunks = []

        def capture(status, headers, exc_info=None):
            captured[:] = [status, headers, exc_info]
            return chunks.append

        with self.lock:
            result = self.app(environ, capture)
            try:
                chunks.extend(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        status, headers, exc_info = captured
        start_response(status, headers, exc_info)
        return chunks


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("MOTO_PORT", "0")))
    parser.add_argument("--port-file")
    args = parser.parse_args()

    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(
        args.host,
        args.port,
        SerialisedDynamoDB(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )
    port = server.server_port
    os.environ["MOTO_PORT"] = str(port)
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(port))
        os.replace(tmp, args.port_file)
    print(f"moto (DynamoDB serialised) on http://{args.host}:{port}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
