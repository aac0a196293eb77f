"""The store: one SQLite file per ``$HPCFLOW_HOME``; the only module that writes SQL.

WAL mode with a busy timeout lets any number of CLI readers and submitters work
while the engine writes. Writes go through ``Store.write()`` (``BEGIN
IMMEDIATE``), so a state change and its event row commit together. The file
holds pickled code: the directory is 0700, the file 0600, and a store that
others can write is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import stat
import time
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hpcflow import values
from hpcflow.connectors.executors.base import (
    JOB_TRANSITIONS,
    LIVE_JOB_STATES,
    JobState,
    check_job_transition,
)
from hpcflow.daemon import states
from hpcflow.daemon.exit_handler import ROOT_SLOT
from hpcflow.daemon.fs_kind import home_file_system
from hpcflow.daemon.leader import FencedError
from hpcflow.errors import StoreError

SCHEMA_VERSION = 11
STORE_FILE = "store.db"
#: Where the daemon keeps its online backups of the store (``hpcflow store restore``).
BACKUP_DIR = "backups"
#: The write-ahead log is cut back to this size once checkpointed (it would otherwise keep
#: the size of the largest transaction it ever held).
JOURNAL_SIZE_LIMIT = 32 << 20
#: What a damaged store's message tells the user to do.
RESTORE_HINT = ("stop the daemon ('hpcflow daemon stop') and put back the last backup with "
                "'hpcflow store restore' ('hpcflow doctor' checks the store)")


#: A leaf step's owner (``s``: the step, ``p``: its parent): the Steps/DAG step that made it,
#: its loop's parent when it is a loop item.
_OWNER = "CASE WHEN p.type = 'StepGroup' THEN p.parent_id ELSE p.id END"
_OWNER_TEMPLATE = ("CASE WHEN p.type = 'StepGroup' THEN (SELECT g.template FROM steps g "
                   "WHERE g.id = p.parent_id) ELSE p.template END")


#: The job states of live jobs, as an SQL list (``JobState`` values, no user input).
_LIVE_JOBS = ", ".join(f"'{state.value}'" for state in sorted(LIVE_JOB_STATES))
#: For each job state, the states a job may reach it from (``JOB_TRANSITIONS`` reversed).
_JOB_PREDECESSORS = {new: sorted(old for old, news in JOB_TRANSITIONS.items()
                                 if old is not None and new in news) for new in JobState}

class StoreLostError(StoreError):
    """The store file (or its write-ahead log) was deleted or replaced under an open
    connection: what is written now would go to a file nobody will read again."""


def _create_schema_v1(conn: sqlite3.Connection) -> None:
    import sqlite_utils

    db = sqlite_utils.Database(conn)
    db.table("meta").create({"key": str, "value": str}, pk="key", if_not_exists=True)
    db.table("workflows").create(
        {"id": str, "name": str, "phase": str, "spec": str, "labels": str, "storage": str,
         "created_at": float, "started_at": float, "finished_at": float, "message": str,
         "root_step": int},
        pk="id", if_not_exists=True,
    )
    db.table("blobs").create({"digest": str, "data": bytes}, pk="digest", if_not_exists=True)
    db.table("steps").create(
        {"id": int, "workflow_id": str, "parent_id": int, "slot": str, "name": str,
         "template": str, "type": str, "phase": str, "key": str, "inputs": str,
         "outputs": str, "spec": str, "reason": str, "attempt": int, "created_at": float,
         "started_at": float, "finished_at": float, "progress_total": int,
         "progress_current": int},
        pk="id", if_not_exists=True,
    )
    db.table("jobs").create(
        {"id": int, "step_id": int, "workflow_id": str, "executor": str, "name": str,
         "state": str, "native_id": str, "step_dir": str, "created_at": float,
         "submitted_at": float, "finished_at": float, "exit_code": int, "detail": str},
        pk="id", if_not_exists=True,
    )
    db.table("events").create(
        {"id": int, "at": float, "workflow_id": str, "step_id": int, "kind": str,
         "from_phase": str, "to_phase": str, "detail": str},
        pk="id", if_not_exists=True,
    )
    db.table("requests").create(
        {"id": int, "at": float, "workflow_id": str, "kind": str, "payload": str,
         "handled_at": float},
        pk="id", if_not_exists=True,
    )
    db.table("workflows").create_index(["phase"], if_not_exists=True)
    db.table("steps").create_index(["workflow_id", "parent_id", "slot"], unique=True,
                             if_not_exists=True)
    db.table("steps").create_index(["workflow_id", "phase", "type"], if_not_exists=True)
    db.table("steps").create_index(["parent_id", "phase"], if_not_exists=True)
    db.table("steps").create_index(["workflow_id", "key"], if_not_exists=True)
    db.table("steps").create_index(["workflow_id", "name"], if_not_exists=True)
    db.table("jobs").create_index(["name"], unique=True, if_not_exists=True)
    db.table("jobs").create_index(["state"], if_not_exists=True)
    db.table("jobs").create_index(["step_id"], if_not_exists=True)
    db.table("events").create_index(["workflow_id"], if_not_exists=True)
    db.table("requests").create_index(["handled_at"], if_not_exists=True)


def _add_depth_and_log_tail_v2(conn: sqlite3.Connection) -> None:
    """Steps know how deep they are nested (recursion limit) and keep their log's last lines."""
    import sqlite_utils

    steps = sqlite_utils.Database(conn).table("steps")
    steps.add_column("depth", int, not_null_default=0)
    steps.add_column("log_tail", str)
    sqlite_utils.Database(conn).table("jobs").add_column("deadline", float)


def _add_suspended_and_pruned_v3(conn: sqlite3.Connection) -> None:
    """Workflows can be suspended (no new jobs) and pruned by ``hpcflow gc``."""
    import sqlite_utils

    workflows = sqlite_utils.Database(conn).table("workflows")
    workflows.add_column("suspended", int, not_null_default=0)
    workflows.add_column("pruned_at", float)
    workflows.create_index(["finished_at"], if_not_exists=True)


def _add_step_executor_v4(conn: sqlite3.Connection) -> None:
    """Leaf steps know their executor, so that Ready steps are picked per executor."""
    import sqlite_utils

    steps = sqlite_utils.Database(conn).table("steps")
    steps.add_column("executor", str, not_null_default="local")
    steps.create_index(["phase", "type", "executor"], if_not_exists=True)


def _add_job_pack_v5(conn: sqlite3.Connection) -> None:
    """Jobs packed into one scheduler job (``group_size``) share a pack name."""
    import sqlite_utils

    jobs = sqlite_utils.Database(conn).table("jobs")
    jobs.add_column("pack", str)
    jobs.create_index(["pack"], if_not_exists=True)


def _add_parameter_values_v6(conn: sqlite3.Connection) -> None:
    """Large parameter values are stored once, by SHA-256, and referenced from the rows that
    use them (``hpcflow.values``); values stored inline before stay valid as they are."""
    conn.execute("CREATE TABLE IF NOT EXISTS parameter_values (sha256 TEXT PRIMARY KEY, "
                 "bytes INTEGER NOT NULL, data BLOB NOT NULL)")


def _add_children_order_index_v7(conn: sqlite3.Connection) -> None:
    """A container's last child is found without sorting all of them (the planner reads
    only the last started group of a Steps)."""
    conn.execute("CREATE INDEX IF NOT EXISTS idx_steps_parent_id_id ON steps (parent_id, id)")


