"""What the SDK and the CLI ask of the store: submit, read, and request.

Clients never change workflow or step state themselves (one writer): they
insert a workflow or a request in a short transaction and wake the engine.
"""

from __future__ import annotations

import json
import re
import secrets
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hpcflow.daemon import engine, inbox
from hpcflow.daemon.leader import leader_elsewhere
from hpcflow.daemon.store import Store
from hpcflow.errors import HpcflowError, NotFoundError

_ALPHABET = string.ascii_lowercase + string.digits
_stores: dict[Path, Store] = {}


def store_for(home: Path) -> Store:
    """One open store per home and process (connections are reused by readers)."""
    if home not in _stores:
        _stores[home] = Store.open(home)
    return _stores[home]


def new_workflow_id(name: str) -> str:
    return f"{name[:50]}-{''.join(secrets.choice(_ALPHABET) for _ in range(5))}"


def submit(home: Path, name: str, spec: dict, blobs: dict[str, bytes], storage: dict,
           labels: dict, idle_exit: float | None, announce: bool = True,
           engine_env: dict[str, str] | None = None, if_absent: bool = False,
           autostart: bool = True) -> tuple[str, bool]:
    """Store the workflow and wake (or start) the engine; (id, whether it is new)."""
    store = store_for(home)
    if autostart and engine.engine_pid(home) is None:
        from hpcflow.config_file import load_config

        load_config(home)  # a broken config file stops the submission, not the engine later
    wf_id = new_workflow_id(name)
    if inbox.writes_directly(home, store.shared):
        existing = store.insert_workflow(wf_id, name, spec, blobs, storage, labels,
                                         if_absent=if_absent)
    else:  # another host leads this home: it takes the workflow from the inbox
        existing = store.live_or_succeeded_named(name) if if_absent else None
        if existing is None:
            inbox.deliver(home, inbox.workflow_message(wf_id, name, spec, blobs, storage,
                                                       labels, if_absent))
    if existing is not None:
        return existing["id"], False
    _wake_or_start(home, idle_exit, announce, engine_env, autostart)
    return wf_id, True


def _wake_or_start(home: Path, idle_exit: float | None, announce: bool,
                   engine_env: dict[str, str] | None, autostart: bool) -> None:
    """Wake the engine; start one on this host unless another host leads (it takes new
    work from the inbox within a few seconds)."""
    if leader_elsewhere(home) is not None:
        engine.wake(home)
        return
    engine.ensure_engine(home, idle_exit, announce=announce, env=engine_env,
                         autostart=autostart)


def resubmit(home: Path, wf_id: str, reuse_succeeded: bool, keys: list[str],
             idle_exit: float | None) -> str:
    """A new run of a stored workflow, reusing the outputs of its steps with the given keys
    (or of every succeeded step with a key); returns the new workflow's id."""
    old = workflow_row(home, wf_id)
    if old["pruned_at"] and (keys or reuse_succeeded):
        raise HpcflowError(f"workflow {wf_id} was pruned by 'hpcflow gc': its outputs are gone "
                           "and cannot be reused; resubmit it without --reuse")
    spec = json.loads(old["spec"])
    store = store_for(home)
    reuse: dict[str, dict] = {}
    for row in store.query_steps(wf_id):
        key = row["key"]
        if not key or not (key in keys or (reuse_succeeded and row["phase"] == "Succeeded")):
            continue
        if row["phase"] != "Succeeded":
            raise HpcflowError(f"step {row['name']!r} with key {key!r} is {row['phase']}, "
                               "not Succeeded: only succeeded steps can be reused")
        reuse[key] = {"outputs": json.loads(row["outputs"] or "{}"), "phase": row["phase"],
                      "from": f"{wf_id}/{row['id']}"}
    missing = sorted(set(keys) - set(reuse))
    if missing:
        raise NotFoundError(f"workflow {wf_id!r} has no succeeded step with key "
                            f"{missing[0]!r}: see 'hpcflow steps {wf_id}'")
    spec["reuse"] = reuse
    new_id = new_workflow_id(old["name"])
    storage, labels = json.loads(old["storage"]), json.loads(old["labels"] or "{}")
    if inbox.writes_directly(home, store.shared):
        store.insert_workflow(new_id, old["name"], spec, {}, storage, labels)
    else:
        inbox.deliver(home, inbox.workflow_message(new_id, old["name"], spec, {}, storage,
                                                   labels, False))
    from hpcflow.settings import config

    _wake_or_start(home, idle_exit, False, None, bool(config.get("engine_autostart", True)))
    return new_id


#: The message of a workflow submitted on a host that does not lead its home, until the
#: leader's engine takes it.
IN_THE_INBOX = "waiting in the inbox for the leader host to take it"


def _waiting_row(message: dict, left_at: float | None) -> dict[str, Any]:
    """A workflow waiting in the inbox, as a row of the store's ``workflows`` table."""
    return {"id": message["id"], "name": message["name"], "phase": "Pending",
            "spec": json.dumps(message["spec"]), "labels": json.dumps(message["labels"]),
            "storage": json.dumps(message["storage"]), "created_at": left_at,
            "started_at": None, "finished_at": None, "root_step": None,
            "message": IN_THE_INBOX, "suspended": 0, "pruned_at": None}


