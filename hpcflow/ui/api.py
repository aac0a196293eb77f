"""What the dashboard reads and asks: JSON-able answers built from the store's read API,
and actions through the same client functions the CLI uses (the engine stays the one
writer: a click on Terminate inserts the request ``hpcflow terminate`` would).

Every answer is bounded: lists are paged, a step's values are previewed with their sizes,
a log is read in slices from an offset.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from hpcflow.daemon.store import Store
from hpcflow.errors import HpcflowError, NotFoundError

#: Stores open at once for readers (one per concurrent request, up to this many).
POOL_SIZE = 4
#: The most steps one page of ``steps`` holds.
PAGE_LIMIT = 2000
#: A value previewed in the step panel is cut to this many characters.
PREVIEW_CHARS = 2000
#: The most log bytes one read returns (the page asks again from the new offset).
LOG_SLICE = 256 * 1024
#: Where a log is first opened at its end: this many bytes before it.
LOG_TAIL = 64 * 1024
#: Actions the workflow page offers, as the CLI's request kinds.
WORKFLOW_ACTIONS = ("terminate", "suspend", "resume", "retry")


class Api:
    """The dashboard's reads and actions over one home."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self._pool: queue.LifoQueue[Store] = queue.LifoQueue()
        self._opened = 0
        self._open_lock = threading.Lock()
        #: The CLI's client functions share one connection per process: one action at a time.
        self._act_lock = threading.Lock()
        self._logs = LogSources(home)

    @contextlib.contextmanager
    def store(self) -> Iterator[Store]:
        """A store of the pool (a SQLite connection is used by one thread at a time)."""
        try:
            store = self._pool.get_nowait()
        except queue.Empty:
            with self._open_lock:
                grow = self._opened < POOL_SIZE
                if grow:
                    self._opened += 1
            store = Store.open(self.home) if grow else self._pool.get(timeout=60)
        try:
            yield store
        finally:
            self._pool.put(store)

    def close(self) -> None:
        self._logs.close()
        while not self._pool.empty():
            self._pool.get_nowait().close()

    # -- reads -------------------------------------------------------------------------
    def workflows(self, phase: str | None = None, label: str | None = None,
                  age: str | None = None, limit: int = 200) -> dict:
        """The workflow list, newest first, each with its leaf steps counted by phase."""
        from hpcflow.daemon.client import parse_age, workflows

        labels = None
        if label:
            key, sep, value = label.partition("=")
            if not sep or not key:
                raise BadRequest(f"label {label!r} is not KEY=VALUE")
            labels = {key: value}
        try:
            since = time.time() - parse_age(age) if age else None
        except HpcflowError as exc:
            raise BadRequest(str(exc)) from None
        with self.store() as store:
            rows = workflows(self.home, phase=phase or None, limit=max(1, min(limit, 1000)),
                             since=since, labels=labels, store=store)
            return {"workflows": [_workflow_json(r, store.phase_counts(r["id"]))
                                  for r in rows]}

    def workflow(self, wf_id: str) -> dict:
        with self.store() as store:
            row = _existing(store, wf_id, self.home)
            data = _workflow_json(row, store.phase_counts(wf_id))
            data["cursor"] = store.last_event_id(wf_id)
            return data

    def steps(self, wf_id: str, after: int = 0, limit: int = PAGE_LIMIT) -> dict:
        """A page of a workflow's steps in id order (``after``: the last id of the page
        before); ``next`` is the ``after`` of the next page, None at the end."""
        limit = max(1, min(limit, PAGE_LIMIT))
        with self.store() as store:
            _existing(store, wf_id, self.home)
            rows = store.step_outline_page(wf_id, after, limit)
        return {"steps": [_outline_json(r) for r in rows],
                "next": rows[-1]["id"] if len(rows) == limit else None}

    def phases(self, wf_id: str, since_event: int, since_step: int) -> dict:
        """What moved since the page's last look: the steps that changed phase after event
        ``since_event`` or were created after step ``since_step``, with the workflow's
        phase, counts and the new cursors. The first look (0, 0) has every step."""
        with self.store() as store:
            row = _existing(store, wf_id, self.home)
            cursor = store.last_event_id(wf_id)  # before the read: nothing is missed
            changed = store.steps_changed_since(wf_id, since_event, since_step)
            counts = store.phase_counts(wf_id)
            tips = store.tips(wf_id)
        newest = max([since_step, *(r["id"] for r in changed)])
        return {"phase": row["phase"], "suspended": bool(row["suspended"]),
                "message": row["message"], "tips": tips, "steps": counts, "cursor": cursor,
                "newest_step": newest, "new_steps": newest > since_step,
                "changed": [[r["id"], r["phase"], r["type"], r["parent_id"]] for r in changed]}

    def graph_svg(self, wf_id: str, fold: int, collapsed: Sequence[int] = ()) -> str:
        """The workflow's graph as ``hpcflow graph`` draws it, the groups of ``collapsed``
        closed (``graph_model.build_graph`` over this pool's connection: ``workflow_graph``
        reads through the process's one client connection, which concurrent requests must
        not share)."""
        from hpcflow.ui.export import render_svg
        from hpcflow.ui.graph_model import build_graph

        with self.store() as store:
            wf = _existing(store, wf_id, self.home)
            spec = json.loads(wf["spec"]) if wf["spec"] else {}
            rows: Any = store.iter_step_outline(wf_id) if wf["root_step"] is not None else ()
            graph = build_graph(rows, spec, max(0, fold), workflow=wf["id"], name=wf["name"],
                                phase=wf["phase"], collapsed=collapsed)
        return render_svg(graph)

    def step(self, wf_id: str, step_id: int) -> dict:
        """Everything the step panel shows."""
        from hpcflow.cli import render

        with self.store() as store:
            row = _step_of(store, wf_id, step_id)
            jobs = store.jobs_of_step(step_id)
        outputs = json.loads(row["outputs"]) if row["outputs"] else {}
        inputs = json.loads(row["inputs"]) if row["inputs"] else {}
        return {
            "id": row["id"], "name": row["name"], "type": row["type"], "phase": row["phase"],
            "reason": row["reason"], "key": row["key"], "parent_id": row["parent_id"],
            "attempt": (row["attempt"] or 0) + 1, "started_at": row["started_at"],
            "finished_at": row["finished_at"], "run_seconds": render.run_seconds(row),
            "machine": render.machine(row) or None, "job_id": render.job_id(row) or None,
            "job_state": row["job_state"], "step_dir": row["step_dir"],
            "progress": (None if row["progress_total"] is None else
                         {"current": row["progress_current"], "total": row["progress_total"]}),
            "inputs": _parameters(inputs), "outputs": _parameters(outputs),
            "input_artifacts": _artifacts(inputs), "artifacts": _artifacts(outputs),
            "attempts": [_job_json(j) for j in jobs],
            "retryable": row["type"] == "Pod" and row["phase"] in ("Failed", "Error"),
        }

    def log(self, wf_id: str, step_id: int, offset: int, job_id: int | None = None) -> dict:
        """A slice of a step's log from ``offset`` (-1: its last ``LOG_TAIL`` bytes), and
        the offset to ask from next; ``final``: the step has ended (stop following once
        nothing more comes)."""
        from hpcflow.phases import STEP_FINAL

        with self.store() as store:
            row = _step_of(store, wf_id, step_id)
            wf = _existing(store, wf_id, self.home)
            jobs = store.jobs_of_step(step_id)
            job = next((j for j in jobs if j["id"] == job_id), None) if job_id else \
                (jobs[-1] if jobs else None)
            if job_id and job is None:
                raise NotFoundError(f"step {step_id} has no attempt {job_id}")
            final = row["phase"] in STEP_FINAL
            if job is None:
                return {"text": "", "offset": 0, "final": final, "where": None,
                        "note": f"not started ({row['phase']}): no log yet"}
            source = self._logs.get(store, job)
        data, start = source.read_slice(offset)
        if data is None:
            kept = row["log_tail"] if offset <= 0 else None
            why = "removed by 'hpcflow gc'" if wf["pruned_at"] else "not there (yet)"
            return {"text": kept or "", "offset": max(offset, 0), "final": final,
                    "where": source.where,
                    "note": f"the log file is {why}" + (": its last lines, kept in the store"
                                                        if kept else "")}
        return {"text": data.decode(errors="replace"), "offset": start + len(data),
                "start": start, "final": final, "where": source.where, "note": None}

    def artifact(self, wf_id: str, step_id: int, name: str) -> tuple[dict, dict]:
        """(the artifact's reference, the workflow's storage spec) of output artifact
        ``name`` of a step: found by name among the step's outputs, never a path."""
        with self.store() as store:
            row = _step_of(store, wf_id, step_id)
            wf = _existing(store, wf_id, self.home)
        outputs = json.loads(row["outputs"]) if row["outputs"] else {}
        ref = (outputs.get("artifacts") or {}).get(name)
        if not isinstance(ref, dict) or not ref.get("parts"):
            raise NotFoundError(f"step {step_id} has no output artifact {name!r}")
        if wf["pruned_at"]:
            raise NotFoundError(f"workflow {wf_id} was pruned by 'hpcflow gc': its artifacts "
                                "are gone")
        return ref, json.loads(wf["storage"] or "{}")

    # -- actions -----------------------------------------------------------------------
    def act(self, wf_id: str, kind: str) -> str:
        """terminate, suspend, resume or retry a workflow, as the CLI asks it."""
        from hpcflow.daemon import client

        if kind not in WORKFLOW_ACTIONS:
            raise NotFoundError(f"no action {kind!r}")
        with self._act_lock:
            client.request(self.home, wf_id, kind)
        return f"{kind} requested for {wf_id}"

    def retry_step(self, wf_id: str, step_id: int) -> str:
        """``hpcflow retry WF --step ID``: that failed step runs again."""
        from hpcflow.daemon import client

        with self._act_lock:
            client.retry_steps(self.home, wf_id, [step_id])
        return f"retry of step {step_id} requested for {wf_id}"


