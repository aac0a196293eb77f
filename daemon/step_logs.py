"""Reading steps' logs where their jobs ran, for ``hpcflow logs``: which steps a name
selects, and each log as a source that can be read again from where the last read stopped
(``--follow``), on this machine, over SSH or through an executor's own service."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpcflow.errors import HpcflowError, NotFoundError, nearest

LEAF = "Pod"


def select(rows: Iterable[Any], wf_id: str, wanted: str | None) -> list[Any]:
    """The leaf steps whose logs ``wanted`` (an id, a key, a name; None: all) means, from a
    workflow's step rows in id order. A group's name (a loop, slices, a nested Steps or
    DAG) means its leaf steps; a name several leaf steps share is an error that lists them.

    >>> rows = [dict(id=1, parent_id=0, name="wf", key=None, type="Steps"),
    ...         dict(id=2, parent_id=1, name="fan", key=None, type="StepGroup"),
    ...         dict(id=3, parent_id=2, name="fan(0:a)", key="k0", type="Pod"),
    ...         dict(id=4, parent_id=2, name="fan(1:b)", key=None, type="Pod"),
    ...         dict(id=5, parent_id=1, name="twice", key=None, type="Pod"),
    ...         dict(id=6, parent_id=1, name="twice", key=None, type="Pod")]
    >>> [r["id"] for r in select(rows, "w", "fan")], [r["id"] for r in select(rows, "w", "k0")]
    ([3, 4], [3])
    >>> [r["id"] for r in select(rows, "w", None)], [r["id"] for r in select(rows, "w", "6")]
    ([3, 4, 5, 6], [6])
    >>> select(rows, "w", "twice")
    Traceback (most recent call last):
    hpcflow.errors.HpcflowError: 'twice' names 2 steps of w: 5 twice, 6 twice: give its id
    >>> select(rows, "w", "wf")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    hpcflow.errors.HpcflowError: wf is the workflow's root and has no log of its own: ...
    """
    return Selection(rows, wf_id, wanted).leaves


class Selection:
    """The leaf steps a name selects (``select``), kept up to date as the workflow grows:
    ``--follow`` on a group or a whole workflow takes in the steps created meanwhile
    without reading the workflow's steps again."""

    def __init__(self, rows: Iterable[Any], wf_id: str, wanted: str | None) -> None:
        rows = list(rows)
        #: Each step's parent, to tell whether a new step is under the group.
        self._parents: dict[int, int] = {r["id"]: r["parent_id"] for r in rows}
        #: Every leaf is selected (no name given).
        self.everything = wanted is None
        #: The group whose leaves are selected (None: every leaf, or the one leaf named).
        self.group: int | None = None
        self.last_id = max(self._parents, default=0)
        self.leaves: list[Any] = self._choose(rows, wf_id, wanted)

    def _choose(self, rows: list[Any], wf_id: str, wanted: str | None) -> list[Any]:
        if wanted is None:
            return [r for r in rows if r["type"] == LEAF]
        chosen = [r for r in rows if str(r["id"]) == wanted] if wanted.isdigit() else []
        chosen = chosen or [r for r in rows if r["key"] == wanted] \
            or [r for r in rows if r["name"] == wanted]
        if not chosen:
            raise NotFoundError(f"workflow {wf_id!r} has no step {wanted!r} (by id, key or "
                                f"name){_did_you_mean(rows, wanted)}: see 'hpcflow get "
                                f"{wf_id}'")
        leaves = [r for r in chosen if r["type"] == LEAF]
        if len(leaves) > 1:
            listed = ", ".join(f"{r['id']} {r['name']}" for r in leaves[:10])
            more = f" and {len(leaves) - 10} more" if len(leaves) > 10 else ""
            raise HpcflowError(f"{wanted!r} names {len(leaves)} steps of {wf_id}: {listed}"
                               f"{more}: give its id")
        if leaves:
            return leaves
        group = chosen[0]
        if not group["parent_id"]:  # the root (its parent id is 0)
            raise HpcflowError(f"{group['name']} is the workflow's root and has no log of its "
                               f"own: 'hpcflow logs {wf_id}' shows every step's")
        self.group = group["id"]
        return [r for r in rows if r["type"] == LEAF and self._under(r)]

    def _under(self, row: Any) -> bool:
        parent = row["parent_id"]
        while parent:
            if parent == self.group:
                return True
            parent = self._parents.get(parent)
        return False

    def more(self, rows: Iterable[Any]) -> list[Any]:
        """The selected leaves among ``rows``, steps created after those seen (id order)."""
        found = []
        for row in rows:
            self._parents[row["id"]] = row["parent_id"]
            self.last_id = max(self.last_id, row["id"])
            if row["type"] == LEAF and (self.everything or
                                        (self.group is not None and self._under(row))):
                found.append(row)
        return found


