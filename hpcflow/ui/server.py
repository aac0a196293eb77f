"""The dashboard's HTTP server: the standard library's threading server, on a TCP port of
127.0.0.1 or on a Unix socket, every request checked by ``auth.Guard`` before it is routed.

Routes are a fixed table of shapes; a URL's segments are only ever ids looked up in the
store (a workflow id, a step id, an artifact's name among a step's outputs) or a name in
the fixed table of static files: nothing in a URL becomes a path on this machine.
"""

from __future__ import annotations

import json
import os
import re
import socket
import socketserver
import stat
import sys
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from hpcflow.errors import HpcflowError, NotFoundError
from hpcflow.ui.api import Api, BadRequest
from hpcflow.ui.auth import Guard

#: The only files served from the package: URL path -> (file in ``static/``, content type).
STATIC = {
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/app.css": ("app.css", "text/css; charset=utf-8"),
}
INDEX = "index.html"
#: A workflow id as hpcflow makes them (a DNS-1123 name, a dash, five characters).
_WF_ID = re.compile(r"^[a-z0-9][a-z0-9.-]{0,120}$")
#: Headers on every answer: no caching of data, no framing, no sniffing, no outside loads.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
}


def static_text(name: str) -> bytes:
    return resources.files("hpcflow.ui").joinpath("static").joinpath(name).read_bytes()


