"""dflow's (and Argo's) ``parallelism``: how many pods may run at once.

- ``Workflow(parallelism=N)``: at most N pods of the workflow run at once.
- ``Steps(parallelism=N)`` / ``DAG(parallelism=N)``: at most N pods created by one run of
  that template run at once; pods of templates it calls count towards theirs, not its own
  (Argo's rule).
- ``Step(parallelism=N)`` is dflow's way to set the limit of the template the step is in:
  the smallest of its steps' limits and its own applies.

A pod's *owner* is the run of the Steps/DAG that created it: its parent, or its parent's
parent when the parent is a loop (a StepGroup). The service counts the pods that have a
live job by owner and by workflow and hands the Ready ones here; these functions decide,
without I/O, which may start now.

>>> template_limit({"kind": "steps", "parallelism": None,
...                 "steps": [[{"parallelism": 4}], [{"parallelism": 2}, {}]]})
2
>>> limits = Limits(owner={7: 1}, workflow={"wf": 10})
>>> ready = [{"id": 1, "owner": 7, "workflow_id": "wf"}, {"id": 2, "owner": 7,
...          "workflow_id": "wf"}, {"id": 3, "owner": 8, "workflow_id": "wf"}]
>>> [r["id"] for r in admit(ready, limits, Live(owner={}, workflow={}))]
[1, 3]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

#: A Ready pod's row: anything indexed by ``owner`` and ``workflow_id``.
Row = TypeVar("Row")


def template_limit(template: Mapping[str, Any]) -> int | None:
    """A Steps/DAG template's limit: its own and its steps' ``parallelism``, the smallest."""
    steps: list[Mapping[str, Any]] = [s for group in template.get("steps") or [] for s in group]
    steps += list(template.get("tasks") or [])
    found = [int(v) for v in [template.get("parallelism"), *(s.get("parallelism")
                                                            for s in steps)] if v]
    return min(found) if found else None


@dataclass(frozen=True)
class Limits:
    """The limits that apply: by owner (a Steps/DAG step's id) and by workflow id."""

    owner: Mapping[int, int] = field(default_factory=dict)
    workflow: Mapping[str, int] = field(default_factory=dict)


@dataclass
class Live:
    """Pods that have a live job, counted by owner and by workflow."""

    owner: dict[int, int]
    workflow: dict[str, int]


def full(limits: Limits, live: Live) -> tuple[set[int], set[str]]:
    """The owners and workflows that may start no pod now."""
    owners = {o for o, n in limits.owner.items() if live.owner.get(o, 0) >= n}
    workflows = {w for w, n in limits.workflow.items() if live.workflow.get(w, 0) >= n}
    return owners, workflows


def admit(ready: Iterable[Row], limits: Limits, live: Live) -> list[Row]:
    """The Ready pods (rows with ``owner`` and ``workflow_id``) that may start, in order;
    each admitted one is counted in ``live`` (the next executor of the cycle sees it)."""
    owners, workflows = live.owner, live.workflow
    admitted = []
    for row in ready:
        fields: Any = row  # a mapping, or an sqlite3.Row
        owner, wf = fields["owner"], fields["workflow_id"]
        if owner in limits.owner and owners.get(owner, 0) >= limits.owner[owner]:
            continue
        if wf in limits.workflow and workflows.get(wf, 0) >= limits.workflow[wf]:
            continue
        owners[owner] = owners.get(owner, 0) + 1
        workflows[wf] = workflows.get(wf, 0) + 1
        admitted.append(row)
    return admitted