#: At most this many names are compared with a misspelt one (a fan-out's items are left
#: out: ``fan(0:a)``; a misspelling of an item is rare, its group's name common).
_NAMES_COMPARED = 5000


def _did_you_mean(rows: list[Any], wanted: str) -> str:
    """``; did you mean 'NAME'?`` for a misspelt step name or key, else ""."""
    names: dict[str, None] = {}
    for row in rows:
        for text in (row["name"], row["key"]):
            if text and "(" not in text and len(names) < _NAMES_COMPARED:
                names[text] = None
    found = nearest(wanted, names)
    return f"; did you mean {found!r}?" if found else ""


class LogSource:
    """A log that can be read again from an offset (``--follow``)."""

    where: str

    def read(self, offset: int) -> bytes | None:
        """The log's bytes from ``offset``; None while there is no log file."""
        raise NotImplementedError

    def close(self) -> None:
        """Release a connection (over SSH)."""


@dataclass
class LocalLog(LogSource):
    path: Path

    @property
    def where(self) -> str:  # type: ignore[override]
        return str(self.path)

    def read(self, offset: int) -> bytes | None:
        try:
            with open(self.path, "rb") as f:
                f.seek(offset)
                return f.read()
        except FileNotFoundError:
            return None


@dataclass
class RemoteLog(LogSource):
    transport: Any
    path: str
    machine: str

    @property
    def where(self) -> str:  # type: ignore[override]
        return f"{self.machine}:{self.path}"

    def read(self, offset: int) -> bytes | None:
        try:
            data = self.transport.read_file(self.path)
        except OSError as exc:
            raise HpcflowError(f"cannot read {self.path} on {self.machine}: {exc}") from None
        return None if data is None else data[offset:]

    def close(self) -> None:
        self.transport.close()


@dataclass
class ServiceLog(LogSource):
    """A log an executor's service hands over whole (read again to follow)."""

    kind: Any
    context: Any
    machine: str
    job: Any

    @property
    def where(self) -> str:  # type: ignore[override]
        return f"{self.machine}:{self.job.name}"

    def read(self, offset: int) -> bytes | None:
        text = self.kind.read_log(self.context, self.machine, self.job)
        return None if text is None else text.encode()[offset:]


def _kind(home: Path, store: Any, executor: str) -> tuple[Any, Any, dict | None]:
    """(kind, config, description) of the executor a step's job ran on."""
    from hpcflow.config_file import load_config, parse_config
    from hpcflow.connectors.plugins import LOCAL, declared, kind_for

    config = load_config(home) if executor != LOCAL else parse_config({})
    described = None if declared(config, executor) else store.step_executor_spec(executor)
    try:
        return kind_for(executor, config, described), config, described
    except HpcflowError:
        raise NotFoundError(f"the step ran on machine {executor!r}, which is no longer in the "
                            "config file: its log cannot be reached") from None


def source(home: Path, store: Any, job: Any) -> LogSource:
    """Where the log of ``job`` (a jobs row) is read."""
    from hpcflow.connectors.plugins import ExecutorContext, ReadsLogs

    name = job["executor"]
    kind, config, described = _kind(home, store, name)
    context = ExecutorContext(home, config)
    if isinstance(kind, ReadsLogs):
        from hpcflow.daemon.submission import job_record

        return ServiceLog(kind, context, name, job_record(job))
    path = f"{job['step_dir']}/log.txt"
    transport = kind.log_transport(context, name, described)
    if transport is None:
        return LocalLog(Path(path))
    return RemoteLog(transport, path, name)


def late_logs(home: Path, store: Any, executor: str) -> bool:
    """Whether the executor's logs come back only when its jobs end."""
    with contextlib.suppress(HpcflowError):
        return bool(_kind(home, store, executor)[0].late_logs)
    return False


def lines_of(data: bytes, pending: bytes = b"") -> tuple[list[str], bytes]:
    """Complete lines of ``pending + data`` and what is left after the last newline."""
    text = pending + data
    *complete, rest = text.split(b"\n")
    return [line.decode(errors="replace") for line in complete], rest


def tail(lines: list[str], count: int | None) -> list[str]:
    return lines if count is None else (lines[-count:] if count else [])


def iter_selected(rows: list[Any], store: Any) -> Iterator[tuple[Any, Any | None]]:
    """(step row, its latest job row or None) per selected step."""
    for row in rows:
        jobs = store.jobs_of_step(row["id"])
        yield row, jobs[-1] if jobs else None