def workflows(home: Path, phase: str | None = None, limit: int | None = None,
              since: float | None = None, labels: dict[str, str] | None = None,
              store: Store | None = None) -> list[Any]:
    """The home's workflows, newest first, with those submitted on a host that does not
    lead the home and not taken by the leader yet (Pending, ``IN_THE_INBOX``): a user who
    submitted on one login node finds the workflow at once on every node. ``store``: a
    connection of the caller's own (the web page's pool), else this process's."""
    # The inbox first: the leader stores a workflow before it removes its file, so one taken
    # meanwhile is in the store read after (and shown once: its id is in the store).
    left = [] if phase not in (None, "Pending") else inbox.waiting_workflows(home)
    store = store or store_for(home)
    rows = list(store.workflows(phase=phase, limit=limit, since=since, labels=labels))
    waiting = [_waiting_row(message, left_at) for left_at, message in left
               if (since is None or left_at >= since)
               and all((message.get("labels") or {}).get(k) == v
                       for k, v in (labels or {}).items())
               and store.workflow(message["id"]) is None]
    if not waiting:
        return rows
    merged: list[Any] = sorted([*rows, *waiting], key=lambda r: r["created_at"] or 0.0,
                               reverse=True)
    return merged[:limit] if limit else merged


def waiting_workflow(home: Path, wf_id: str) -> dict[str, Any] | None:
    """Workflow ``wf_id`` as a row if it waits in the inbox (submitted on a host that does
    not lead the home, not taken yet)."""
    for left_at, message in inbox.waiting_workflows(home):
        if message["id"] == wf_id:
            return _waiting_row(message, left_at)
    return None


def workflow_row(home: Path, wf_id: str) -> Any:
    row = store_for(home).workflow(wf_id)
    if row is None:
        waiting = waiting_workflow(home, wf_id)
        if waiting is not None:
            return waiting
        row = store_for(home).workflow(wf_id)  # the leader may have taken it meanwhile
    if row is None:
        raise NotFoundError(f"no workflow {wf_id!r} in {home}{_did_you_mean(home, wf_id)}: "
                            "see 'hpcflow list'")
    return row


#: The word for the newest workflow of a home on the command line (``argo get @latest``).
LATEST = "@latest"


def resolve_workflow_id(home: Path, text: str) -> str:
    """``text`` as a workflow id: ``@latest`` is the newest workflow of ``home``."""
    if text != LATEST:
        return text
    newest = store_for(home).workflows(limit=1)
    if not newest:
        raise NotFoundError(f"no workflow yet in {home}: {LATEST} names the newest one")
    return str(newest[0]["id"])


def _did_you_mean(home: Path, text: str) -> str:
    """The ids ``text`` may have meant (a workflow's name rather than its id, the start of
    an id), newest first; "" when none."""
    near = store_for(home).workflows_near(text) if text else []
    if not near:
        return ""
    return "; did you mean " + " or ".join(f"{r['id']} ({r['phase']})" for r in near) + "?"


def why_not(kind: str, row: Any) -> str | None:
    """Why a request of ``kind`` does not apply to the workflow ``row`` (None: it does)."""
    phase, wf_id = row["phase"], row["id"]
    live = phase in ("Pending", "Running")
    if kind in ("terminate", "stop", "suspend") and not live:
        return f"workflow {wf_id} is {phase}: there is nothing to {kind}"
    if kind == "suspend" and row["suspended"]:
        return f"workflow {wf_id} is already suspended: 'hpcflow resume {wf_id}' resumes it"
    if kind == "resume" and not row["suspended"]:
        return f"workflow {wf_id} is not suspended"
    if kind == "retry_steps" and live:
        return None  # dflow's case: failed steps of a workflow still running
    if kind == "restart_steps" and live:
        return (f"workflow {wf_id} is {phase}: --restart-successful runs steps of a finished "
                f"workflow again; wait for it to end, or 'hpcflow terminate {wf_id}' first")
    if kind in ("retry", "retry_steps", "restart_steps"):
        if row["pruned_at"]:
            return (f"workflow {wf_id} was pruned by 'hpcflow gc': its outputs are gone; "
                    f"'hpcflow resubmit {wf_id}' runs it anew")
        if kind == "restart_steps":
            return None  # any finished workflow (Argo: a succeeded one with a selector)
        if phase not in ("Failed", "Error", "Terminated") or \
                (kind == "retry_steps" and phase == "Terminated"):
            return (f"workflow {wf_id} is {phase}: only a Failed, Error or Terminated workflow "
                    "can be retried")
    return None


