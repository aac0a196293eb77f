"""The HTTP(S) side: routing, call counting, the outage switch and the test control routes.

Control routes (never under /api/, never counted, no token):

* ``POST /standin/fault`` ``{"image": I, "kind": K}`` (K null clears); ``DELETE /standin/fault``
  clears all faults;
* ``POST /standin/down`` ``{"seconds": N}``: the listening socket is closed (connections are
  refused) for N seconds, then the server listens on the same port again;
* ``GET /standin/calls`` -> ``{"METHOD /route/{template}": count}``;
  ``POST /standin/calls/reset``;
* ``GET /standin/workflows`` -> every workflow's record (images, resources, env names,
  never secret values).

HTTP/1.0 (one request per connection, as the outage test needs: a kept-alive connection would
outlive the closed listening socket).
"""

from __future__ import annotations

import collections
import json
import re
import ssl
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import apierrors as E
from .controller import Controller
from .faults import Faults
from .routes import ArgoApi, Request, Response
from .store import Store

Handler = Callable[[Request], Response]


def _compile(template: str) -> re.Pattern[str]:
    pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
    return re.compile(f"^{pattern}$")


class App:
    def __init__(self, store: Store, controller: Controller, api: ArgoApi,
                 faults: Faults) -> None:
        self.store = store
        self.controller = controller
        self.faults = faults
        self.calls: collections.Counter[str] = collections.Counter()
        self.calls_lock = threading.Lock()
        self.server: StandinServer | None = None
        self.api_routes = [(m, t, _compile(t), h) for m, t, h in api.routes()]

    def dispatch(self, req: Request) -> Response:
        if req.path.startswith("/standin/"):
            return self.control(req)
        for method, template, regex, handler in self.api_routes:
            m = regex.match(req.path)
            if m and method == req.method:
                with self.calls_lock:
                    self.calls[f"{method} {template}"] += 1
                req.params = m.groupdict()
                try:
                    return handler(req)
                except E.ApiError as exc:
                    return Response(exc.http_status, exc.body())
        with self.calls_lock:
            self.calls[f"{req.method} (no route)"] += 1
        return Response(404, {"code": E.NOT_FOUND, "message": "Not Found"})

    def control(self, req: Request) -> Response:
        key = (req.method, req.path.rstrip("/"))
        body: Any = json.loads(req.body or b"{}") if req.method in ("POST", "PUT") else {}
        if key == ("GET", "/standin/calls"):
            with self.calls_lock:
                return Response(body=dict(self.calls))
        if key == ("POST", "/standin/calls/reset"):
            with self.calls_lock:
                self.calls.clear()
            return Response(body={})
        if key == ("POST", "/standin/fault"):
            try:
                self.faults.set(str(body["image"]), body.get("kind"))
            except (KeyError, ValueError) as exc:
                return Response(400, {"error": str(exc)})
            return Response(body=self.faults.snapshot())
        if key == ("DELETE", "/standin/fault"):
            self.faults.clear()
            return Response(body={})
        if key == ("POST", "/standin/down"):
            assert self.server is not None
            self.server.go_down(float(body.get("seconds", 5)))
            return Response(body={})
        if key == ("GET", "/standin/workflows"):
            with self.store.lock:
                records = [self.controller.record(r) for r in self.store.records.values()]
            return Response(body={"workflows": records})
        return Response(404, {"error": f"no control route {req.method} {req.path}"})


class _Handler(BaseHTTPRequestHandler):
    server_version = "argo-standin"
    app: App

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _handle(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        req = Request(self.command, url.path, parse_qs(url.query, keep_blank_values=True),
                      {k.lower(): v for k, v in self.headers.items()}, body)
        try:
            resp = self.app.dispatch(req)
        except Exception as exc:  # a bug of the stand-in: answer as an Internal error
            resp = Response(500, {"code": E.INTERNAL, "message": f"stand-in error: {exc!r}"})
        if resp.stream is not None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            try:
                for chunk in resp.stream:
                    self.wfile.write(chunk)
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass
            return
        data = json.dumps(resp.body if resp.body is not None else {}).encode()
        self.send_response(resp.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _handle


class StandinServer:
    """A ThreadingHTTPServer that can close its listening socket and reopen it later."""

    def __init__(self, app: App, host: str, port: int, tls: ssl.SSLContext | None) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.tls = tls
        self._httpd: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()
        app.server = self

    def listen(self) -> int:
        handler = type("Handler", (_Handler,), {"app": self.app})
        deadline = time.monotonic() + 30
        while True:
            try:
                httpd = ThreadingHTTPServer((self.host, self.port), handler)
                break
            except OSError:
                if self.port == 0 or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        # ThreadingHTTPServer sets SO_REUSEADDR: the port can be bound again right after an
        # outage closed it, even with connections left in TIME_WAIT.
        httpd.daemon_threads = True
        httpd.block_on_close = False
        if self.tls is not None:
            httpd.socket = self.tls.wrap_socket(httpd.socket, server_side=True)
        self.port = httpd.server_address[1]
        with self._lock:
            self._httpd = httpd
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1},
                         daemon=True).start()
        return self.port

    def close(self) -> None:
        with self._lock:
            httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.socket.close()

    def go_down(self, seconds: float) -> None:
        def outage() -> None:
            time.sleep(0.2)   # let the answer to /standin/down leave first
            self.close()
            time.sleep(seconds)
            self.listen()
        threading.Thread(target=outage, daemon=True).start()