class Handler(BaseHTTPRequestHandler):
    """One request: check Host, then the token or cookie, then route."""

    server_version = "hpcflow-ui"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    api: Api
    guard: Guard
    quiet = False

    # -- plumbing ----------------------------------------------------------------------
    def address_string(self) -> str:  # a Unix socket's peer has no address
        return self.client_address[0] if isinstance(self.client_address, tuple) \
            and self.client_address else "unix"

    def log_message(self, format: str, *args: Any) -> None:
        """No query strings (a ``?token=``) and no cookies in the log: method, path, status."""

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        if not self.quiet:
            path = urlsplit(self.path).path
            sys.stderr.write(f"{self.command} {path} {code}\n")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str,
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in {**SECURITY_HEADERS, **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, data: Any, status: HTTPStatus = HTTPStatus.OK) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _refuse(self, status: HTTPStatus, message: str) -> None:
        # a refused request's body may not have been read: the connection ends with it
        self.close_connection = True
        self._json({"error": message}, status)

    # -- checks ------------------------------------------------------------------------
    def _checked(self) -> tuple[list[str], dict[str, list[str]]] | None:
        """The path's segments and the query, once Host and the credentials pass; None
        when an answer (a refusal, the cookie's redirect) was sent."""
        if not self.guard.host_ok(self.headers.get("Host")):
            self._refuse(HTTPStatus.FORBIDDEN, "this server answers to localhost only (the "
                         "Host header names another host)")
            return None
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        if self.command == "GET" and "token" in query:
            if not self.guard.token_ok(query["token"][0]):
                self._refuse(HTTPStatus.UNAUTHORIZED, "wrong token")
                return None
            # the token leaves the address bar at once: a cookie carries the session on
            self.send_response(HTTPStatus.SEE_OTHER)
            self.send_header("Location", parts.path or "/")
            self.send_header("Set-Cookie", self.guard.set_cookie())
            self.send_header("Content-Length", "0")
            for name, value in SECURITY_HEADERS.items():
                self.send_header(name, value)
            self.end_headers()
            return None
        if not (self.guard.cookie_ok(self.headers.get("Cookie"))
                or self.guard.bearer_ok(self.headers.get("Authorization"))):
            self._refuse(HTTPStatus.UNAUTHORIZED, "open the URL with the token that "
                         "'hpcflow ui' printed")
            return None
        segments = segments_of(parts.path)
        if segments is None:
            self._refuse(HTTPStatus.NOT_FOUND, "no such page")
            return None
        return segments, query

    # -- methods -----------------------------------------------------------------------
    def do_GET(self) -> None:
        checked = self._checked()
        if checked is None:
            return
        segments, query = checked
        self._answer(lambda: self._get(segments, query))

    do_HEAD = do_GET

    def do_POST(self) -> None:
        checked = self._checked()
        if checked is None:
            return
        segments, _ = checked
        length = int(self.headers.get("Content-Length") or 0)
        if length > 65536:
            self._refuse(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request too large")
            return
        self.rfile.read(length)  # actions take no body; read it so the connection stays sane
        if not self.guard.csrf_ok(self.headers.get("X-CSRF-Token")):
            self._refuse(HTTPStatus.FORBIDDEN, "missing or wrong CSRF token: reload the page")
            return
        if not self.guard.origin_ok(self.headers.get("Origin"), self.headers.get("Host")):
            self._refuse(HTTPStatus.FORBIDDEN, "the request comes from another site's page")
            return
        self._answer(lambda: self._post(segments))

    def _refuse_method(self) -> None:
        self._refuse(HTTPStatus.METHOD_NOT_ALLOWED, "only GET and POST are served")

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse_method

    def _answer(self, route: Callable[[], None]) -> None:
        try:
            route()
        except NotFoundError as exc:
            self._refuse(HTTPStatus.NOT_FOUND, str(exc))
        except (BadRequest, ValueError) as exc:
            self._refuse(HTTPStatus.BAD_REQUEST, str(exc))
        except HpcflowError as exc:  # an action that does not apply now, said as the CLI
            self._refuse(HTTPStatus.CONFLICT, str(exc))
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as exc:  # a bug or a broken store: one line each side, serving goes on
            sys.stderr.write(f"hpcflow ui: {self.command} {urlsplit(self.path).path}: "
                             f"{type(exc).__name__}: {exc}\n")
            self._refuse(HTTPStatus.INTERNAL_SERVER_ERROR,
                         f"{type(exc).__name__}: {exc} (the terminal of 'hpcflow ui' has it)")

    # -- routes ------------------------------------------------------------------------
    def _get(self, seg: list[str], query: dict[str, list[str]]) -> None:
        def arg(name: str, default: str | None = None) -> str | None:
            return query.get(name, [default])[0]

        path = "/" + "/".join(seg)
        if not seg:
            page = static_text(INDEX).replace(b"{{CSRF}}", self.guard.csrf.encode())
            self._send(HTTPStatus.OK, page, "text/html; charset=utf-8")
            return
        if path in STATIC:
            name, kind = STATIC[path]
            self._send(HTTPStatus.OK, static_text(name), kind)
            return
        if seg[:2] == ["api", "workflows"]:
            if len(seg) == 2:
                self._json(self.api.workflows(arg("phase"), arg("label"), arg("age"),
                                              _int(arg("limit", "200"))))
                return
            wf = _wf_id(seg[2])
            rest = seg[3:]
            if not rest:
                self._json(self.api.workflow(wf))
            elif rest == ["steps"]:
                self._json(self.api.steps(wf, _int(arg("after", "0")), _int(arg("limit", "2000"))))
            elif rest == ["phases"]:
                self._json(self.api.phases(wf, _int(arg("event", "0")), _int(arg("step", "0"))))
            elif rest == ["graph.svg"]:
                self._graph(wf, _int(arg("fold", "30")), _ints(arg("collapse", "")))
            elif len(rest) == 2 and rest[0] == "steps":
                self._json(self.api.step(wf, _int(rest[1])))
            elif len(rest) == 3 and rest[0] == "steps" and rest[2] == "log":
                job = arg("job")
                self._json(self.api.log(wf, _int(rest[1]), _int(arg("offset", "-1"), low=-1),
                                        _int(job) if job else None))
            elif len(rest) == 4 and rest[0] == "steps" and rest[2] == "artifacts":
                self._artifact(wf, _int(rest[1]), rest[3])
            else:
                raise NotFoundError("no such page")
            return
        raise NotFoundError("no such page")

    def _post(self, seg: list[str]) -> None:
        if len(seg) == 5 and seg[:2] == ["api", "workflows"] and seg[3] == "actions":
            self._json({"message": self.api.act(_wf_id(seg[2]), seg[4])})
        elif len(seg) == 6 and seg[:2] == ["api", "workflows"] and seg[3] == "steps" \
                and seg[5] == "retry":
            self._json({"message": self.api.retry_step(_wf_id(seg[2]), _int(seg[4]))})
        else:
            raise NotFoundError("no such action")

    def _graph(self, wf_id: str, fold: int, collapsed: list[int]) -> None:
        svg = self.api.graph_svg(wf_id, max(1, fold), collapsed)
        self._send(HTTPStatus.OK, svg.encode(), "image/svg+xml; charset=utf-8")

    def _artifact(self, wf_id: str, step_id: int, name: str) -> None:
        from hpcflow.ui.download import artifact_file

        ref, storage = self.api.artifact(wf_id, step_id, name)
        with artifact_file(ref, storage, name) as (path, filename):
            size = path.stat().st_size
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "application/gzip")
            self.send_header("Content-Length", str(size))
            self.send_header("Content-Disposition", f'attachment; filename="{filename}"')
            for header, value in SECURITY_HEADERS.items():
                self.send_header(header, value)
            self.end_headers()
            if self.command == "HEAD":
                return
            with open(path, "rb") as f:
                while chunk := f.read(1 << 16):
                    self.wfile.write(chunk)


