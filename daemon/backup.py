"""Online backups of the store, kept by the daemon, and putting one back.

The daemon copies the store into ``$HPCFLOW_HOME/backups/store-TIME.db`` with SQLite's
online backup (readers and the daemon's own writes go on) when the last copy is older than
``daemon.backup_interval`` and the store changed since; each copy is checked
(``quick_check``) before it replaces its temporary name, and the newest
``daemon.backups`` are kept. ``hpcflow store restore`` puts one back while no daemon runs
(``restore``). Between cycles the daemon also cuts the write-ahead log back
(``StoreKeeper.between_cycles``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path

from hpcflow.daemon.store import BACKUP_DIR, STORE_FILE, Store
from hpcflow.errors import StoreError

log = logging.getLogger("hpcflow.engine")

#: The files of a store: the database, its write-ahead log and the log's index.
STORE_FILES = (STORE_FILE, f"{STORE_FILE}-wal", f"{STORE_FILE}-shm")
#: Copies made when the daemon found its store deleted or replaced (never pruned).
RESCUED = "-rescued"
#: Between cycles a write-ahead log larger than this is checkpointed and cut to nothing
#: (above SQLite's own checkpoints, every 1000 pages: only a large transaction leaves one).
WAL_TRUNCATE_AT = 16 << 20


def backups(home: Path) -> list[Path]:
    """The backups of the store of ``home``, newest first."""
    folder = home / BACKUP_DIR
    if not folder.is_dir():
        return []
    return sorted(folder.glob("store-*.db"), key=lambda p: p.stat().st_mtime, reverse=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_backup(store: Store, home: Path, keep: int | None = None, label: str = "") -> Path:
    """Copy the store into ``backups/`` (0600, checked, then renamed into place); then keep
    the newest ``keep`` ordinary backups. Returns the new backup's path."""
    folder = home / BACKUP_DIR
    folder.mkdir(mode=0o700, exist_ok=True)
    now = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}"
    target = folder / f"store-{stamp}{label}.db"
    tmp = folder / f".{target.name}.tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.close(os.open(tmp, os.O_CREAT | os.O_WRONLY, 0o600))
    try:
        store.backup_to(tmp)
        _fsync(tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    if keep is not None:
        ordinary = [p for p in backups(home) if RESCUED not in p.name]
        for old in ordinary[max(keep, 1):]:
            with contextlib.suppress(FileNotFoundError):
                old.unlink()
    return target


def _changed_at(home: Path) -> float:
    """When the store (or its write-ahead log) was last written."""
    times = []
    for name in STORE_FILES[:2]:
        with contextlib.suppress(FileNotFoundError):
            times.append((home / name).stat().st_mtime)
    return max(times, default=0.0)


class StoreKeeper:
    """What the daemon does for its store between cycles: the periodic backup, and cutting
    the write-ahead log back once it outgrew ``WAL_TRUNCATE_AT`` (a large transaction; SQLite
    itself only cuts it back to ``JOURNAL_SIZE_LIMIT``)."""

    def __init__(self, store: Store, home: Path, interval: float, keep: int) -> None:
        self.store = store
        self.home = home
        self.interval = interval
        self.keep = keep
        newest = backups(home)
        self.last_backup = newest[0].stat().st_mtime if newest else 0.0

    def between_cycles(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        wal = self.home / f"{STORE_FILE}-wal"
        with contextlib.suppress(FileNotFoundError):
            if wal.stat().st_size > WAL_TRUNCATE_AT and self.store.checkpoint():
                log.info("write-ahead log of the store checkpointed and truncated")
        if self.interval <= 0 or now - self.last_backup < self.interval:
            return
        if _changed_at(self.home) <= self.last_backup:
            return
        started = time.time()
        try:
            path = make_backup(self.store, self.home, self.keep)
        except (OSError, StoreError) as exc:
            # Retried at the next interval; the store itself is checked at every start.
            log.error("backup of the store failed: %s", exc)
            self.last_backup = now
            return
        self.last_backup = path.stat().st_mtime
        log.info("store backed up to %s in %.2f s", path, time.time() - started)


def check_backup(path: Path) -> None:
    """Raise ``StoreError`` unless ``path`` is a readable store that passes ``quick_check``."""
    import sqlite3

    if not path.is_file():
        raise StoreError(f"no backup at {path}: see 'ls {path.parent}'")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            problems = [r[0] for r in conn.execute("PRAGMA quick_check(5)")]
            conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        problems = [str(exc)]
    if problems != ["ok"]:
        raise StoreError(f"the backup {path} is damaged too ({'; '.join(problems)}): name an "
                         f"older one (hpcflow store restore FILE; see 'ls {path.parent}')")


def restore(home: Path, source: Path | None) -> tuple[Path, Path | None]:
    """Put ``source`` (else the newest backup) in place of the store of ``home``; the caller
    holds the engine lock. Returns (the backup used, where the replaced store was moved)."""
    if source is None:
        found = backups(home)
        if not found:
            raise StoreError(f"no backups in {home / BACKUP_DIR}: the daemon makes one every "
                             "daemon.backup_interval seconds, and 'hpcflow store backup' one "
                             "at once")
        source = found[0]
    check_backup(source)
    moved: Path | None = None
    present = [name for name in STORE_FILES if (home / name).exists()]
    if present:
        moved = home / f"replaced-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}"
        moved.mkdir(mode=0o700)
        for name in present:
            os.replace(home / name, moved / name)
    tmp = home / f".{STORE_FILE}.restoring"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
        while chunk := src.read(1 << 20):
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, home / STORE_FILE)
    return source, moved


def check_at_start(store: Store) -> None:
    """Refuse to serve a store that fails ``quick_check`` (the daemon stops, saying so)."""
    problems = store.quick_check()
    if problems:
        from hpcflow.daemon.store import RESTORE_HINT

        raise StoreError(f"the store {store.path} is damaged (quick_check: "
                         f"{'; '.join(problems[:3])}): the daemon does not serve it; "
                         f"{RESTORE_HINT}")


def rescue(store: Store, home: Path, lost: StoreError) -> str:
    """The daemon's store was deleted or replaced under it: copy what its connection still
    reads (the old file stays readable while open) into ``backups/``; the line to report."""
    try:
        path = make_backup(store, home, label=RESCUED)
    except Exception as exc:
        return f"{lost}; its contents could not be saved ({type(exc).__name__}: {exc})"
    return (f"{lost}; the daemon stopped and saved what it had to {path} "
            f"('hpcflow store restore {path}' puts that back)")
