"""``python -m tests.services.argo_standin``: run the stand-in Argo Server until SIGTERM."""

from __future__ import annotations

import argparse
import json
import os
import signal
import ssl
import sys
import threading
from pathlib import Path
from typing import Any

from .controller import Controller
from .faults import Faults
from .routes import ArgoApi, Tokens
from .server import App, StandinServer
from .store import Store


def _json_file(path: str | None, what: str) -> Any:
    if not path:
        return {}
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        sys.exit(f"argo-standin: cannot read {what} {path}: {exc}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.services.argo_standin",
                                description="A stand-in Argo Server for hpcflow's tests.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0: any free port (see --port-file)")
    p.add_argument("--port-file", help="write the port here once listening")
    p.add_argument("--state", required=True, help="directory for pod roots and logs")
    p.add_argument("--tokens", required=True,
                   help='JSON file: {"TOKEN": ["namespace", ...] or "*"}')
    p.add_argument("--secrets", help='JSON file: {"NAMESPACE": {"SECRET": {"KEY": "VALUE"}}}')
    p.add_argument("--artifact-repository",
                   help="JSON file: the default artifact repository in Argo's shape "
                        '({"s3": {"endpoint": "HOST:PORT", "insecure": true, "bucket": ..., '
                        '"accessKeySecret": {"name": ..., "key": ...}, "secretKeySecret": ...}}); '
                        "its secrets are looked up in the workflow's namespace")
    p.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM)")
    p.add_argument("--tls-key", help="... and this key (PEM)")
    args = p.parse_args(argv)

    state = Path(args.state)
    state.mkdir(parents=True, exist_ok=True)
    tls = None
    if args.tls_cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
    store, faults = Store(), Faults()
    controller = Controller(store, faults, state, _json_file(args.secrets, "secrets"),
                            _json_file(args.artifact_repository, "artifact repository"))
    api = ArgoApi(store, controller, Tokens(_json_file(args.tokens, "tokens")))
    server = StandinServer(App(store, controller, api, faults), args.host, args.port, tls)
    port = server.listen()
    controller.start()
    if args.port_file:
        tmp = f"{args.port_file}.tmp"
        Path(tmp).write_text(str(port))
        os.replace(tmp, args.port_file)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    controller.stop()
    server.close()
    with store.lock:
        for rec in list(store.records.values()):
            for pod in rec.pods.values():
                pod.kill("stand-in stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