def _add_run_seconds_v8(conn: sqlite3.Connection) -> None:
    """A retried step's earlier attempts' running time, so that its duration counts its
    attempts, not the gaps between them (``started_at`` is its latest attempt's start)."""
    columns = {r[1] for r in conn.execute("PRAGMA table_info(steps)")}
    if "run_seconds" not in columns:  # (a migration may run again on a store it ran on)
        conn.execute("ALTER TABLE steps ADD COLUMN run_seconds REAL NOT NULL DEFAULT 0")


def _step_ids_never_reused_v9(conn: sqlite3.Connection) -> None:
    """Step ids are never given again: jobs, events, job names and step directories name
    steps by id, and a step removed to be planned anew (a retry, a restart) must not hand
    its id, and so its old step directory and ``result.json``, to the next step made.
    SQLite reuses the largest rowid after a delete unless the key is ``AUTOINCREMENT``,
    which a table gets only when it is made: the table is rebuilt once, and its sequence
    starts above every id that jobs and events have seen."""
    (sql,) = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type='table' AND name='steps'").fetchone()
    if "AUTOINCREMENT" in sql.upper():
        return
    rebuilt, found = re.subn(r'([\["]?id[\]"]?\s+INTEGER\s+PRIMARY\s+KEY)', r"\1 AUTOINCREMENT",
                             sql, count=1, flags=re.IGNORECASE)
    if not found:
        raise StoreError(f"unexpected schema of the steps table: {sql}")
    rebuilt = re.sub(r'^CREATE TABLE\s+[\["]?steps[\]"]?', "CREATE TABLE steps_v9", rebuilt,
                     flags=re.IGNORECASE)
    indexes = [r[0] for r in conn.execute(
        "SELECT sql FROM sqlite_master WHERE type='index' AND tbl_name='steps' "
        "AND sql IS NOT NULL")]
    conn.execute(rebuilt)
    conn.execute("INSERT INTO steps_v9 SELECT * FROM steps")
    conn.execute("DROP TABLE steps")
    conn.execute("ALTER TABLE steps_v9 RENAME TO steps")
    for index in indexes:
        conn.execute(index)
    (seen,) = conn.execute(
        "SELECT MAX(COALESCE((SELECT MAX(id) FROM steps), 0), "
        "COALESCE((SELECT MAX(step_id) FROM jobs), 0), "
        "COALESCE((SELECT MAX(step_id) FROM events), 0))").fetchone()
    conn.execute("DELETE FROM sqlite_sequence WHERE name='steps'")
    conn.execute("INSERT INTO sqlite_sequence(name, seq) VALUES ('steps', ?)", (seen,))


def _add_deleted_prefixes_v10(conn: sqlite3.Connection) -> None:
    """A deleted workflow whose artifacts a kept workflow still used (``resubmit --reuse``):
    its storage, so that they are removed when the last such workflow is pruned."""
    conn.execute("CREATE TABLE IF NOT EXISTS deleted_prefixes (workflow_id TEXT PRIMARY KEY, "
                 "storage TEXT NOT NULL)")


def _add_tips_v11(conn: sqlite3.Connection) -> None:
    """Advice the engine has for a workflow's user (``hpcflow status`` shows it), once per
    topic: a table of its own rather than events, which a workflow of 100,000 steps has
    hundreds of thousands of."""
    conn.execute("CREATE TABLE IF NOT EXISTS tips (workflow_id TEXT NOT NULL, topic TEXT NOT "
                 "NULL, at REAL NOT NULL, text TEXT NOT NULL, PRIMARY KEY (workflow_id, topic))")


#: version -> function bringing the schema from version-1 to version.
MIGRATIONS = {1: _create_schema_v1, 2: _add_depth_and_log_tail_v2,
              3: _add_suspended_and_pruned_v3, 4: _add_step_executor_v4, 5: _add_job_pack_v5,
              6: _add_parameter_values_v6, 7: _add_children_order_index_v7,
              8: _add_run_seconds_v8, 9: _step_ids_never_reused_v9,
              10: _add_deleted_prefixes_v10, 11: _add_tips_v11}


def _check_private(path: Path, what: str) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise StoreError(
            f"refusing to use {what} {path}: it is writable by other users (mode "
            f"{stat.S_IMODE(mode):04o}) and the store holds pickled code; fix with: "
            f"chmod {'700' if what == 'directory' else '600'} {path}"
        )


def prepare_home(home: Path) -> Path:
    """Create ``home`` (0700) or check an existing one (``hpcflow.privacy.secure_home``);
    its real path."""
    from hpcflow.privacy import UntrustedPathError, secure_home

    try:
        return secure_home(home)
    except UntrustedPathError as exc:
        raise StoreError(str(exc)) from None


def _lost_message(path: Path, name: str, what: str) -> str:
    return (f"the store {path.with_name(name)} was {what} while in use: nothing more is "
            f"written to it; if that was not meant, stop every hpcflow process of "
            f"{path.parent} and put back the last backup with 'hpcflow store restore'")


def _refuse_new_store_beside_backups(path: Path) -> None:
    """A missing store next to backups of it was lost, not never made: an empty store made
    silently in its place would look like every workflow vanished."""
    backups = path.parent / BACKUP_DIR
    if backups.is_dir() and any(backups.glob("store-*.db")):
        raise StoreError(f"the store {path} is missing but {backups} holds backups of it: "
                         f"put the last one back with 'hpcflow store restore', or move "
                         f"{backups} away to start with an empty store")


