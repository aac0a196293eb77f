"""What ``hpcflow doctor`` checks of one executor, and how it runs commands there.

A :class:`Target` is one executor: where its jobs run, how it is reached, and which settings
fix what fails. Its :class:`Probe` runs each command once, bounded in time, and keeps the
answer. A check that fails raises :class:`Failed`, whose message is one line for the user.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any

#: Seconds a scheduler's version or help command may take (Slurm without its slurm.conf
#: retries for a minute, having said why at once).
PROBE_SECONDS = 15


class Failed(Exception):
    """One check failed: the message says why and what to do."""


#: Runs a command for at most $1 seconds where ``timeout`` (coreutils) exists.
_BOUNDED = ('limit=$1; shift; if command -v timeout >/dev/null 2>&1; then '
            'exec timeout "$limit" "$@"; fi; exec "$@"')
TIMED_OUT = 124


def shown_command(argv: list[str] | tuple[str, ...]) -> str:
    """A command as the user would type it (a wrapper's ``sh -c SCRIPT`` left out)."""
    if len(argv) > 3 and argv[0] == "sh" and argv[1] == "-c":
        words = [a for a in argv[4:] if not re.search(r"[\s|$]", a)]
        return " ".join(words) or argv[2]
    return shlex.join(argv)


def first_said(done: Any) -> str:
    """The first words a failed command said (stderr first), or its exit status."""
    for text in (done.stderr, done.stdout):
        for line in (text or "").splitlines():
            if line.strip():
                return line.strip()[:200]
    return f"exit {done.returncode}"


class Probe:
    """Commands doctor runs on one machine, each once, each bounded in time."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self._done: dict[tuple[str, ...], Any] = {}

    def path_of(self, command: str, where: str) -> str | None:
        """Where ``command`` is on the machine's PATH (None: it is not)."""
        done = self.run(["sh", "-c", 'command -v "$1"', "sh", command], where, bounded=False)
        found = done.stdout.strip().splitlines()
        return found[0] if done.ok and found else None

    def run(self, argv: list[str], where: str, seconds: int = PROBE_SECONDS,
            bounded: bool = True) -> Any:
        from hpcflow.connectors.transports.base import TransportError

        key = tuple(argv)
        if key not in self._done:
            try:
                self._done[key] = self.transport.run(
                    ["sh", "-c", _BOUNDED, "sh", str(seconds), *argv] if bounded else argv,
                    timeout=seconds + 30)
            except TransportError as exc:
                raise Failed(f"'{shown_command(argv)}' on {where}: {unretried(exc)}") from None
        return self._done[key]


def unretried(exc: BaseException) -> str:
    """A transport's error without its note on the next attempt (doctor makes none)."""
    return re.sub(r" \((?:retrying|next try) in \d+ s\)$", "", str(exc))


@dataclass
class Target:
    """One executor to check: where its jobs run, how it is reached, and which settings of
    the config file fix what fails."""

    name: str
    where: str
    transport: Any
    remote: bool
    work_root: str
    python: str
    #: How to point the work root and the Python elsewhere.
    work_root_fix: str
    python_key: str
    scheduler: str | None = None
    #: The setting that names the scheduler, and whether it takes dpdispatcher's batch_type.
    scheduler_key: str | None = None
    batch_type: bool = False
    #: The runner is shipped into the work root and kept there for the jobs (a machine of
    #: the config file), or only into the check's own directory (removed again).
    keep_runner: bool = True
    #: The settings that say where an SSH server of the machine listens.
    address_keys: str = "its host and port"
    probe: Probe = field(init=False)

    def __post_init__(self) -> None:
        self.probe = Probe(self.transport)