class BadRequest(HpcflowError):
    """A request the dashboard cannot answer as given (400)."""


def _existing(store: Store, wf_id: str, home: Path) -> Any:
    """The workflow's row; one waiting in the inbox (submitted on another login node) has
    no steps yet but a page of its own."""
    from hpcflow.daemon.client import waiting_workflow

    row: Any = store.workflow(wf_id)
    if row is None:
        row = waiting_workflow(home, wf_id) or store.workflow(wf_id)
    if row is None:
        raise NotFoundError(f"no workflow {wf_id!r}")
    return row


def _step_of(store: Store, wf_id: str, step_id: int) -> Any:
    row = store.step_with_job(step_id)
    if row is None or row["workflow_id"] != wf_id:
        raise NotFoundError(f"workflow {wf_id!r} has no step {step_id}")
    return row


def _workflow_json(row: Any, counts: dict[str, int]) -> dict:
    return {"id": row["id"], "name": row["name"], "phase": row["phase"],
            "labels": json.loads(row["labels"] or "{}"), "created_at": row["created_at"],
            "started_at": row["started_at"], "finished_at": row["finished_at"],
            "message": row["message"], "suspended": bool(row["suspended"]),
            "pruned": bool(row["pruned_at"]), "steps": counts}


def _outline_json(row: Any) -> dict:
    from hpcflow.cli import render

    return {"id": row["id"], "parent_id": row["parent_id"], "name": row["name"],
            "type": row["type"], "phase": row["phase"], "reason": row["reason"],
            "machine": render.machine(row) or None, "job_id": render.job_id(row) or None,
            "run_seconds": render.run_seconds(row)}


