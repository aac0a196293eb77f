"""One leader host per home: a lease that works where ``flock`` does not reach across
hosts (NFS, GPFS, Lustre, FUSE).

A home seen from several login nodes (a systemd daemon on login1, a cron ``tick`` that
lands on login2) must have one engine writing its store. The lease is a file per epoch in
``$HPCFLOW_HOME/leader/``: ``epoch-N`` is created with ``O_EXCL`` (atomic on every file
system hpcflow supports, NFS included), so of two hosts claiming epoch N one wins. The
holder of the highest epoch leads, and proves it is alive by rewriting its file with a
growing ``beat`` every few seconds.

Expiry does not compare clocks across hosts: another host calls a lease expired when it has
seen the same ``(epoch, beat)`` for longer than ``ttl`` seconds by its own clock (its
observations are kept in ``seen-HOST.json``, so a once-a-minute ``tick`` judges the same
way as a waiting daemon). On the leader's own host a lease whose process is gone is taken
at once (that host's engine lock says no engine of its runs).

Fencing: the new leader writes its epoch into the store (``meta.leader_epoch``) as its first
write, and every write transaction of an engine checks it (``Store.fence``): a leader that
wakes up after losing its lease (SIGSTOP, a frozen VM) fails its next transaction instead
of writing, and stops. Its runners' claim files still make sure no step runs twice.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from hpcflow.errors import HpcflowError

LEADER_DIR = "leader"
#: Seconds a lease may go without a beat before another host takes over.
DEFAULT_TTL = 30.0
#: Old epoch files kept (the rest are removed by the leader).
KEEP_EPOCHS = 3


class NotLeaderError(HpcflowError):
    """Another host leads this home now."""


class FencedError(NotLeaderError):
    """This engine's lease was taken over: it must not write anything more."""


@dataclass(frozen=True)
class Lease:
    epoch: int
    host: str
    pid: int
    beat: int
    #: The holder's wall clock at the last beat (shown to people; never compared).
    at: float
    #: Given up by a leader that stopped cleanly: the next engine takes over at once.
    released: bool = False

    def describe(self) -> str:
        return f"host {self.host} (pid {self.pid}, epoch {self.epoch})"


def this_host() -> str:
    return socket.gethostname()


def _epoch_of(name: str) -> int | None:
    if name.startswith("epoch-") and name[6:].isdigit():
        return int(name[6:])
    return None


def current_lease(folder: Path) -> Lease | None:
    """The lease of the highest epoch (None: no leader was ever elected)."""
    try:
        epochs = sorted((e for e in (_epoch_of(n) for n in os.listdir(folder)) if e),
                        reverse=True)
    except FileNotFoundError:
        return None
    for epoch in epochs:
        try:
            data = json.loads((folder / f"epoch-{epoch}").read_text())
            return Lease(epoch=epoch, host=str(data["host"]), pid=int(data["pid"]),
                         beat=int(data["beat"]), at=float(data["at"]),
                         released=bool(data.get("released", False)))
        except (OSError, ValueError, KeyError):
            continue  # being created right now (empty): the next one down still tells
    return None


def live_leader(home: Path) -> Lease | None:
    """The lease of the engine that leads ``home`` (None: none ever did, or it stopped)."""
    lease = current_lease(home / LEADER_DIR)
    return None if lease is None or lease.released else lease


