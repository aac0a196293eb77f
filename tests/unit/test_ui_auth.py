"""The dashboard's guard as pure rules (``hpcflow/ui/auth.py``, ``server.segments_of``),
and hpcflow without the dashboard: importing the CLI does not import the server."""

from __future__ import annotations

import subprocess
import sys

from hpcflow.ui.auth import Guard
from hpcflow.ui.server import STATIC, segments_of


def test_the_token_cookie_and_csrf_are_distinct_and_checked_exactly() -> None:
    guard, other = Guard(), Guard()
    assert guard.token != other.token and len(guard.token) >= 40
    assert len({guard.token, guard.session, guard.csrf}) == 3
    assert guard.token_ok(guard.token)
    assert not guard.token_ok(other.token) and not guard.token_ok("") \
        and not guard.token_ok(None) and not guard.token_ok(guard.token + "x")
    assert guard.cookie_ok(f"a=b; {guard.cookie_name}={guard.session}; c=d")
    assert not guard.cookie_ok(f"{guard.cookie_name}={guard.token}")
    assert not guard.cookie_ok(f"{guard.cookie_name}={other.session}")
    assert not guard.cookie_ok(f"other={guard.session}") and not guard.cookie_ok(None)
    assert not guard.cookie_ok('bad"cookie; =;')
    assert guard.bearer_ok(f"Bearer {guard.token}") and guard.bearer_ok(f"bearer {guard.token}")
    assert not guard.bearer_ok(f"Basic {guard.token}") and not guard.bearer_ok(guard.token)
    assert guard.csrf_ok(guard.csrf) and not guard.csrf_ok(other.csrf) \
        and not guard.csrf_ok(guard.token) and not guard.csrf_ok(None)
    assert guard.token not in repr(guard)  # not in a traceback or a log either
    cookie = guard.set_cookie()
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Domain" not in cookie


def test_only_local_hosts_and_the_bound_address_are_answered() -> None:
    guard = Guard(hosts=frozenset({"10.1.2.3"}))
    for host in ("localhost:8765", "127.0.0.1:41327", "[::1]:8080", "LOCALHOST:1",
                 "10.1.2.3:9000", "localhost"):
        assert guard.host_ok(host), host
    for host in ("evil.example", "evil.example:8765", "localhost.evil.example:80",
                 "127.0.0.1.nip.io:80", "10.1.2.4:9000", "", None, "[::2]:80"):
        assert not guard.host_ok(host), host


def test_a_wildcard_bind_answers_to_this_machines_names_only() -> None:
    import socket

    from hpcflow.cli.ui_cmd import _names_of

    assert _names_of("127.0.0.1") == {"127.0.0.1"}
    wide = Guard(hosts=_names_of("0.0.0.0"))
    assert wide.host_ok(f"{socket.gethostname()}:8765") and wide.host_ok("localhost:1")
    assert not wide.host_ok("evil.example:8765")


def test_a_post_comes_from_our_own_origin() -> None:
    guard = Guard()
    assert guard.origin_ok("http://localhost:8765", "localhost:8765")
    assert guard.origin_ok(None, "localhost:8765")  # not a browser's cross-site request
    assert not guard.origin_ok("http://evil.example", "localhost:8765")
    assert not guard.origin_ok("http://localhost:9999", "localhost:8765")
    assert not guard.origin_ok("null", "localhost:8765")  # a sandboxed frame, a file: page
    assert not guard.origin_ok("https://localhost:8765", "localhost:8765")


def test_no_url_path_escapes_its_segments() -> None:
    for path in ("/static/../x", "/static/%2e%2e/x", "/static/%2E%2e/x", "/a/./b", "/a//b",
                 "/a/%2f", "/a/%5c", "/a/%00", "/a/%ff", "/a/b/", "//"):
        assert segments_of(path) is None, path
    assert segments_of("/api/workflows/w-1/steps/2/artifacts/out%20put") == \
        ["api", "workflows", "w-1", "steps", "2", "artifacts", "out put"]
    assert set(STATIC) == {"/static/app.js", "/static/app.css"}


def test_hpcflow_imports_without_the_dashboard() -> None:
    code = ("import sys, hpcflow, hpcflow.cli.main\n"
            "loaded = [m for m in sys.modules if m.startswith('hpcflow.ui')]\n"
            "assert not loaded, loaded\n"
            "assert 'http.server' not in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
