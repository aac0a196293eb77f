"""Submissions and requests from hosts that do not lead the home, as files the leader takes.

On a home shared between login nodes only the leader host writes the store (SQLite's
locks cannot be trusted across hosts there). A client on another host writes its new
workflow or request as one file in ``$HPCFLOW_HOME/inbox/`` (written under a temporary
name, then renamed: the leader never sees half a file); the leader's engine takes the files
at the top of every cycle, applies each in its own transaction and removes it. Applying is
idempotent (a workflow id is inserted once), so a leader killed between the two loses
nothing and doubles nothing.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

from hpcflow.daemon.leader import live_leader, this_host

INBOX_DIR = "inbox"


def writes_directly(home: Path, shared: bool) -> bool:
    """Whether a client on this host may write the store itself: always on a local file
    system; on a shared one only on the leader's host."""
    if not shared:
        return True
    lease = live_leader(home)
    return lease is not None and lease.host == this_host()


def deliver(home: Path, message: dict[str, Any]) -> Path:
    """Leave ``message`` for the leader; the file's path."""
    folder = home / INBOX_DIR
    folder.mkdir(mode=0o700, exist_ok=True)
    name = f"{time.time_ns():020d}-{this_host()}-{secrets.token_hex(4)}.json"
    tmp = folder / f".{name}.tmp"
    with open(tmp, "w") as f:
        json.dump(message, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, folder / name)
    return folder / name


def workflow_message(wf_id: str, name: str, spec: dict, blobs: dict[str, bytes],
                     storage: dict, labels: dict, if_absent: bool) -> dict[str, Any]:
    return {"kind": "workflow", "id": wf_id, "name": name, "spec": spec,
            "blobs": {k: base64.b64encode(v).decode() for k, v in blobs.items()},
            "storage": storage, "labels": labels, "if_absent": if_absent}


def request_message(wf_id: str, kind: str, payload: dict | None = None) -> dict[str, Any]:
    return {"kind": "request", "workflow_id": wf_id, "request": kind, "payload": payload}


def waiting(home: Path) -> list[tuple[Path, dict[str, Any]]]:
    """The messages not yet taken, oldest first (unreadable ones are skipped: a file
    being renamed in, or one the leader will report when it takes it)."""
    folder = home / INBOX_DIR
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith(".json")
                       and not n.startswith("."))
    except FileNotFoundError:
        return []
    found = []
    for name in names:
        with contextlib.suppress(OSError, ValueError):
            found.append((folder / name, json.loads((folder / name).read_text())))
    return found


def waiting_workflows(home: Path) -> list[tuple[float, dict[str, Any]]]:
    """The submitted workflows not yet taken, with the time each was left (its file's name
    begins with it), oldest first."""
    return [(_left_at(path), message) for path, message in waiting(home)
            if message.get("kind") == "workflow" and message.get("id")]


def _left_at(path: Path) -> float:
    stamp = path.name.split("-", 1)[0]
    return int(stamp) / 1e9 if stamp.isdigit() else path.stat().st_mtime


def blobs_of(message: dict[str, Any]) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in (message.get("blobs") or {}).items()}