def _jsonify(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


#: Phases a step leaves for a new attempt (a retry: back to Pending or Running; a restart
#: of a succeeded step).
RETRIED_FROM = frozenset({states.RUNNING, states.FAILED, states.ERROR, states.SUCCEEDED})

#: A SHA-256 in hex, as stored values and OP pickles are named.
_DIGEST = re.compile(r"\b[0-9a-f]{64}\b")

#: A step's latest job (``s`` the step): its executor, native id, directory and state.
_LATEST_JOB_COLUMNS = ("j.executor AS job_executor, j.native_id, j.step_dir, "
                       "j.state AS job_state")
_LATEST_JOB_JOIN = "LEFT JOIN jobs j ON j.id = (SELECT max(id) FROM jobs WHERE step_id = s.id)"
#: A step's row for ``hpcflow get``, the graph and the dashboard: no inputs or outputs.
_OUTLINE_SELECT = (
    "SELECT s.id, s.parent_id, s.name, s.key, s.type, s.phase, s.reason, s.attempt, "
    "s.created_at, s.started_at, s.finished_at, s.progress_current, s.progress_total, "
    "s.run_seconds, s.executor, s.log_tail, " + _LATEST_JOB_COLUMNS + " FROM steps s "
    + _LATEST_JOB_JOIN)
#: Ids bound in one ``IN (...)`` (SQLite allowed 999 bound parameters before 3.32).
MAX_IDS_PER_QUERY = 500


def _id_chunks(ids: Sequence[int]) -> Iterator[tuple[list[int], str]]:
    """``ids`` in chunks of ``MAX_IDS_PER_QUERY``, each with its ``?,?,...`` placeholders."""
    for start in range(0, len(ids), MAX_IDS_PER_QUERY):
        chunk = [int(i) for i in ids[start:start + MAX_IDS_PER_QUERY]]
        yield chunk, ",".join("?" * len(chunk))


class Store:
    """A connection to the store with typed helpers for every query the engine and SDK make."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        #: (device, inode) of the store file and of its write-ahead log as first seen.
        self._identity: dict[str, tuple[int, int]] = {}
        #: On a file system shared between hosts (rollback journal; one leader host writes).
        self.shared = False
        #: The engine's check that it still leads (``claim_leadership``), run in every write
        #: transaction before anything is written; None for clients.
        self.fence_epoch: int | None = None
        self.check_file()

    @classmethod
    def open(cls, home: Path) -> Store:
        home = prepare_home(home)
        path = home / STORE_FILE
        if not path.exists():
            _refuse_new_store_beside_backups(path)
            fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
        _check_private(path, "store")
        # WAL needs memory shared by every process that opens the store: not across the hosts
        # of a network file system, where the rollback journal is used (daemon/fs_kind.py)
        shared = home_file_system(home).shared
        try:
            conn = sqlite3.connect(str(path), timeout=60.0, isolation_level=None,
                                   check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout = 60000")
            conn.execute(f"PRAGMA journal_mode = {'DELETE' if shared else 'WAL'}")
            conn.execute(f"PRAGMA synchronous = {'FULL' if shared else 'NORMAL'}")
            conn.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open the store {path} ({exc}): {RESTORE_HINT}") from exc
        store = cls(conn, path)
        store.shared = shared
        store.migrate()
        return store

    def close(self) -> None:
        self.conn.close()

    # -- schema -----------------------------------------------------------------
    def schema_version(self) -> int:
        try:
            row = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        except sqlite3.OperationalError:
            return 0
        return int(row[0]) if row else 0

    def migrate(self) -> None:
        current = self.schema_version()
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"the store {self.path} has schema version {current}, newer than this hpcflow "
                f"({SCHEMA_VERSION}): upgrade hpcflow"
            )
        if current == SCHEMA_VERSION:
            return
        with self.write() as conn:
            current = self.schema_version()
            for version in range(current + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[version](conn)
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)",
                         (str(SCHEMA_VERSION),))

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT, rolled back on error)."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            if self.fence_epoch is not None:
                self._check_fence()
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def _leader_epoch(self) -> int:
        row = self.conn.execute("SELECT value FROM meta WHERE key='leader_epoch'").fetchone()
        return int(row[0]) if row else 0

    def _check_fence(self) -> None:
        stored = self._leader_epoch()
        if stored != self.fence_epoch:
            raise FencedError(f"this engine led with epoch {self.fence_epoch}, the store now "
                              f"belongs to epoch {stored}: it stops without writing")

    def claim_leadership(self, epoch: int) -> None:
        """Record ``epoch`` as the store's leader (the fencing token): from now on a write
        transaction of an engine with an older epoch fails before it writes anything."""
        with self.write() as conn:
            stored = self._leader_epoch()
            if stored > epoch:
                raise FencedError(f"the store already belongs to epoch {stored}, newer than "
                                  f"this engine's {epoch}")
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('leader_epoch', ?)",
                         (str(epoch),))
        self.fence_epoch = epoch

    def integrity_ok(self) -> bool:
        return self.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    def quick_check(self) -> list[str]:
        """SQLite's ``quick_check`` (structure and page checks, not index contents): the
        problems it found, none for a sound store; a store it cannot even read is one."""
        try:
            rows = [r[0] for r in self.conn.execute("PRAGMA quick_check(20)")]
        except sqlite3.DatabaseError as exc:
            return [str(exc)]
        return [] if rows == ["ok"] else rows

    def check_file(self) -> None:
        """Raise ``StoreLostError`` if ``store.db`` or its ``-wal`` file is no longer the
        file this connection has open (deleted, moved away or replaced by another file)."""
        for name in (STORE_FILE, f"{STORE_FILE}-wal"):
            try:
                st = os.stat(self.path.with_name(name))
            except FileNotFoundError:
                if name in self._identity:
                    raise StoreLostError(_lost_message(self.path, name, "deleted")) from None
                continue
            seen = self._identity.setdefault(name, (st.st_dev, st.st_ino))
            if seen != (st.st_dev, st.st_ino):
                raise StoreLostError(_lost_message(self.path, name, "replaced by another file"))

    def checkpoint(self) -> bool:
        """Copy the write-ahead log into the store and cut it to nothing, unless a reader
        needs it right now (never waits); True if it was cut."""
        self.conn.execute("PRAGMA busy_timeout = 0")
        try:
            busy = self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        except sqlite3.OperationalError:
            busy = 1
        finally:
            self.conn.execute("PRAGMA busy_timeout = 60000")
        return not busy

    def backup_to(self, target: Path) -> None:
        """A consistent copy of the store in ``target`` (SQLite's online backup: readers and
        the writer go on meanwhile), checked with ``quick_check`` before it is kept."""
        copy = sqlite3.connect(str(target))
        try:
            self.conn.backup(copy)
            problems = [r[0] for r in copy.execute("PRAGMA quick_check(5)")]
        finally:
            copy.close()
        if problems != ["ok"]:
            raise StoreError(f"the backup {target} of {self.path} fails its check "
                             f"({'; '.join(problems)}): the store itself may be damaged; "
                             f"{RESTORE_HINT}")

    # -- events -----------------------------------------------------------------
    @staticmethod
    def add_event(conn: sqlite3.Connection, workflow_id: str, kind: str, step_id: int | None = None,
                  from_phase: str | None = None, to_phase: str | None = None,
                  detail: str | None = None) -> None:
        conn.execute(
            "INSERT INTO events(at, workflow_id, step_id, kind, from_phase, to_phase, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (time.time(), workflow_id, step_id, kind, from_phase, to_phase, detail),
        )

    @staticmethod
    def add_tip(conn: sqlite3.Connection, workflow_id: str, topic: str, text: str) -> bool:
        """Record advice for a workflow's user, unless it has a tip on ``topic`` already;
        True when it was new."""
        return conn.execute("INSERT OR IGNORE INTO tips(workflow_id, topic, at, text) "
                            "VALUES (?, ?, ?, ?)",
                            (workflow_id, topic, time.time(), text)).rowcount > 0

    def tips(self, workflow_id: str) -> list[str]:
        """The workflow's tips, oldest first (none from a store an older daemon keeps,
        which has no table for them yet)."""
        try:
            return [r[0] for r in self.conn.execute(
                "SELECT text FROM tips WHERE workflow_id=? ORDER BY at", (workflow_id,))]
        except sqlite3.OperationalError:
            return []

    # -- workflows --------------------------------------------------------------
    def insert_workflow(self, wf_id: str, name: str, spec: dict, blobs: dict[str, bytes],
                        storage: dict, labels: dict, if_absent: bool = False) -> sqlite3.Row | None:
        """Store a new Pending workflow. With ``if_absent``, a live or succeeded workflow of
        the same name wins (checked in the same transaction): it is returned, nothing stored."""
        with self.write() as conn:
            if if_absent:
                existing = conn.execute(
                    "SELECT * FROM workflows WHERE name=? AND phase IN "
                    "('Pending', 'Running', 'Succeeded') ORDER BY created_at DESC LIMIT 1",
                    (name,)).fetchone()
                if existing is not None:
                    return existing
            states.check_workflow_transition(None, states.PENDING)
            for digest, data in blobs.items():
                conn.execute("INSERT OR IGNORE INTO blobs(digest, data) VALUES (?, ?)",
                             (digest, data))
            conn.execute(
                "INSERT INTO workflows(id, name, phase, spec, labels, storage, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (wf_id, name, states.PENDING, self._spec_text(conn, spec), json.dumps(labels),
                 json.dumps(storage), time.time()),
            )
            self.add_event(conn, wf_id, "workflow", to_phase=states.PENDING, detail="submitted")
        return None

    def live_or_succeeded_named(self, name: str) -> sqlite3.Row | None:
        """The newest live or succeeded workflow called ``name`` (``--if-absent``)."""
        row: sqlite3.Row | None = self.conn.execute(
            "SELECT * FROM workflows WHERE name=? AND phase IN "
            "('Pending', 'Running', 'Succeeded') ORDER BY created_at DESC LIMIT 1",
            (name,)).fetchone()
        return row

    def set_workflow_phase(self, conn: sqlite3.Connection, wf_id: str, new: str,
                           message: str | None = None, root_step: int | None = None) -> None:
        row = conn.execute("SELECT phase FROM workflows WHERE id=?", (wf_id,)).fetchone()
        current = row["phase"] if row else None
        states.check_workflow_transition(current, new)
        now = time.time()
        conn.execute(
            "UPDATE workflows SET phase=?, message=COALESCE(?, message), "
            "root_step=COALESCE(?, root_step), "
            "started_at=CASE WHEN ?='Running' AND started_at IS NULL THEN ? ELSE started_at END, "
            "finished_at=CASE WHEN ? IN ('Succeeded','Failed','Error','Terminated') THEN ? "
            "ELSE finished_at END WHERE id=?",
            (new, message, root_step, new, now, new, now, wf_id),
        )
        self.add_event(conn, wf_id, "workflow", from_phase=current, to_phase=new, detail=message)

    def reopen_workflow(self, conn: sqlite3.Connection, wf_id: str, detail: str,
                        restart: bool = False) -> None:
        """A failed workflow runs again (``hpcflow retry``): Running, no end time;
        ``restart``: a succeeded one too (steps of it restarted on the user's request)."""
        row = conn.execute("SELECT phase FROM workflows WHERE id=?", (wf_id,)).fetchone()
        states.check_workflow_transition(row["phase"], states.RUNNING, restart=restart)
        conn.execute("UPDATE workflows SET phase=?, finished_at=NULL, message=NULL WHERE id=?",
                     (states.RUNNING, wf_id))
        self.add_event(conn, wf_id, "workflow", from_phase=row["phase"], to_phase=states.RUNNING,
                       detail=detail)

    def set_suspended(self, conn: sqlite3.Connection, wf_id: str, suspended: bool) -> bool:
        """Suspend (no new jobs start) or resume a workflow; False if nothing changed."""
        cur = conn.execute("UPDATE workflows SET suspended=? WHERE id=? AND suspended!=?",
                           (int(suspended), wf_id, int(suspended)))
        if cur.rowcount:
            self.add_event(conn, wf_id, "workflow",
                           detail="suspended" if suspended else "resumed")
        return bool(cur.rowcount)

    def mark_pruned(self, wf_id: str) -> None:
        with self.write() as conn:
            conn.execute("UPDATE workflows SET pruned_at=? WHERE id=?", (time.time(), wf_id))
            self.add_event(conn, wf_id, "workflow", detail="step directories and artifacts "
                                                           "pruned by hpcflow gc")

    def delete_workflow(self, wf_id: str) -> None:
        """Remove a finished workflow's records (steps, jobs, events, requests), then the
        stored values and OP pickles (by digest) no other workflow refers to. The digests
        are looked for in the other workflows' text (a scan: deleting is rare)."""
        digests = set()
        texts = [r[0] for r in self.conn.execute(
            "SELECT spec FROM workflows WHERE id=? UNION ALL SELECT inputs FROM steps WHERE "
            "workflow_id=? UNION ALL SELECT outputs FROM steps WHERE workflow_id=?",
            (wf_id, wf_id, wf_id)) if r[0]]
        for text in texts:
            digests.update(_DIGEST.findall(text))
        # objects a kept workflow still uses stay under its prefix: remember where they are
        still_used = bool(self.kept_texts_naming(f"wf/{wf_id}/"))
        with self.write() as conn:
            if still_used:
                conn.execute(
                    "INSERT OR REPLACE INTO deleted_prefixes(workflow_id, storage) "
                    "SELECT id, storage FROM workflows WHERE id=?", (wf_id,))
            for table in ("events", "requests", "jobs", "steps", "tips"):
                conn.execute(f"DELETE FROM {table} WHERE workflow_id=?", (wf_id,))
            conn.execute("DELETE FROM workflows WHERE id=?", (wf_id,))
            for digest in digests:
                used = conn.execute(
                    "SELECT EXISTS(SELECT 1 FROM workflows WHERE instr(spec, ?)) OR "
                    "EXISTS(SELECT 1 FROM steps WHERE instr(inputs, ?) OR instr(outputs, ?) "
                    "OR instr(spec, ?))", (digest,) * 4).fetchone()[0]
                if not used:
                    conn.execute("DELETE FROM parameter_values WHERE sha256=?", (digest,))
                    conn.execute("DELETE FROM blobs WHERE digest=?", (digest,))

    def deleted_prefix_storage(self, wf_id: str) -> str | None:
        """The storage (JSON) of a deleted workflow whose artifacts were still used."""
        row = self.conn.execute("SELECT storage FROM deleted_prefixes WHERE workflow_id=?",
                                (wf_id,)).fetchone()
        return None if row is None else str(row[0])

    def forget_deleted_prefix(self, wf_id: str) -> None:
        with self.write() as conn:
            conn.execute("DELETE FROM deleted_prefixes WHERE workflow_id=?", (wf_id,))

    def kept_texts_naming(self, needle: str) -> list[str]:
        """The JSON (workflow spec, step inputs, outputs, spec) of unpruned workflows that
        holds ``needle``: what ``hpcflow gc`` must keep of a workflow's artifacts."""
        kept = "JOIN workflows w ON w.id = s.workflow_id WHERE w.pruned_at IS NULL"
        return [r[0] for r in self.conn.execute(
            "SELECT spec FROM workflows WHERE pruned_at IS NULL AND instr(spec, ?1) "
            f"UNION ALL SELECT s.inputs FROM steps s {kept} AND instr(s.inputs, ?1) "
            f"UNION ALL SELECT s.outputs FROM steps s {kept} AND instr(s.outputs, ?1) "
            f"UNION ALL SELECT s.spec FROM steps s {kept} AND instr(s.spec, ?1)", (needle,))]

    def workflow(self, wf_id: str) -> sqlite3.Row | None:
        return self.conn.execute("SELECT * FROM workflows WHERE id=?", (wf_id,)).fetchone()

    def existing_workflow(self, wf_id: str) -> sqlite3.Row:
        row = self.workflow(wf_id)
        if row is None:
            raise StoreError(f"workflow {wf_id} is missing from the store {self.path}")
        return row

    def workflows_near(self, text: str, limit: int = 3) -> list[sqlite3.Row]:
        """Workflows, newest first, that ``text`` may have meant: named ``text`` (an id is the
        name and five characters), or whose id starts with it."""
        prefix = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return self.conn.execute(
            "SELECT id, phase FROM workflows WHERE name=? OR id LIKE ? ESCAPE '\\' "
            "ORDER BY created_at DESC LIMIT ?", (text, prefix, limit)).fetchall()

    def workflows(self, phase: str | None = None, limit: int | None = None,
                  since: float | None = None, labels: dict[str, str] | None = None,
                  finished_before: float | None = None) -> list[sqlite3.Row]:
        """Workflows, newest first: of a phase, created since a time, carrying every given
        label, or finished before a time (``hpcflow gc``)."""
        sql = ("SELECT id, name, phase, labels, created_at, started_at, finished_at, message, "
               "suspended, pruned_at FROM workflows")
        where: list[str] = []
        args: list[Any] = []
        if phase:
            where.append("phase=?")
            args.append(phase)
        if since is not None:
            where.append("created_at>=?")
            args.append(since)
        if finished_before is not None:
            where.append("finished_at<?")
            args.append(finished_before)
        for key, value in (labels or {}).items():
            where.append("json_extract(labels, ?) = ?")
            args += ['$."' + key.replace('"', '') + '"', value]
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return self.conn.execute(sql, args).fetchall()

    def has_live_workflows(self) -> bool:
        return bool(self.conn.execute(
            "SELECT EXISTS(SELECT 1 FROM workflows WHERE phase IN ('Pending', 'Running'))"
        ).fetchone()[0])

    def count_live_workflows(self) -> int:
        row = self.conn.execute(
            "SELECT count(*) FROM workflows WHERE phase IN ('Pending', 'Running')").fetchone()
        return int(row[0])

    def live_workflow_ids(self, phase: str) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT id FROM workflows WHERE phase=?", (phase,))]

    # -- parameter values stored once, by digest -----------------------------------
    def put_value(self, conn: sqlite3.Connection, raw: bytes) -> str:
        """Store a value's bytes (once: by SHA-256); its digest. Written through SQLite's
        blob I/O in pieces: binding the whole value would copy it once more in memory."""
        digest = hashlib.sha256(raw).hexdigest()
        blobopen = getattr(conn, "blobopen", None)  # Python 3.11+
        if blobopen is None:
            conn.execute("INSERT OR IGNORE INTO parameter_values(sha256, bytes, data) "
                         "VALUES (?, ?, ?)", (digest, len(raw), raw))
            return digest
        cur = conn.execute("INSERT OR IGNORE INTO parameter_values(sha256, bytes, data) "
                           "VALUES (?, ?, zeroblob(?))", (digest, len(raw), len(raw)))
        if cur.rowcount and raw:
            with blobopen("parameter_values", "data", int(cur.lastrowid or 0)) as blob:
                view = memoryview(raw)
                for start in range(0, len(raw), 1 << 20):
                    blob.write(view[start:start + (1 << 20)])
        return digest

    def read_value(self, info: dict) -> bytes:
        """The bytes of a stored value (``info``: a reference's ``{"sha256", ...}``), read
        through blob I/O (no second copy of the whole value in SQLite's memory)."""
        row = self.conn.execute("SELECT rowid FROM parameter_values WHERE sha256=?",
                                (info["sha256"],)).fetchone()
        if row is None:
            raise StoreError(f"parameter value {info['sha256']} is missing from the store "
                             f"{self.path}: {RESTORE_HINT}")
        blobopen = getattr(self.conn, "blobopen", None)  # Python 3.11+
        if blobopen is None:
            return bytes(self.conn.execute("SELECT data FROM parameter_values WHERE rowid=?",
                                           (row[0],)).fetchone()[0])
        with blobopen("parameter_values", "data", int(row[0]), readonly=True) as blob:
            data: bytes = blob.read()
        return data

    def _io_text(self, conn: sqlite3.Connection, io: dict | None) -> str | None:
        """A step's inputs or outputs as stored: each large parameter (and a loop's large
        list of items) by reference."""
        text = _jsonify(io)
        if text is None or len(text) <= values.INLINE_LIMIT or not io:
            return text

        def put(raw: bytes) -> str:
            return self.put_value(conn, raw)

        stored = dict(io)
        if "parameters" in io:
            stored["parameters"] = {name: values.externalize(v, put)
                                    for name, v in (io["parameters"] or {}).items()}
        if "items" in io:
            stored["items"] = values.externalize(io["items"], put)
        return json.dumps(stored)

    def _spec_text(self, conn: sqlite3.Connection, spec: dict | None) -> str | None:
        """A workflow's or step's spec as stored: each large constant by reference."""
        text = _jsonify(spec)
        if text is None or len(text) <= values.INLINE_LIMIT:
            return text
        return json.dumps(values.externalize_values(spec, lambda raw: self.put_value(conn, raw)))

    def blob(self, digest: str) -> bytes:
        row = self.conn.execute("SELECT data FROM blobs WHERE digest=?", (digest,)).fetchone()
        if row is None:
            raise StoreError(f"blob {digest} is missing from the store")
        return bytes(row[0])

    # -- steps ------------------------------------------------------------------
    def insert_step(self, conn: sqlite3.Connection, wf_id: str, parent_id: int, slot: str,
                    name: str, template: str, type_: str, phase: str, inputs: dict,
                    spec: dict | None, key: str | None = None, reason: str | None = None,
                    outputs: dict | None = None, depth: int = 0,
                    executor: str = "local") -> int | None:
        """Insert a step unless its (parent, slot) exists; returns the new id or None."""
        states.check_step_transition(None, phase)
        now = time.time()
        final = phase in states.STEP_FINAL
        cur = conn.execute(
            "INSERT OR IGNORE INTO steps(workflow_id, parent_id, slot, name, template, type, "
            "phase, key, inputs, outputs, spec, reason, attempt, created_at, started_at, "
            "finished_at, depth, executor) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?)",
            (wf_id, parent_id, slot, name, template, type_, phase, key,
             self._io_text(conn, inputs), self._io_text(conn, outputs),
             self._spec_text(conn, spec), reason, now,
             now if phase == states.RUNNING or final else None, now if final else None, depth,
             executor),
        )
        if cur.rowcount == 0:
            return None
        step_id = int(cur.lastrowid or 0)
        self.add_event(conn, wf_id, "step", step_id, None, phase, reason)
        return step_id

    def set_step_phase(self, conn: sqlite3.Connection, step_id: int, current: str, new: str,
                       outputs: dict | None = None, reason: str | None = None,
                       workflow_id: str | None = None, restart: bool = False) -> bool:
        """Move a step from ``current`` to ``new``; False when it was no longer ``current``.
        ``restart``: a user's restart of a succeeded step (``states.STEP_RESTARTS``)."""
        states.check_step_transition(current, new, restart=restart)
        now = time.time()
        if current in RETRIED_FROM and new in states.STEP_LIVE:
            # a new attempt: the last one's running time is kept, its start forgotten (the
            # gap until the next start is not the step's running time)
            conn.execute(
                "UPDATE steps SET run_seconds = run_seconds + CASE WHEN started_at IS NULL "
                "THEN 0 ELSE MAX(0, COALESCE(finished_at, ?) - started_at) END, "
                "started_at = NULL WHERE id=? AND phase=?", (now, step_id, current))
        cur = conn.execute(
            "UPDATE steps SET phase=?, outputs=COALESCE(?, outputs), reason=COALESCE(?, reason), "
            "started_at=CASE WHEN ?='Running' THEN COALESCE(started_at, ?) ELSE started_at END, "
            "finished_at=CASE WHEN ? IN ('Succeeded','Failed','Error','Skipped','Omitted') "
            "THEN ? ELSE NULL END WHERE id=? AND phase=?",
            (new, self._io_text(conn, outputs), reason, new, now, new, now, step_id, current),
        )
        if cur.rowcount == 0:
            return False
        wf = workflow_id or conn.execute(
            "SELECT workflow_id FROM steps WHERE id=?", (step_id,)).fetchone()[0]
        self.add_event(conn, wf, "step", step_id, current, new, reason)
        return True

    def set_queue_state(self, conn: sqlite3.Connection, step_id: int, wf_id: str,
                        current: str, new: str, reason: str | None) -> bool:
        """A submitted step as its job was last seen: Pending with why it waits in the
        queue, or Running (reason cleared) from when the job started; False when the step
        was no longer ``current``. A reason alone changing writes no event."""
        if new != current:
            states.check_step_transition(current, new)
        cur = conn.execute(
            "UPDATE steps SET phase=?, reason=?, started_at=CASE WHEN ?='Running' "
            "THEN COALESCE(started_at, ?) ELSE started_at END WHERE id=? AND phase=?",
            (new, reason, new, time.time(), step_id, current))
        if cur.rowcount and new != current:
            self.add_event(conn, wf_id, "step", step_id, current, new,
                           reason or "its job started")
        return bool(cur.rowcount)

    def retry_step(self, conn: sqlite3.Connection, step_id: int, wf_id: str, reason: str,
                   current: str = states.RUNNING) -> None:
        """Back to Pending for another attempt (a new job, a new step directory); a step
        still Pending (its job ended before a poll saw it start) only gets the new attempt."""
        if current == states.PENDING:
            self.set_queue_state(conn, step_id, wf_id, current, current, reason)
        else:
            self.set_step_phase(conn, step_id, current, states.PENDING, reason=reason,
                                workflow_id=wf_id)
        conn.execute("UPDATE steps SET attempt = attempt + 1, outputs = NULL WHERE id=?",
                     (step_id,))

    def reset_step(self, conn: sqlite3.Connection, step_id: int, current: str, new: str,
                   wf_id: str, new_attempt: bool, restart: bool = False) -> None:
        """A retried step: back to ``new`` with no outputs, reason or log tail; a leaf step
        gets a new attempt (a new job and step directory). ``restart``: a succeeded one."""
        self.set_step_phase(conn, step_id, current, new, reason="restart" if restart else "retry",
                            workflow_id=wf_id, restart=restart)
        conn.execute(
            "UPDATE steps SET outputs=NULL, reason=NULL, log_tail=NULL, progress_current=NULL, "
            "progress_total=NULL, attempt=attempt + ? WHERE id=?",
            (1 if new_attempt else 0, step_id))

    def remove_step(self, conn: sqlite3.Connection, step_id: int, wf_id: str,
                    detail: str) -> None:
        """Drop a step row so the planner creates it anew (its events stay)."""
        row = conn.execute("SELECT phase FROM steps WHERE id=?", (step_id,)).fetchone()
        conn.execute("DELETE FROM steps WHERE id=?", (step_id,))
        self.add_event(conn, wf_id, "step", step_id, row["phase"] if row else None, None, detail)

    def retry_rows(self, wf_id: str) -> list[Any]:
        """Every step of the workflow with whether it ever had a job (``plan_retry``)."""
        return self.conn.execute(
            "SELECT s.id, s.parent_id, s.type, s.phase, "
            "EXISTS(SELECT 1 FROM jobs j WHERE j.step_id = s.id) AS ran, s.slot, s.template "
            "FROM steps s WHERE s.workflow_id=?", (wf_id,)).fetchall()

    def set_progress(self, conn: sqlite3.Connection, step_id: int, current: int,
                     total: int) -> None:
        conn.execute("UPDATE steps SET progress_current=?, progress_total=? WHERE id=?",
                     (current, total, step_id))

    def set_log_tail(self, conn: sqlite3.Connection, step_id: int, tail: str | None) -> None:
        conn.execute("UPDATE steps SET log_tail=? WHERE id=?", (tail, step_id))

    def step(self, step_id: int) -> sqlite3.Row | None:
        return self.conn.execute("SELECT * FROM steps WHERE id=?", (step_id,)).fetchone()

    def step_states(self, step_ids: list[int]) -> dict[int, tuple[str, str | None]]:
        """Step id -> (phase, reason), for the given steps that exist."""
        found: dict[int, tuple[str, str | None]] = {}
        for chunk, marks in _id_chunks(step_ids):
            for row in self.conn.execute(
                    f"SELECT id, phase, reason FROM steps WHERE id IN ({marks})", chunk):
                found[row["id"]] = (row["phase"], row["reason"])
        return found

    def root_step_id(self, wf_id: str) -> int:
        """The root step of a started workflow (a missing one is a bug, not a user error)."""
        row = self.top_step(wf_id, ROOT_SLOT)
        if row is None:
            raise LookupError(f"workflow {wf_id} has no root step")
        return int(row["id"])

    def top_step(self, wf_id: str, slot: str) -> sqlite3.Row | None:
        """A step without a parent: the root (slot ``root``) or the exit handler
        (``onExit``)."""
        return self.conn.execute(
            "SELECT * FROM steps WHERE workflow_id=? AND parent_id=0 AND slot=?",
            (wf_id, slot)).fetchone()

    def failed_steps(self, wf_id: str, before_id: int | None = None) -> list[sqlite3.Row]:
        """The workflow's Failed and Errored steps (made before step ``before_id``), in the
        order they were made."""
        sql = ("SELECT id, name, template, phase, reason, finished_at FROM steps "
               "WHERE workflow_id=? AND phase IN (?, ?)")
        args: list[Any] = [wf_id, states.FAILED, states.ERROR]
        if before_id is not None:
            sql += " AND id < ?"
            args.append(before_id)
        return self.conn.execute(sql + " ORDER BY id", args).fetchall()

    def live_job_executors(self) -> tuple[list[str], float | None]:
        """The executors with jobs past their intent, and the earliest job deadline."""
        marks = ", ".join("?" * 3)
        row = self.conn.execute(
            f"SELECT group_concat(DISTINCT executor), min(deadline) FROM jobs "
            f"WHERE state IN ({marks})", (JobState.SUBMITTED.value, JobState.QUEUED.value,
                                          JobState.RUNNING.value)).fetchone()
        if not row or not row[0]:
            return [], None
        return str(row[0]).split(","), row[1]

    def job(self, job_id: int) -> sqlite3.Row | None:
        return self.conn.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()

    def existing_step(self, step_id: int) -> sqlite3.Row:
        """A step the engine knows exists (a missing one is a bug, not a user error)."""
        row = self.step(step_id)
        if row is None:
            raise StoreError(f"step {step_id} is missing from the store {self.path}")
        return row

    def has_live_children(self, parent_id: int) -> bool:
        """Whether a step has a Pending or Running child (one index probe, however many)."""
        return self.conn.execute(
            "SELECT 1 FROM steps WHERE parent_id=? AND phase IN ('Pending','Running') LIMIT 1",
            (parent_id,)).fetchone() is not None

    def last_child_slot(self, parent_id: int) -> str | None:
        """The slot of a step's most recently made child."""
        row = self.conn.execute("SELECT slot FROM steps WHERE parent_id=? ORDER BY id DESC "
                                "LIMIT 1", (parent_id,)).fetchone()
        return None if row is None else str(row[0])

    def children_in_slots(self, wf_id: str, parent_id: int, low: str,
                          high: str) -> list[sqlite3.Row]:
        """A step's children whose slots sort in ``[low, high)`` (a Steps' group)."""
        return self.conn.execute(
            "SELECT * FROM steps WHERE workflow_id=? AND parent_id=? AND slot>=? AND slot<? "
            "ORDER BY id", (wf_id, parent_id, low, high)).fetchall()

    def child_in_slot(self, wf_id: str, parent_id: int, slot: str) -> sqlite3.Row | None:
        return self.conn.execute(
            "SELECT * FROM steps WHERE workflow_id=? AND parent_id=? AND slot=?",
            (wf_id, parent_id, slot)).fetchone()

    def loop_items_outline(self, parent_id: int) -> Iterator[sqlite3.Row]:
        """A loop's items as its end is planned on: outputs, and of their spec only what
        says how they count (a slice group); streamed, not fetched all at once."""
        yield from self.conn.execute(
            "SELECT id, slot, name, template, type, phase, reason, depth, NULL AS inputs, "
            "outputs, json_extract(spec, '$.slice_group') AS slice_group FROM steps "
            "WHERE parent_id=? ORDER BY id", (parent_id,))

    def children_outline(self, parent_id: int) -> list[sqlite3.Row]:
        """A step's children without their inputs and outputs, and with their spec only
        where a failure makes it matter (``continue_on_failed``): what a DAG is planned on,
        with no JSON decoded for the steps that went well."""
        return self.conn.execute(
            "SELECT id, slot, name, template, type, phase, reason, depth, NULL AS inputs, "
            "NULL AS outputs, CASE WHEN phase IN ('Failed','Error','Omitted') THEN spec END "
            "AS spec FROM steps WHERE parent_id=? ORDER BY id", (parent_id,)).fetchall()

    def step_executor_spec(self, executor: str) -> dict | None:
        """The executor spec (``Step(executor=...)``) of a step that runs on ``executor``: how
        to reach a machine that a workflow, not the config file, describes."""
        row = self.conn.execute("SELECT spec FROM steps WHERE executor=? AND type='Pod' "
                                "ORDER BY id DESC LIMIT 1", (executor,)).fetchone()
        if row is None or not row[0]:
            return None
        found = json.loads(row[0]).get("executor")
        return found if isinstance(found, dict) else None

    def ready_executors(self) -> list[str]:
        """The executors that Pending leaf steps wait for: one index probe per executor
        (a DISTINCT would walk every Pending step, each cycle)."""
        found: list[str] = []
        while True:
            row = self.conn.execute(
                "SELECT executor FROM steps WHERE phase='Pending' AND type='Pod' AND "
                "executor>? ORDER BY executor LIMIT 1", (found[-1] if found else "",)).fetchone()
            if row is None:
                return found
            found.append(row[0])

    def ready_pods(self, executor: str, limit: int, full_owners: Collection[int] = (),
                   full_workflows: Collection[str] = ()) -> list[sqlite3.Row]:
        """Pending leaf steps for ``executor`` of running, unsuspended workflows that have no
        live job yet, oldest first, each with its ``owner`` (the Steps/DAG step that made it:
        its parent, or its loop's parent) and the owner's template (``owner_template``);
        none of the owners and workflows that are full (``daemon/parallelism.py``)."""
        owners = ",".join(str(int(o)) for o in full_owners)
        workflows = ",".join("?" for _ in full_workflows)
        return self.conn.execute(
            f"SELECT s.*, {_OWNER} AS owner, {_OWNER_TEMPLATE} AS owner_template "
            "FROM steps s JOIN workflows w ON w.id = s.workflow_id "
            "LEFT JOIN steps p ON p.id = s.parent_id "
            "WHERE s.phase='Pending' AND s.type='Pod' AND s.executor=? AND w.phase='Running' "
            "AND w.suspended=0 AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.step_id = s.id "
            f"AND j.state IN ({_LIVE_JOBS})) "
            + (f"AND COALESCE({_OWNER}, 0) NOT IN ({owners}) " if owners else "")
            + (f"AND s.workflow_id NOT IN ({workflows}) " if workflows else "")
            + "ORDER BY s.id LIMIT ?",
            (executor, *full_workflows, limit),
        ).fetchall()

    def live_pods_by_owner(self) -> list[sqlite3.Row]:
        """Leaf steps with a live job, counted by workflow and owner (``ready_pods``):
        ``workflow_id, owner, owner_template, n``."""
        return self.conn.execute(
            f"SELECT s.workflow_id, {_OWNER} AS owner, {_OWNER_TEMPLATE} AS owner_template, "
            "count(*) AS n FROM jobs j JOIN steps s ON s.id = j.step_id "
            "LEFT JOIN steps p ON p.id = s.parent_id "
            f"WHERE j.state IN ({_LIVE_JOBS}) GROUP BY s.workflow_id, owner"
        ).fetchall()

    def running_containers(self) -> list[int]:
        return [r[0] for r in self.conn.execute(
            "SELECT s.id FROM steps s JOIN workflows w ON w.id = s.workflow_id "
            "WHERE w.phase='Running' AND s.phase='Running' AND s.type != 'Pod'")]

    def query_steps(self, wf_id: str, phase: str | None = None, key: str | None = None,
                    step_id: int | None = None, type_: str | None = None,
                    name_like: str | None = None) -> list[sqlite3.Row]:
        sql = "SELECT * FROM steps WHERE workflow_id=?"
        args: list[Any] = [wf_id]
        for column, value in (("phase", phase), ("key", key), ("id", step_id), ("type", type_)):
            if value is not None:
                sql += f" AND {column}=?"
                args.append(value)
        if name_like is not None:
            sql += " AND name LIKE ?"
            args.append(name_like)
        return self.conn.execute(sql + " ORDER BY id", args).fetchall()

    def iter_steps(self, wf_id: str, phase: str | None = None) -> Iterator[sqlite3.Row]:
        """A workflow's steps in id order, streamed (``hpcflow steps`` on 100,000 steps holds
        one at a time)."""
        sql = ("SELECT s.*, " + _LATEST_JOB_COLUMNS + " FROM steps s " + _LATEST_JOB_JOIN
               + " WHERE s.workflow_id=?" + (" AND s.phase=?" if phase else ""))
        yield from self.conn.execute(sql + " ORDER BY s.id",
                                     (wf_id, phase) if phase else (wf_id,))

    def iter_step_outline(self, wf_id: str) -> Iterator[sqlite3.Row]:
        """A workflow's steps in id order, streamed, without their inputs and outputs, each
        with its latest job's executor, native id and directory (``hpcflow get``: one index
        probe per step)."""
        yield from self.conn.execute(
            _OUTLINE_SELECT + " WHERE s.workflow_id=? ORDER BY s.id", (wf_id,))

    def step_outline_page(self, wf_id: str, after_id: int = 0, limit: int = 1000
                          ) -> list[sqlite3.Row]:
        """Up to ``limit`` rows of ``iter_step_outline`` after step ``after_id`` (the
        dashboard pages a large workflow: one index range per page)."""
        return self.conn.execute(
            _OUTLINE_SELECT + " WHERE s.workflow_id=? AND s.id>? ORDER BY s.id LIMIT ?",
            (wf_id, after_id, int(limit))).fetchall()

    def step_outline_rows(self, step_ids: Sequence[int]) -> list[sqlite3.Row]:
        """The ``iter_step_outline`` rows of these steps, in no particular order."""
        rows: list[sqlite3.Row] = []
        for chunk, marks in _id_chunks(step_ids):
            rows += self.conn.execute(_OUTLINE_SELECT + f" WHERE s.id IN ({marks})", chunk)
        return rows

    def iter_step_shape(self, wf_id: str) -> Iterator[sqlite3.Row]:
        """(id, parent_id, type, phase) of a workflow's steps in id order, streamed: the
        shape of its tree without the rest of each row."""
        yield from self.conn.execute(
            "SELECT id, parent_id, type, phase FROM steps WHERE workflow_id=? ORDER BY id",
            (wf_id,))

    @contextmanager
    def read_snapshot(self) -> Iterator[None]:
        """Several reads that see one state of the store. Only with WAL: under the rollback
        journal of a shared home a long read would hold the engine's writes back, and the
        reads go without one."""
        if self.shared:
            yield
            return
        self.conn.execute("BEGIN")
        try:
            yield
        finally:
            self.conn.execute("COMMIT")

    def step_with_job(self, step_id: int) -> sqlite3.Row | None:
        """A step row with its latest job's executor, native id, directory and state."""
        return self.conn.execute(
            "SELECT s.*, " + _LATEST_JOB_COLUMNS + " FROM steps s " + _LATEST_JOB_JOIN
            + " WHERE s.id=?", (step_id,)).fetchone()

    def last_event_id(self, wf_id: str) -> int:
        row = self.conn.execute("SELECT max(id) FROM events WHERE workflow_id=?",
                                (wf_id,)).fetchone()
        return int(row[0] or 0)

    def steps_changed_since(self, wf_id: str, after_event: int, after_step: int
                            ) -> list[sqlite3.Row]:
        """(id, parent_id, type, phase) of the steps that changed phase after event
        ``after_event`` or were created after step ``after_step`` (the dashboard's live
        view asks only for what moved)."""
        return self.conn.execute(
            "SELECT id, parent_id, type, phase FROM steps WHERE id IN (SELECT step_id FROM "
            "events WHERE workflow_id=?1 AND id>?2 AND step_id IS NOT NULL) "
            "UNION SELECT id, parent_id, type, phase FROM steps WHERE workflow_id=?1 AND id>?3",
            (wf_id, after_event, after_step)).fetchall()

    def phase_counts(self, wf_id: str, type_: str | None = "Pod") -> dict[str, int]:
        sql = "SELECT phase, count(*) FROM steps WHERE workflow_id=?"
        args: list[Any] = [wf_id]
        if type_:
            sql += " AND type=?"
            args.append(type_)
        return {r[0]: r[1] for r in self.conn.execute(sql + " GROUP BY phase", args)}

    # -- jobs -------------------------------------------------------------------
    def insert_job_intent(self, conn: sqlite3.Connection, step_id: int, wf_id: str,
                          executor: str, name: str, step_dir: str,
                          pack: str | None = None) -> int:
        cur = conn.execute(
            "INSERT INTO jobs(step_id, workflow_id, executor, name, state, step_dir, created_at, "
            "pack) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (step_id, wf_id, executor, name, JobState.INTENT.value, step_dir, time.time(), pack),
        )
        self.add_event(conn, wf_id, "job", step_id, None, JobState.INTENT.value, name)
        return int(cur.lastrowid or 0)

    def set_job_submitted(self, conn: sqlite3.Connection, job_id: int, native_id: str,
                          timeout: float | None = None) -> None:
        """The job exists; with a timeout, the engine stops it ``timeout`` seconds from now."""
        now = time.time()
        self._change_job(conn, job_id, JobState.SUBMITTED,
                         "native_id=?, submitted_at=?, deadline=?",
                         (native_id, now, now + timeout if timeout else None))

    def set_job_state(self, conn: sqlite3.Connection, job_id: int, state: JobState) -> None:
        """A live job seen queued or running (``JobState``'s table is checked)."""
        self._change_job(conn, job_id, state)

    def set_job_finished(self, conn: sqlite3.Connection, job_id: int, state: JobState | str,
                         exit_code: int | None, detail: str | None) -> None:
        self._change_job(conn, job_id, state, "exit_code=?, detail=?, finished_at=?",
                         (exit_code, detail, time.time()))

    def set_job_held_back(self, conn: sqlite3.Connection, job_id: int, wf_id: str,
                          step_id: int, detail: str) -> None:
        """An intent the scheduler refused for a queue limit: no job exists, so the row is
        closed (refused, with why) and gives its name up (a ``~held-ID`` suffix): the step's
        next intent takes the same deterministic name, which is what a reconciliation after a
        crash looks for."""
        self._change_job(conn, job_id, JobState.REFUSED,
                         "detail=?, finished_at=?, name=name || '~held-' || id",
                         (detail, time.time()))
        self.add_event(conn, wf_id, "job", step_id, JobState.INTENT.value,
                       JobState.REFUSED.value, detail)

    @staticmethod
    def _change_job(conn: sqlite3.Connection, job_id: int, new: JobState | str,
                    sets: str = "", params: tuple = ()) -> None:
        """One job's state (and ``sets``) changed in one statement that holds only if the
        job is in a state ``JobState``'s table allows ``new`` from; otherwise nothing
        changes and ``InvalidJobTransition`` says from what."""
        new = JobState(new)
        allowed = _JOB_PREDECESSORS[new]
        cur = conn.execute(
            f"UPDATE jobs SET state=?{', ' + sets if sets else ''} WHERE id=? AND state IN "
            f"({', '.join('?' * len(allowed))})",
            (new.value, *params, job_id, *(s.value for s in allowed)))
        if cur.rowcount != 1:
            row = conn.execute("SELECT state FROM jobs WHERE id=?", (job_id,)).fetchone()
            check_job_transition(row[0] if row else None, new)

    def live_jobs(self) -> list[sqlite3.Row]:
        return self.conn.execute(
            f"SELECT * FROM jobs WHERE state IN ({_LIVE_JOBS}) ORDER BY id").fetchall()

    def jobs_of_step(self, step_id: int) -> list[sqlite3.Row]:
        return self.conn.execute("SELECT * FROM jobs WHERE step_id=? ORDER BY id",
                                 (step_id,)).fetchall()

    def latest_jobs(self, step_ids: Sequence[int]) -> dict[int, sqlite3.Row]:
        """Step id -> its latest job's row, for those of ``step_ids`` that have one."""
        found: dict[int, sqlite3.Row] = {}
        for chunk, marks in _id_chunks(step_ids):
            for row in self.conn.execute(
                    f"SELECT * FROM jobs WHERE id IN (SELECT max(id) FROM jobs "
                    f"WHERE step_id IN ({marks}) GROUP BY step_id)", chunk):
                found[row["step_id"]] = row
        return found

    # -- requests ---------------------------------------------------------------
    def add_request(self, wf_id: str, kind: str, payload: dict | None = None) -> None:
        with self.write() as conn:
            conn.execute(
                "INSERT INTO requests(at, workflow_id, kind, payload) VALUES (?, ?, ?, ?)",
                (time.time(), wf_id, kind, _jsonify(payload)),
            )

    def open_requests(self) -> list[sqlite3.Row]:
        return self.conn.execute(
            "SELECT * FROM requests WHERE handled_at IS NULL ORDER BY id").fetchall()

    def mark_request_handled(self, conn: sqlite3.Connection, request_id: int) -> None:
        conn.execute("UPDATE requests SET handled_at=? WHERE id=?", (time.time(), request_id))