def leader_elsewhere(home: Path) -> Lease | None:
    """The live lease of a leader on another host than this one, if there is one."""
    lease = live_leader(home)
    return lease if lease is not None and lease.host != this_host() else None


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LeaderLease:
    """This process's view of the lease of ``home``: acquire it, beat, check it."""

    def __init__(self, home: Path, ttl: float = DEFAULT_TTL, host: str | None = None) -> None:
        self.folder = home / LEADER_DIR
        self.ttl = ttl
        self.host = host or this_host()
        self.mine: Lease | None = None

    # -- observing other hosts ------------------------------------------------------------
    def _seen_path(self) -> Path:
        return self.folder / f"seen-{self.host}.json"

    def expired(self, lease: Lease, now: float | None = None) -> bool:
        """Whether ``lease`` went without a beat for ``ttl`` seconds, as this host saw it."""
        now = time.time() if now is None else now
        if lease.released or (lease.host == self.host and not _pid_alive(lease.pid)):
            return True  # given up, or its engine on this host is gone
        path = self._seen_path()
        try:
            seen = json.loads(path.read_text())
        except (OSError, ValueError):
            seen = {}
        if seen.get("epoch") == lease.epoch and seen.get("beat") == lease.beat:
            return now - float(seen.get("since", now)) > self.ttl
        self.folder.mkdir(mode=0o700, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps({"epoch": lease.epoch, "beat": lease.beat, "since": now}))
        os.replace(tmp, path)
        return False

    # -- leading --------------------------------------------------------------------------
    def acquire(self) -> Lease:
        """Take the lease (a new epoch), or raise ``NotLeaderError`` naming the leader."""
        self.folder.mkdir(mode=0o700, exist_ok=True)
        current = current_lease(self.folder)
        if current is not None and not self.expired(current):
            ago = time.time() - current.at
            raise NotLeaderError(
                f"{current.describe()} leads this home (last beat {ago:.0f} s ago); no "
                f"engine runs on {self.host} while that lease is fresh (it expires "
                f"{self.ttl:.0f} s after its last beat)")
        epoch = (current.epoch if current else 0) + 1
        lease = Lease(epoch, self.host, os.getpid(), 0, time.time())
        path = self.folder / f"epoch-{epoch}"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise NotLeaderError(f"another host took epoch {epoch} of this home's lease at "
                                 "the same moment") from None
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(asdict(lease)))
            f.flush()
            os.fsync(f.fileno())
        self.mine = lease
        self._prune(epoch)
        return lease

    def beat(self) -> None:
        """Prove this leader alive; ``FencedError`` if a higher epoch took over."""
        self.check()
        assert self.mine is not None
        lease = Lease(self.mine.epoch, self.host, os.getpid(), self.mine.beat + 1, time.time())
        path = self.folder / f"epoch-{lease.epoch}"
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(asdict(lease)))
        os.replace(tmp, path)
        self.mine = lease

    def check(self) -> None:
        """``FencedError`` unless this process still holds the highest epoch."""
        if self.mine is None:
            raise FencedError("this engine holds no lease")
        current = current_lease(self.folder)
        if current is None or current.epoch != self.mine.epoch:
            who = current.describe() if current else "nobody"
            raise FencedError(f"this engine's lease (epoch {self.mine.epoch}) was taken over "
                              f"by {who}: it stops without writing anything more")

    def release(self) -> None:
        """On a clean stop: let the next engine (any host) take over at once."""
        if self.mine is None:
            return
        with contextlib.suppress(OSError, FencedError):
            self.check()
            lease = Lease(self.mine.epoch, self.host, os.getpid(), self.mine.beat + 1,
                          time.time(), released=True)
            path = self.folder / f"epoch-{lease.epoch}"
            tmp = path.with_name(f".{path.name}.{os.getpid()}")
            tmp.write_text(json.dumps(asdict(lease)))
            os.replace(tmp, path)
        self.mine = None

    def _prune(self, epoch: int) -> None:
        for name in os.listdir(self.folder):
            old = _epoch_of(name)
            if old is not None and old <= epoch - KEEP_EPOCHS:
                with contextlib.suppress(OSError):
                    (self.folder / name).unlink()


def wait_for_lease(lease: LeaderLease, stopping: Callable[[], bool],
                   give_up_after: float | None = None) -> bool:
    """Standby: try to take the lease every few seconds until it is ours (True), or until
    ``stopping()`` or ``give_up_after`` seconds have passed (False)."""
    started = time.monotonic()
    while not stopping():
        try:
            lease.acquire()
            return True
        except FencedError:
            raise
        except NotLeaderError:
            pass
        if give_up_after is not None and time.monotonic() - started > give_up_after:
            return False
        time.sleep(min(5.0, lease.ttl / 6))
    return False
