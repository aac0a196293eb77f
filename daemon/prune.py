"""``hpcflow gc``: remove finished workflows' step directories and artifacts, never an object
that a kept (unpruned) workflow still refers to.

An artifact is referenced by its keys (``{"parts": [{"key": "wf/A/3-0/out.tgz"}]}``) from a
workflow's spec and its steps' inputs and outputs. ``resubmit --reuse`` and ``reuse_step``
make a later workflow B refer to keys under A's prefix ``wf/A/``: pruning A deletes there
only what no unpruned workflow names. What was spared goes when its last referrer is pruned
(pruning B sweeps the prefixes of the pruned workflows B refers to), also when A was deleted
meanwhile: its storage is then remembered in the store's ``deleted_prefixes``.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from hpcflow.daemon import inbox
from hpcflow.daemon.client import store_for
from hpcflow.daemon.store import Store
from hpcflow.errors import HpcflowError

_WORKFLOW_ID = re.compile(r"[a-z0-9][a-z0-9.-]*")


def artifact_keys(value: Any) -> set[str]:
    """Every storage key an artifact reference inside ``value`` names.

    >>> sorted(artifact_keys({"a": {"parts": [{"key": "wf/x/1-0/a.tgz", "archive": "tar"}]},
    ...                       "b": [{"parts": [{"key": "wf/y/2-0/b", "archive": None}]}]}))
    ['wf/x/1-0/a.tgz', 'wf/y/2-0/b']
    """
    found: set[str] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("key"), str) and "archive" in item:
                found.add(item["key"])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _spared(key: str, kept: set[str]) -> bool:
    """Whether an object is, or lies under (an unarchived artifact), a kept key."""
    return key in kept or any(key.startswith(k + "/") for k in kept)


def _workflow_texts(store: Store, wf_id: str) -> list[str]:
    texts = [store.existing_workflow(wf_id)["spec"]]
    for row in store.query_steps(wf_id):
        texts += [row["inputs"], row["outputs"], row["spec"]]
    return [t for t in texts if t]


def _referred_workflows(store: Store, wf_id: str) -> set[str]:
    """The other workflows whose artifacts ``wf_id`` refers to (it reused their steps)."""
    keys: set[str] = set()
    for text in _workflow_texts(store, wf_id):
        if '"wf/' in text:
            keys |= artifact_keys(json.loads(text))
    return {k.split("/")[1] for k in keys if k.startswith("wf/") and k.count("/") >= 2} - {wf_id}


def sweep(store: Store, wf_id: str) -> int:
    """Delete the objects under a pruned workflow's prefix that no unpruned workflow refers
    to; how many were deleted."""
    from hpcflow.connectors.storage.base import storage_from_spec

    row = store.workflow(wf_id)
    if row is not None:
        if not row["pruned_at"]:
            return 0
        spec = row["storage"]
    else:  # deleted while a kept workflow still used some of its objects
        spec = store.deleted_prefix_storage(wf_id)
        if spec is None:
            return 0
    storage = storage_from_spec(json.loads(spec))
    prefix = f"wf/{wf_id}"
    kept: set[str] = set()
    for text in store.kept_texts_naming(f"{prefix}/"):
        kept |= {k for k in artifact_keys(json.loads(text)) if k.startswith(f"{prefix}/")}
    try:
        # what its container steps left in the bucket they went through (results, logs: see
        # connectors/executors/argo.py), when that is the workflow's storage as by default
        exchanged = storage.delete_prefix(f"argo/{wf_id}")
        if not kept:
            removed = exchanged + storage.delete_prefix(prefix)
            if row is None:
                store.forget_deleted_prefix(wf_id)
            return removed
        doomed = [k for k in storage.list(prefix, recursive=True) if not _spared(k, kept)]
        return exchanged + storage.delete_keys(doomed)
    except NotImplementedError:
        raise HpcflowError(f"the storage client of {wf_id} cannot delete: its artifacts under "
                           f"{prefix}/ were kept") from None


def prune_workflows(home: Path, rows: list[Any]) -> list[tuple[int, int]]:
    """Remove finished workflows' step directories and artifacts, keeping their records and
    every object an unpruned workflow refers to; (files, artifact objects) removed for each.

    All are marked pruned first: a crash half-way leaves workflows that say so, and the
    references among the pruned ones keep nothing."""
    for row in rows:
        if not _WORKFLOW_ID.fullmatch(row["id"]):
            raise HpcflowError(f"workflow id {row['id']!r} is not one hpcflow made: not pruned")
    store = store_for(home)
    if rows and not inbox.writes_directly(home, store.shared):
        raise HpcflowError("gc writes the store, which only the leader host of this shared "
                           "home writes: run 'hpcflow gc' there ('hpcflow daemon status' "
                           "names it)")
    for row in rows:
        store.mark_pruned(row["id"])
    done = []
    for row in rows:
        wf_id = row["id"]
        files = 0
        runs = home / "runs" / wf_id
        if runs.is_dir():
            files = sum(1 for p in runs.rglob("*") if p.is_file())
            shutil.rmtree(runs)
        objects = sweep(store, wf_id)
        for other in sorted(_referred_workflows(store, wf_id)):
            objects += sweep(store, other)
        done.append((files, objects))
    return done