def _job_json(job: Any) -> dict:
    return {"id": job["id"], "name": job["name"], "machine": job["executor"],
            "job_id": job["native_id"], "state": job["state"],
            "submitted_at": job["submitted_at"], "finished_at": job["finished_at"],
            "exit_code": job["exit_code"], "detail": job["detail"]}


def _parameters(io: dict) -> list[dict]:
    """Each parameter's name, size in bytes and a preview (a large one stored by digest:
    its size and type only)."""
    from hpcflow import values

    shown = []
    for name, value in (io.get("parameters") or {}).items():
        if values.is_ref(value):
            info = values.ref_info(value)
            shown.append({"name": name, "bytes": info["bytes"], "type": info["kind"],
                          "preview": None})
            continue
        text = value if isinstance(value, str) else json.dumps(value)
        shown.append({"name": name, "bytes": len(text.encode()), "type": type(value).__name__,
                      "preview": text[:PREVIEW_CHARS],
                      "cut": len(text) > PREVIEW_CHARS})
    return shown


def _artifacts(io: dict) -> list[dict]:
    """Each artifact's name and its storage keys (the objects a download fetches)."""
    found = []
    for name, ref in (io.get("artifacts") or {}).items():
        if isinstance(ref, dict):
            found.append({"name": name, "keys": [p.get("key") for p in ref.get("parts") or []],
                          "archive": [p.get("archive") for p in ref.get("parts") or []]})
    return found


class LogSources:
    """Log sources kept open between reads (a log over SSH is one connection, not one per
    second of following), the least recently read closed first."""

    KEEP = 16

    def __init__(self, home: Path) -> None:
        self.home = home
        self._open: OrderedDict[int, SlicedLog] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, store: Store, job: Any) -> SlicedLog:
        from hpcflow.daemon import step_logs

        with self._lock:
            found = self._open.pop(job["id"], None)
            if found is None:
                found = SlicedLog(step_logs.source(self.home, store, job))
            self._open[job["id"]] = found
            while len(self._open) > self.KEEP:
                self._open.popitem(last=False)[1].source.close()
            return found

    def close(self) -> None:
        with self._lock:
            for log in self._open.values():
                log.source.close()
            self._open.clear()


class SlicedLog:
    """A step log read in slices of at most ``LOG_SLICE`` bytes."""

    def __init__(self, source: Any) -> None:
        self.source = source
        self.where = source.where

    def read_slice(self, offset: int) -> tuple[bytes | None, int]:
        """(bytes from ``offset``, at most ``LOG_SLICE``, or None without a log; where they
        start). ``offset`` -1: the last ``LOG_TAIL`` bytes."""
        from hpcflow.daemon.step_logs import LocalLog

        if isinstance(self.source, LocalLog):  # read only what is sent
            try:
                size = self.source.path.stat().st_size
            except FileNotFoundError:
                return None, 0
            start = max(0, size - LOG_TAIL) if offset < 0 else offset
            with open(self.source.path, "rb") as f:
                f.seek(start)
                return f.read(LOG_SLICE), start
        data = self.source.read(0)  # a remote log comes whole
        if data is None:
            return None, 0
        start = max(0, len(data) - LOG_TAIL) if offset < 0 else offset
        return data[start:start + LOG_SLICE], start