def request(home: Path, wf_id: str, kind: str, payload: dict | None = None) -> None:
    """Ask the engine to terminate, suspend, resume or retry a workflow (it alone changes
    state); wake it, or start it unless cron drives this home."""
    from hpcflow.settings import config

    why = why_not(kind, workflow_row(home, wf_id))
    if why:
        raise HpcflowError(why)
    store = store_for(home)
    if inbox.writes_directly(home, store.shared):
        store.add_request(wf_id, kind, payload)
    else:
        inbox.deliver(home, inbox.request_message(wf_id, kind, payload))
    _wake_or_start(home, float(config.get("engine_idle_exit") or 600), False, None,
                   bool(config.get("engine_autostart", True)))


def retry_steps(home: Path, wf_id: str, step_ids: list[Any]) -> None:
    """dflow's ``Workflow.retry_steps``: ask the engine to run those failed steps again,
    each checked first (one line naming a step that is not there, not failed, or that never
    ran: the engine failed it before it ran, and only ``retry`` plans it anew)."""
    store = store_for(home)
    workflow_row(home, wf_id)
    rows = {str(r["id"]): r for r in store.retry_rows(wf_id)}
    chosen = []
    for given in step_ids:
        row = rows.get(str(getattr(given, "id", given)))
        if row is None:
            raise HpcflowError(f"retry_steps: workflow {wf_id} has no step {given!r}: give "
                               "the ids of its failed steps (query_step(phase='Failed') .id)")
        step = store.conn.execute("SELECT name, reason FROM steps WHERE id=?",
                                  (row["id"],)).fetchone()
        if row["phase"] not in ("Failed", "Error"):
            raise HpcflowError(f"retry_steps: step {step['name']!r} ({row['id']}) is "
                               f"{row['phase']}: only a Failed or Error step runs again")
        if row["type"] == "Pod" and not row["ran"]:
            raise HpcflowError(
                f"retry_steps: step {step['name']!r} ({row['id']}) never ran (hpcflow failed "
                f"it: {step['reason']}); 'hpcflow retry {wf_id}' (wf.retry()) plans it anew")
        chosen.append(int(row["id"]))
    if not chosen:
        raise HpcflowError("retry_steps: no step ids given")
    request(home, wf_id, "retry_steps", {"steps": chosen})


def parse_age(text: str) -> float:
    """Seconds in ``30d``, ``12h``, ``90m``, ``45s`` or ``2w``.

    >>> parse_age("30d"), parse_age("1.5h")
    (2592000.0, 5400.0)
    """
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    if not match:
        raise HpcflowError(f"{text!r} is not an age: write a number and a unit, as in 30d, "
                           "12h, 90m, 45s or 2w")
    return float(match.group(1)) * units[match.group(2)]


def name_matches(step_name: str, wanted: str | list[str]) -> bool:
    """dflow's rule: the exact name or a loop item ``name(i:item)``; also a full-name regex.

    >>> name_matches("fan(3:3)", "fan"), name_matches("fatal", "f"), name_matches("sq-1", "sq-.*")
    (True, False, True)
    """
    for name in [wanted] if isinstance(wanted, str) else wanted:
        if step_name == name or step_name.startswith(name + "("):
            return True
        try:
            if re.fullmatch(name, step_name):
                return True
        except re.error:
            continue
    return False


def iter_steps(home: Path, wf_id: str, phase: str | None = None) -> Iterator[Any]:
    """A workflow's steps (in one phase), streamed from the store."""
    return store_for(home).iter_steps(wf_id, phase)


def query_steps(home: Path, wf_id: str, name: str | list[str] | None = None,
                key: str | None = None,
                phase: str | list[str] | None = None, step_id: Any = None,
                type_: str | None = None) -> list[Any]:
    """Steps of a workflow, filtered like dflow's ``query_step`` (name is a regex)."""
    store = store_for(home)
    single_phase = phase if isinstance(phase, str) else None
    numeric_id = int(step_id) if step_id is not None and str(step_id).isdigit() else None
    rows = store.query_steps(wf_id, phase=single_phase, key=key, step_id=numeric_id, type_=type_)
    if name is not None:
        rows = [r for r in rows if name_matches(r["name"], name)]
    if isinstance(phase, list):
        rows = [r for r in rows if r["phase"] in phase]
    if step_id is not None and numeric_id is None:
        rows = [r for r in rows if str(r["id"]) == str(step_id)]
    return rows


def phase_counts(home: Path, wf_id: str) -> dict[str, int]:
    return store_for(home).phase_counts(wf_id)


def tips(home: Path, wf_id: str) -> list[str]:
    """The engine's advice for the workflow's user."""
    return store_for(home).tips(wf_id)


def expected_steps(home: Path, wf_id: str) -> int | None:
    """The leaf steps the workflow will have when its spec says so (``daemon.expected``)."""
    from hpcflow.daemon.expected import expected_leaf_steps

    row = store_for(home).conn.execute("SELECT spec FROM workflows WHERE id=?",
                                       (wf_id,)).fetchone()
    return expected_leaf_steps(json.loads(row[0])) if row and row[0] else None


def loads(text: str | None) -> Any:
    return json.loads(text) if text else None
