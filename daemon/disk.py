"""A full (or read-only) disk: say so, say where, and go on.

A write that fails for want of space or permission is a condition of the machine, not a
bug. A step that meets it fails saying "no space left on device" and on which path and
filesystem; the daemon logs it once, shows it in ``hpcflow daemon status``, keeps running
and carries on by itself once writing works again. A small reserve file is given back when
the disk is found full, so that the log line, the status file and a step's result can still
be written; it is taken again once space returns.

>>> import errno
>>> write_error(RuntimeError("wrapped")) is None
True
>>> write_error(OSError(errno.ENOSPC, "No space left on device")).errno == errno.ENOSPC
True
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import time
from pathlib import Path

log = logging.getLogger("hpcflow.engine")

#: A want of space: a full disk or a used-up quota.
SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
#: The errors of a write that the machine refused (full disk, quota, read-only, permission).
WRITE_ERRNOS = SPACE_ERRNOS | {errno.EROFS, errno.EACCES, errno.EPERM}
#: Given back when the disk is full (the daemon's under ``$HPCFLOW_HOME``, a step's in its
#: directory), so that what must be said about it can be written.
RESERVE_FILE = ".space-reserve"
DAEMON_RESERVE = 1 << 20
STEP_RESERVE = 64 << 10
#: A step's reserve is written from here: made once in the fork server, only read by the
#: runners it forks (a fresh 64 KiB buffer per step was 16 more pages for each to fault in).
_STEP_ZEROS = bytes(STEP_RESERVE)


def write_error(exc: BaseException | None,
                errnos: frozenset[int] = WRITE_ERRNOS) -> OSError | None:
    """The refused write (of one of ``errnos``) behind ``exc`` (itself, its cause or its
    context), if there is one; SQLite's "database or disk is full" counts as ENOSPC."""
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, OSError) and exc.errno in errnos:
            return exc
        if type(exc).__module__ == "sqlite3" and "disk is full" in str(exc):
            return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def mount_point(path: Path) -> Path:
    """The mount point of the filesystem ``path`` (or its nearest existing parent) is on."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return path


def filesystem(path: Path) -> str:
    """``filesystem /scratch: 0 B free of 8.0 MiB`` for the filesystem ``path`` is on."""
    mount = mount_point(path)
    try:
        st = os.statvfs(mount)
    except OSError:
        return f"filesystem {mount}"
    return (f"filesystem {mount}: {_size(st.f_bavail * st.f_frsize)} free of "
            f"{_size(st.f_blocks * st.f_frsize)}")


def describe(err: OSError, where: Path) -> str:
    """One line: what was refused, the path (the error's own, else ``where``) and its
    filesystem, e.g. ``no space left on device: /h/runs/x/workdir (filesystem /h: 0 B free
    of 8.0 MiB)``."""
    what = os.strerror(err.errno).lower() if err.errno else str(err)
    named = err.filename2 or err.filename  # a rename's is its target
    path = Path(os.fsdecode(named)) if named else where
    return f"{what}: {path} ({filesystem(path)})"


class Reserve:
    """A file of ``size`` bytes at ``path``, given back when the disk is full. With ``keep``
    (bytes), giving it back shortens the file to that size instead of removing it: what is
    kept is written over in place later (a step's result)."""

    def __init__(self, path: Path, size: int, keep: int | None = None) -> None:
        self.path = path
        self.size = size
        self.keep = keep

    def take(self) -> bool:
        """Make the reserve (True), or leave none if there is no room for it (False)."""
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
        except OSError:
            return False
        try:
            # Written, not fallocate'd: a filesystem with delayed allocation counts written
            # blocks against the free space (and quota) at once but allocates them only at
            # writeback, so the reserve of a short step is given back for almost nothing;
            # freeing fallocate'd extents cost about 1.5 ms per step on ext4 here.
            zeros = _STEP_ZEROS if self.size == STEP_RESERVE else bytes(self.size)
            os.pwrite(fd, zeros, 0)
            return True
        except OSError:
            self.release()
            return False
        finally:
            os.close(fd)

    def release(self) -> None:
        with contextlib.suppress(OSError):
            if self.keep is not None:
                os.truncate(self.path, self.keep)
            else:
                self.path.unlink()


def free_bytes(path: Path) -> int:
    st = os.statvfs(mount_point(path))
    return st.f_bavail * st.f_frsize


def full_disk_note(path: Path) -> str:
    """``"; no space left on device: PATH (filesystem ...)"`` when the filesystem of ``path``
    has (almost) no room left, else ``""``: why a step may have died without a word."""
    try:
        if free_bytes(path) >= STEP_RESERVE:
            return ""
    except OSError:
        return ""
    return "; " + describe(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), path)


class WriteTrouble:
    """What the daemon cannot write now, by source (``engine``, ``status``): logged once
    when it starts and when it ends, and shown by ``hpcflow daemon status``."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.reserve = Reserve(home / RESERVE_FILE, DAEMON_RESERVE)
        self.reserve.take()
        #: source -> (message, since, whether it is a want of space)
        self.problems: dict[str, tuple[str, float, bool]] = {}

    def failed(self, source: str, err: OSError, where: Path | None = None) -> None:
        message = describe(err, where or self.home)
        space = err.errno in SPACE_ERRNOS
        known = self.problems.get(source)
        if known is None or known[0] != message:
            if space:
                self.reserve.release()  # room for this line, the status file, a result
            log.error("%s: hpcflow cannot write there (%s); it keeps running and carries on "
                      "once writing works again", message, source)
        self.problems[source] = (message, known[1] if known else time.time(), space)

    def ok(self, source: str) -> None:
        """``source`` wrote what it had to. A want of space is over only once there is room
        for the reserve and as much again (else writing only works thanks to the reserve)."""
        known = self.problems.get(source)
        if known is None:
            return
        if known[2]:
            try:
                if free_bytes(self.home) < 2 * self.reserve.size:
                    return
            except OSError:
                return
        del self.problems[source]
        log.warning("writing works again after %.0f s (it failed with: %s)",
                    time.time() - known[1], known[0])
        if not self.problems:
            self.reserve.take()

    def report(self) -> dict:
        """``{"problem": ..., "problem_since": ...}`` for the status file (empty if none)."""
        if not self.problems:
            return {}
        return {"problem": "; ".join(sorted({p[0] for p in self.problems.values()})),
                "problem_since": min(p[1] for p in self.problems.values())}


def _padded(text: str, pad: int) -> bytes:
    data = text.encode()
    return data + b" " * (-len(data) % pad)


def write_status_file(path: Path, text: str, pad: int = 4096) -> None:
    """Write ``text`` (JSON) to ``path`` atomically, padded with spaces to whole ``pad``
    blocks (so that ``overwrite_in_place`` needs no new block)."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_bytes(_padded(text, pad))
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def overwrite_in_place(path: Path, text: str, pad: int = 4096) -> None:
    """Rewrite the existing file ``path`` without allocating (a full disk has no block to
    give): only if ``text`` fits in its size; readers may see a torn file meanwhile."""
    data = _padded(text, pad)
    size = path.stat().st_size
    if size < len(data):
        raise OSError(errno.ENOSPC, f"{path} is too small to be rewritten in place")
    with open(path, "r+b") as f:
        f.write(data + b" " * (size - len(data)))
