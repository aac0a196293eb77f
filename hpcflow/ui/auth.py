"""Who may use the dashboard: one random token per server, a cookie set from it, a CSRF
token for state-changing requests, and the Host and Origin checks against DNS rebinding.

A login node is shared: any user there can connect to 127.0.0.1. So nothing is served
without the token (or the cookie its first use sets), and nothing here depends on the
network being private. Pure functions over header values; the server applies them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from urllib.parse import urlsplit

#: Host names a browser reaching this server through ``ssh -L`` or on this machine uses.
LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True)
class Guard:
    """The secrets of one server run: the token the terminal shows once, and what is
    derived from it (the cookie's value and the CSRF token are not the token itself, so
    neither can be turned back into a ``?token=`` link)."""

    token: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    #: Host names accepted besides ``LOCAL_NAMES`` (the address given to ``--bind``).
    hosts: frozenset[str] = frozenset()
    #: The cookie's name: one per server, so two dashboards on one machine do not
    #: overwrite each other's (a browser's cookies for 127.0.0.1 ignore the port).
    cookie_name: str = "hpcflow_ui"

    def _derive(self, purpose: str) -> str:
        return hmac.new(self.token.encode(), purpose.encode(), hashlib.sha256).hexdigest()

    @property
    def session(self) -> str:
        return self._derive("session")

    @property
    def csrf(self) -> str:
        return self._derive("csrf")

    def token_ok(self, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(str(given).encode(), self.token.encode())

    def cookie_ok(self, cookie_header: str | None) -> bool:
        value = cookie_value(cookie_header, self.cookie_name)
        return bool(value) and hmac.compare_digest(str(value).encode(), self.session.encode())

    def bearer_ok(self, authorization: str | None) -> bool:
        """``Authorization: Bearer TOKEN`` (scripts and ``curl``, which keep no cookie)."""
        scheme, _, given = (authorization or "").partition(" ")
        return scheme.lower() == "bearer" and self.token_ok(given.strip())

    def csrf_ok(self, header: str | None) -> bool:
        return bool(header) and hmac.compare_digest(str(header).encode(), self.csrf.encode())

    def set_cookie(self) -> str:
        """The ``Set-Cookie`` value: HttpOnly (no script reads it), SameSite=Strict (no other
        site's page sends it), for this server only (Path=/, no Domain)."""
        return f"{self.cookie_name}={self.session}; HttpOnly; SameSite=Strict; Path=/"

    def host_ok(self, host_header: str | None) -> bool:
        """A Host this server answers to: a local name, or the bound address. A DNS
        rebinding page reaches us under its own name, which is refused."""
        name = host_name(host_header)
        return name is not None and (name in LOCAL_NAMES or name in self.hosts)

    def origin_ok(self, origin: str | None, host_header: str | None) -> bool:
        """A state-changing request comes from our own page: its Origin (when the browser
        sends one) names the same host and port as its Host."""
        if origin is None:
            return True  # not a browser's cross-site request (browsers send Origin on POST)
        parts = urlsplit(origin)
        return parts.scheme == "http" and bool(parts.netloc) and \
            parts.netloc.lower() == (host_header or "").lower()


def host_name(host_header: str | None) -> str | None:
    """The name in a Host header, without the port; None when there is none.

    >>> host_name("localhost:8080"), host_name("[::1]:80"), host_name("127.0.0.1")
    ('localhost', '::1', '127.0.0.1')
    >>> host_name(None), host_name("")
    (None, None)
    """
    if not host_header:
        return None
    host = host_header.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[1:end] if end > 0 else None
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def cookie_value(header: str | None, name: str) -> str | None:
    """The value of cookie ``name`` in a Cookie header (None if absent or unreadable)."""
    if not header:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None else None
