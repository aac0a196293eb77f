"""dpdispatcher's own SSH connections, with the server's host key checked before any
credential is sent.

dpdispatcher's ``SSHSession`` opens a paramiko ``Transport`` by hand and authenticates on it
without looking at the key the server offered, so a man in the middle would be sent the
password or the key-based login. A probe connection made beforehand does not help: the
attacker can let the probe through and intercept the next connection. Here the check sits
inside dpdispatcher's own connection: its module gets a ``Transport`` that compares the
offered key with known_hosts right after the key exchange and refuses (``HostKeyError``)
before authentication starts, on the first connection and on every reconnection.

Which known_hosts (and whether a new key may be trusted) is registered per host and port by
the dispatcher executor that uses the host; an unregistered host is checked strictly against
``~/.ssh/known_hosts``.
"""

from __future__ import annotations

import threading
import types
from typing import Any

#: (host, port) -> (known_hosts file or None, allow_new_host_keys)
_policies: dict[tuple[str, int], tuple[str | None, bool]] = {}
_lock = threading.Lock()
#: The host the current thread's dpdispatcher session is connecting to.
_connecting = threading.local()


def register_host(host: str, port: int, known_hosts: str | None,
                  allow_new_host_keys: bool) -> None:
    """How connections to ``host:port`` are checked."""
    with _lock:
        _policies[(host, int(port))] = (known_hosts, allow_new_host_keys)


def _checked_transport_class() -> type:
    import paramiko

    from hpcflow.connectors.transports.ssh import check_offered_key

    class CheckedTransport(paramiko.Transport):
        def start_client(self, event: Any = None, timeout: Any = None) -> None:
            super().start_client(event=event, timeout=timeout)
            target = getattr(_connecting, "target", None)
            if target is None:  # not one of our sessions: refuse rather than guess
                self.close()
                raise paramiko.SSHException("hpcflow: an SSH connection of dpdispatcher "
                                            "without a host to check its key against")
            host, port = target
            with _lock:
                known_hosts, allow_new = _policies.get((host, port), (None, False))
            try:
                check_offered_key(host, port, self.get_remote_server_key(), known_hosts,
                                  allow_new)
            except BaseException:
                self.close()
                raise

    return CheckedTransport


def install(ssh_context: types.ModuleType) -> None:
    """Make dpdispatcher's ``ssh_context`` module check host keys (idempotent)."""
    if getattr(ssh_context, "__hpcflow_host_keys_checked__", False):
        return
    import paramiko

    class ParamikoCheckingHostKeys(types.ModuleType):
        """paramiko as dpdispatcher's module sees it: the same, but for ``Transport``."""

        def __getattr__(self, name: str) -> Any:
            return getattr(paramiko, name)

    shim = ParamikoCheckingHostKeys("paramiko")
    shim.Transport = _checked_transport_class()  # type: ignore[attr-defined]
    base = ssh_context.SSHSession

    class CheckedSSHSession(base):  # type: ignore[misc, valid-type]
        def _setup_ssh(self) -> None:
            _connecting.target = (str(self.hostname), int(self.port))
            try:
                super()._setup_ssh()
            finally:
                _connecting.target = None

    ssh_context.paramiko = shim  # type: ignore[attr-defined]
    ssh_context.SSHSession = CheckedSSHSession  # type: ignore[attr-defined]
    ssh_context.__hpcflow_host_keys_checked__ = True  # type: ignore[attr-defined]
