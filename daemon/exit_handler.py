"""dflow's exit handler (``Workflow(on_exit=TEMPLATE)``, Argo's ``spec.onExit``), decided.

Once the workflow's entrypoint (the root step) ended, whatever its end, the exit handler's
template runs as a second step without a parent (slot ``onExit``, named ``WF.onExit`` as
Argo names its node). Its steps read ``{{workflow.status}}`` (the entrypoint's end:
``Succeeded``, ``Failed`` or ``Error``) and ``{{workflow.failures}}`` (the steps that failed,
in Argo's fields and Argo's text: a JSON list, quoted once more as a string). The workflow
ends when the handler did: with the entrypoint's phase, except that a workflow whose steps
succeeded fails (or errs) with its handler, as in Argo. A terminated workflow runs no exit
handler (Argo's ``terminate``).

Pure: the service reads the rows and writes what this decides.

>>> failures = workflow_globals("Failed", [{
...     "id": 3, "name": "boom", "template": "fail", "phase": "Failed",
...     "reason": "exit code 1", "finished_at": 0.0}])["failures"]
>>> first = json.loads(json.loads(failures))[0]
>>> first["displayName"], first["finishedAt"]
('boom', '1970-01-01T00:00:00Z')
>>> workflow_globals("Succeeded", [])["failures"]
'"null"'
>>> final_phase("Succeeded", None, "Failed", "exit code 2")
('Failed', 'exit handler: exit code 2')
>>> final_phase("Failed", "step x failed", "Succeeded", None)
('Failed', 'step x failed')
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable
from typing import Any

from hpcflow.daemon import states

#: The slots of the two steps without a parent: the entrypoint's and the exit handler's.
ROOT_SLOT = "root"
EXIT_HANDLER_SLOT = "onExit"


def argo_time(ts: float | None) -> str | None:
    """A store timestamp in Argo's form (``2024-01-31T12:00:00Z``), as dflow code parses it."""
    if ts is None:
        return None
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def workflow_globals(status: str, failed: Iterable[Any]) -> dict[str, str]:
    """What the exit handler's steps read as ``{{workflow.status}}`` and
    ``{{workflow.failures}}``: ``failed`` are the steps (rows) that Failed or Errored
    before the handler started, in the order they were made."""
    failures = [{"displayName": row["name"], "message": row["reason"],
                 "templateName": row["template"], "phase": row["phase"],
                 "podName": str(row["id"]), "finishedAt": argo_time(row["finished_at"])}
                for row in failed]
    # Argo's text: the list as compact JSON (null when empty), itself quoted as a string,
    # so that a script's `json.loads({{workflow.failures}})` reads it
    text = json.dumps(failures or None, separators=(",", ":"), ensure_ascii=False)
    return {"status": status, "failures": json.dumps(text, ensure_ascii=False)}


def final_phase(entry_final: str, entry_reason: str | None, handler_phase: str,
                handler_reason: str | None) -> tuple[str, str | None]:
    """The workflow's phase and message once its exit handler ended: the entrypoint's
    (``entry_final``, a workflow phase), unless the entrypoint succeeded and the handler
    did not."""
    if entry_final == states.SUCCEEDED and handler_phase not in (states.SUCCEEDED,
                                                                 states.SKIPPED):
        phase = states.ERROR if handler_phase == states.ERROR else states.FAILED
        return phase, f"exit handler: {handler_reason or handler_phase.lower()}"
    return entry_final, entry_reason
