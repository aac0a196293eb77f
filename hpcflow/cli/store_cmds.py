"""``hpcflow store backup | restore``, and the store's part of ``hpcflow doctor``."""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from pathlib import Path

import click

from hpcflow.errors import StoreError


def _home() -> Path:
    from hpcflow.settings import home

    return home()


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def check_store(home: Path, backup_interval: float) -> list[str]:
    """The store's checks that passed (it opens, ``quick_check``, its schema, the size of
    its write-ahead log, its backups); raises ``StoreError`` saying what to do at the first
    that does not. Read-only: nothing is created or migrated."""
    from hpcflow.daemon.backup import backups
    from hpcflow.daemon.store import (
        BACKUP_DIR,
        JOURNAL_SIZE_LIMIT,
        RESTORE_HINT,
        SCHEMA_VERSION,
        STORE_FILE,
    )

    path = home / STORE_FILE
    found = backups(home)
    if not path.exists():
        if found:
            raise StoreError(f"the store {path} is missing and {home / BACKUP_DIR} holds "
                             "backups of it: 'hpcflow store restore' puts the newest back")
        return [f"no store yet at {path} (the first submission makes it)"]
    passed = []
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            problems = [r[0] for r in conn.execute("PRAGMA quick_check(5)")]
            row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"the store {path} cannot be read ({exc}): {RESTORE_HINT}") from None
    if problems != ["ok"]:
        raise StoreError(f"the store {path} is damaged (quick_check: {'; '.join(problems)}): "
                         f"{RESTORE_HINT}")
    passed.append(f"{path} passes quick_check ({path.stat().st_size / 2**20:.1f} MiB)")
    version = int(row[0]) if row else 0
    if version > SCHEMA_VERSION:
        raise StoreError(f"the store {path} has schema version {version}, newer than this "
                         f"hpcflow ({SCHEMA_VERSION}): upgrade hpcflow")
    passed.append(f"schema version {version}" + (
        "" if version == SCHEMA_VERSION else f" (brought to {SCHEMA_VERSION} when next used)"))
    wal = path.with_name(f"{STORE_FILE}-wal")
    if wal.exists():
        size = wal.stat().st_size
        note = (" (warning: more than the limit; the daemon cuts it back between cycles)"
                if size > 2 * JOURNAL_SIZE_LIMIT else "")
        passed.append(f"write-ahead log {size / 2**20:.1f} MiB{note}")
    if not found:
        passed.append("no backup yet (warning: the daemon makes one every "
                      f"{backup_interval:.0f} s while the store changes; 'hpcflow store "
                      "backup' makes one now)" if backup_interval else
                      "no backup (warning: daemon.backup_interval is 0)")
    else:
        age = time.time() - found[0].stat().st_mtime
        stale = " (warning: older than twice daemon.backup_interval)" \
            if backup_interval and age > 2 * backup_interval else ""
        passed.append(f"newest backup {found[0]} is {_age(age)} old{stale}; "
                      f"{len(found)} kept")
    return passed


@click.group()
def store() -> None:
    """The store of this $HPCFLOW_HOME: back it up, put a backup back."""


@store.command(name="backup")
def store_backup() -> None:
    """Copy the store into $HPCFLOW_HOME/backups now (safe while the daemon runs)."""
    from hpcflow.config_file import load_config
    from hpcflow.daemon.backup import make_backup
    from hpcflow.daemon.store import Store

    home = _home()
    kept = load_config(home).backups
    opened = Store.open(home)
    try:
        path = make_backup(opened, home, keep=kept)
    finally:
        opened.close()
    click.echo(f"store backed up to {path}")


@store.command(name="restore")
@click.argument("backup", required=False, type=click.Path(dir_okay=False))
def store_restore(backup: str | None) -> None:
    """Put BACKUP (default: the newest in $HPCFLOW_HOME/backups) in place of the store.

    Refuses while a daemon runs. The store it replaces is moved to
    $HPCFLOW_HOME/replaced-TIME/, not deleted."""
    from hpcflow.daemon.backup import restore
    from hpcflow.daemon.engine import engine_pid, try_lock
    from hpcflow.daemon.leader import LeaderLease, NotLeaderError

    home = _home()
    if not home.is_dir():
        raise StoreError(f"no hpcflow home at {home}: nothing to restore into")
    lock = try_lock(home)  # held while restoring: no daemon starts meanwhile
    if lock is None:
        raise StoreError(f"a daemon runs for {home} (pid {engine_pid(home)}): stop it with "
                         "'hpcflow daemon stop', then run 'hpcflow store restore' again")
    # and no engine of another login node that shares this home (the leader lease)
    lease = LeaderLease(home)
    try:
        lease.acquire()
    except NotLeaderError as exc:
        os.close(lock)
        raise StoreError(f"{exc}: stop the daemon there, then run 'hpcflow store restore' "
                         "again") from None
    try:
        source, moved = restore(home, Path(backup).absolute() if backup else None)
    finally:
        lease.release()
        os.close(lock)
    taken = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(source.stat().st_mtime))
    click.echo(f"restored {source} (taken {taken}) into {home / 'store.db'}")
    if moved is not None:
        click.echo(f"the store it replaced was moved to {moved}")
    click.echo("what happened after the backup was taken is not in it: steps that ran since "
               "may run again", err=True)
    sys.exit(0)
