"""The ``Transport`` protocol: run a command and move files on a machine.

Schedulers build argument lists; transports never see a shell string made of
user text (the SSH transport quotes each argument itself).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class TransportError(OSError):
    """The machine could not be reached (a dropped connection): retried, never a step failure."""


class CommandTimeout(TransportError):
    """A command ran past its timeout and was killed (a scheduler's controller under load,
    say): slowness, retried later, never a step failure."""


class Transport(Protocol):
    #: True when paths on the machine are this machine's paths (no copies needed).
    shares_files: bool

    def run(self, argv: list[str], timeout: float = 120.0,
            input_text: str | None = None) -> CommandResult:
        """Run ``argv`` on the machine; raises ``TransportError`` if it cannot be reached."""

    def write_files(self, directory: str, files: dict[str, bytes]) -> None:
        """Create ``directory`` (and parents) and write ``files`` into it, each atomically (a
        name may hold ``/``: its folders are made too)."""

    def read_file(self, path: str, max_bytes: int | None = None) -> bytes | None:
        """The file's bytes (the last ``max_bytes`` of them), or None if it does not exist."""

    def list_files(self, path: str) -> list[str]:
        """Every file under ``path`` (``[path]`` for a file, ``[]`` if nothing is there)."""

    def close(self) -> None:
        """Release connections."""
