"""One line for a failure of the store or the filesystem, instead of a traceback.

Every ``hpcflow`` command goes through ``explain`` when SQLite or the operating system
refuses something: the line names the file and says what to do.

>>> import errno, sqlite3
>>> from pathlib import Path
>>> explain(sqlite3.DatabaseError("database disk image is malformed"), Path("/h/store.db"))[:70]
'the store /h/store.db is damaged (database disk image is malformed): s'
>>> explain(OSError(errno.ENOSPC, "No space left on device", "/h/logs/x"), Path("/h/store.db"))
'/h/logs/x: no space left on device: free space on its filesystem, then run the command again'
"""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

from hpcflow.daemon.store import RESTORE_HINT


def _sqlite_line(exc: sqlite3.Error, store: Path) -> str:
    text = str(exc)
    lower = text.lower()
    if "locked" in lower or "busy" in lower:
        return (f"the store {store} stayed locked ({text}): another process holds a long "
                "write; try again (the daemon's log: 'hpcflow daemon logs')")
    if "full" in lower:
        return (f"the store {store} cannot grow ({text}): free space on the filesystem of "
                f"{store.parent}, then run the command again")
    if "readonly" in lower or "read-only" in lower:
        return (f"the store {store} is read-only for you ({text}): it must be yours with mode "
                "600 on a writable filesystem")
    if "unable to open" in lower:
        return (f"cannot open the store {store} ({text}): {store.parent} must exist and be "
                "yours")
    if "disk i/o" in lower:
        return (f"reading or writing the store {store} failed ({text}): check the filesystem "
                f"of {store.parent}; if its -wal file was deleted, {RESTORE_HINT}")
    if isinstance(exc, (sqlite3.ProgrammingError, sqlite3.InterfaceError)):
        return (f"hpcflow misused the store {store} ({type(exc).__name__}: {text}): please "
                "report it")
    other_host = _leader_elsewhere(store)
    if other_host:  # a page read while the leader wrote it: not damage
        return (f"reading the store {store} failed ({text}) while host {other_host}, which "
                f"leads this home, was writing it over a shared file system: run the command "
                f"again (or on {other_host}); 'hpcflow doctor' on {other_host} checks the store")
    return f"the store {store} is damaged ({text}): {RESTORE_HINT}"


def _leader_elsewhere(store: Path) -> str | None:
    """The leader's host, when the home is shared between hosts and this is not it."""
    try:
        from hpcflow.daemon.fs_kind import home_file_system
        from hpcflow.daemon.leader import leader_elsewhere

        if not home_file_system(store.parent).shared:
            return None
        lease = leader_elsewhere(store.parent)
    except OSError:
        return None
    return lease.host if lease is not None else None


#: What to do, by errno (the error's own text says what went wrong).
_OS_TODO = {
    errno.ENOSPC: "free space on its filesystem, then run the command again",
    errno.EDQUOT: "free space (or ask for more quota), then run the command again",
    errno.EACCES: "it must belong to you (see its owner and mode)",
    errno.EPERM: "it must belong to you (see its owner and mode)",
    errno.EROFS: "point HPCFLOW_HOME at a writable filesystem",
    errno.EISDIR: "hpcflow expects a file there: move the directory away",
    errno.ENOTDIR: "a part of the path is not a directory: move that file away",
    errno.EIO: "check the disk and the filesystem",
    errno.EPIPE: "the output was closed before the command finished",
}


def _os_line(exc: OSError) -> str:
    what = (exc.strerror or str(exc)).rstrip(".")
    todo = _OS_TODO.get(exc.errno or -1)
    line = f"{exc.filename}: {what[:1].lower()}{what[1:]}" if exc.filename is not None \
        else what
    return f"{line}: {todo}" if todo else line


def explain(exc: BaseException, store: Path) -> str:
    """The line to print for ``exc`` (an ``sqlite3.Error`` or an ``OSError``)."""
    if isinstance(exc, sqlite3.Error):
        return _sqlite_line(exc, store)
    if isinstance(exc, OSError):
        return _os_line(exc)
    return f"{type(exc).__name__}: {exc}"