def segments_of(path: str) -> list[str] | None:
    """The decoded segments of a URL path; None for one that tries to leave its place
    (``..`` or ``.`` plain or percent-encoded, a ``/``, ``\\`` or NUL hidden in a segment,
    an empty segment as in ``//etc``).

    >>> segments_of("/api/workflows/w-1/steps"), segments_of("/")
    (['api', 'workflows', 'w-1', 'steps'], [])
    >>> segments_of("/static/../x"), segments_of("/static/%2e%2e/x"), segments_of("//etc")
    (None, None, None)
    >>> segments_of("/a/%2Fetc%2Fpasswd"), segments_of("/a/b%5c..%5cc")
    (None, None)
    """
    raw = path.split("/")[1:]
    if raw == [""]:
        return []
    decoded = []
    for part in raw:
        try:
            text = unquote(part, errors="strict") if "%" in part else part
        except UnicodeDecodeError:
            return None
        if text in ("", ".", "..") or any(c in text for c in "/\\\0"):
            return None
        decoded.append(text)
    return decoded


def _int(text: str | None, low: int = 0) -> int:
    try:
        value = int(text or "")
    except ValueError:
        raise BadRequest(f"{text!r} is not a whole number") from None
    if value < low:
        raise BadRequest(f"{value} is out of range")
    return value


#: Groups a page may ask to see closed at once.
MAX_COLLAPSED = 1000


def _ints(text: str | None) -> list[int]:
    """A comma-separated list of step ids (``collapse=12,40``); empty for none."""
    found = [_int(part) for part in (text or "").split(",") if part]
    if len(found) > MAX_COLLAPSED:
        raise BadRequest(f"at most {MAX_COLLAPSED} groups may be collapsed at once")
    return found


def _wf_id(text: str) -> str:
    if not _WF_ID.match(text) or ".." in text:
        raise NotFoundError(f"no workflow {text!r}")
    return text


class TcpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False  # a port another process holds is refused, not shared


class UnixServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def server_bind(self) -> None:
        old = os.umask(0o177)  # the socket is born 0600: no moment when others may connect
        try:
            super().server_bind()
        finally:
            os.umask(old)
        os.chmod(str(self.server_address), 0o600)


def check_socket_path(path: Path) -> None:
    """Refuse a socket path others could replace or reach: its folder must be ours and
    writable by us alone; a file already there is removed only if it is our own socket."""
    folder = path.parent
    try:
        info = folder.stat()
    except FileNotFoundError:
        raise HpcflowError(f"--socket {path}: the folder {folder} does not exist") from None
    if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise HpcflowError(f"--socket {path}: the folder {folder} can be written by other "
                           "users (or is not yours): put the socket in a private folder, "
                           "such as ~/.hpcflow")
    if path.is_symlink() or path.exists():
        if path.is_symlink() or not stat.S_ISSOCK(path.lstat().st_mode) \
                or path.lstat().st_uid != os.getuid():
            raise HpcflowError(f"--socket {path}: a file is already there and it is not a "
                               "socket of yours: choose another path")
        path.unlink()  # a socket left by an earlier run


def make_server(api: Api, guard: Guard, bind: str = "127.0.0.1", port: int = 0,
                socket_path: Path | None = None, quiet: bool = False
                ) -> socketserver.BaseServer:
    """A server ready to ``serve_forever``: on ``socket_path`` if given, else on
    ``bind:port`` (port 0: a free one the system picks)."""
    handler = type("BoundHandler", (Handler,), {"api": api, "guard": guard, "quiet": quiet})
    if socket_path is not None:
        check_socket_path(socket_path)
        return UnixServer(str(socket_path), handler)
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    server_class = type("Server", (TcpServer,), {"address_family": family})
    try:
        return server_class((bind, port), handler)
    except OSError as exc:
        import errno

        if exc.errno == errno.EADDRINUSE:
            raise HpcflowError(f"port {port} on {bind} is in use: choose another with "
                               "--port, or --port 0 for a free one") from None
        if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
            raise HpcflowError(f"--bind {bind}: no such address on this machine") from None
        if exc.errno == errno.EACCES:
            raise HpcflowError(f"port {port} needs privileges: choose one above 1023") from None
        raise
