"""A command whose SSH channel closes without an exit status (sshd killed under it) is a
lost connection (``TransportError``: the poll is tried again, the next connect says it
reconnected), not the command failing with status -1 and no message."""

import logging
import re
from types import SimpleNamespace

import pytest

from hpcflow.connectors.transports.base import TransportError
from hpcflow.connectors.transports.ssh import SSHTarget, SSHTransport


class _Stream:
    def __init__(self, status: int) -> None:
        self.channel = SimpleNamespace(recv_exit_status=lambda: status,
                                       shutdown_write=lambda: None)

    def read(self) -> bytes:
        return b""

    def write(self, text: str) -> None:
        pass


class _Client:
    """What paramiko's SSHClient gives ``run``: a live transport, then none once closed."""

    def __init__(self, status: int) -> None:
        self.status, self.closed = status, False

    def get_transport(self):
        return None if self.closed else SimpleNamespace(is_active=lambda: True)

    def exec_command(self, command: str, timeout: float):
        return _Stream(self.status), _Stream(self.status), _Stream(self.status)

    def close(self) -> None:
        self.closed = True


def _transport(client: _Client, monkeypatch: pytest.MonkeyPatch) -> SSHTransport:
    transport = SSHTransport(SSHTarget(host="cluster.example"))
    transport._client = client
    monkeypatch.setattr(transport, "_connect", lambda: _Client(0))
    return transport


def test_no_exit_status_is_a_lost_connection(monkeypatch, caplog):
    transport = _transport(_Client(-1), monkeypatch)
    with pytest.raises(TransportError, match=re.escape(
            "connection to cluster.example lost: squeue got no exit status")):
        transport.run(["squeue"])
    with caplog.at_level(logging.INFO, logger="hpcflow.engine"):
        assert transport.run(["squeue"]).returncode == 0  # connected again
    assert "reconnected to cluster.example" in caplog.text


def test_a_failing_command_is_its_own_failure(monkeypatch):
    transport = _transport(_Client(1), monkeypatch)
    assert transport.run(["squeue"]).returncode == 1
