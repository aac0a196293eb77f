"""``hpcflow retry WF`` and dflow's ``retry_steps``: which steps run again (pure).

Like ``argo retry``: succeeded steps are kept with their outputs, the failure is
undone along its path from the root, and the planner carries on from there.

- A failed or errored step counts only if every step above it failed too: a step
  whose failure was tolerated (``continue_on_failed``, a loop's success ratio)
  sits under a succeeded parent and stays as it is.
- On that path a leaf step that ran goes back to Pending for a new attempt; a
  Steps/DAG/loop goes back to Running; a step the planner failed without running it
  (an unresolved reference, the recursion limit) and the steps a DAG omitted after
  the failure are removed, so that the planner creates them anew.

>>> rows = [RetryRow(1, 0, "Steps", "Failed", False), RetryRow(2, 1, "Pod", "Succeeded", True),
...         RetryRow(3, 1, "Pod", "Failed", True), RetryRow(4, 1, "DAG", "Failed", False),
...         RetryRow(5, 4, "Pod", "Error", False), RetryRow(6, 4, "Pod", "Omitted", False),
...         RetryRow(7, 0, "Pod", "Failed", True)]
>>> plan_retry(rows, root_id=1)
RetryPlan(pods=[3], containers=[1, 4], removed=[5, 6])
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hpcflow.daemon import states

FAILED_PHASES = frozenset({states.FAILED, states.ERROR})


@dataclass(frozen=True)
class RetryRow:
    id: int
    parent_id: int
    type: str
    phase: str
    #: The step had a job (it ran), as opposed to being failed by the planner.
    ran: bool


@dataclass
class RetryPlan:
    pods: list[int] = field(default_factory=list)
    containers: list[int] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.pods or self.containers or self.removed)


def plan_retry(rows: list[RetryRow], root_id: int) -> RetryPlan:
    children: dict[int, list[RetryRow]] = {}
    by_id = {r.id: r for r in rows}
    for row in rows:
        children.setdefault(row.parent_id, []).append(row)
    plan = RetryPlan()
    root = by_id.get(root_id)
    if root is None or root.phase not in FAILED_PHASES:
        return plan
    stack = [root]
    while stack:
        row = stack.pop()
        kids = children.get(row.id, [])
        if row.type == "Pod":
            if row.ran or row.id == root_id:
                plan.pods.append(row.id)
            else:
                plan.removed.append(row.id)
            continue
        if not kids and row.id != root_id:
            plan.removed.append(row.id)
            continue
        plan.containers.append(row.id)
        for kid in kids:
            if kid.phase in FAILED_PHASES:
                stack.append(kid)
            elif kid.phase == states.OMITTED:
                plan.removed.append(kid.id)
    plan.pods.sort()
    plan.containers.sort()
    plan.removed.sort()
    return plan


def plan_retry_steps(rows: list[RetryRow], step_ids: list[int]) -> RetryPlan:
    """dflow's ``Workflow.retry_steps(ids)``: only those failed steps run again (a Steps,
    DAG or loop chosen: the failed part under it, as ``plan_retry``); the failed steps
    above them go back to Running and the tasks their DAGs omitted after the failure are
    removed (made anew by the planner). Other failed steps stay as they are.

    >>> rows = [RetryRow(1, 0, "DAG", "Failed", False), RetryRow(2, 1, "Pod", "Failed", True),
    ...         RetryRow(3, 1, "Pod", "Failed", True), RetryRow(4, 1, "Pod", "Omitted", False)]
    >>> plan_retry_steps(rows, [2])
    RetryPlan(pods=[2], containers=[1], removed=[4])
    """
    by_id = {r.id: r for r in rows}
    children: dict[int, list[RetryRow]] = {}
    for row in rows:
        children.setdefault(row.parent_id, []).append(row)
    plan = RetryPlan()
    for step_id in step_ids:
        below = plan_retry(rows, step_id)
        plan.pods += below.pods
        plan.containers += below.containers
        plan.removed += below.removed
        parent = by_id.get(by_id[step_id].parent_id) if step_id in by_id else None
        while parent is not None:
            if parent.phase in FAILED_PHASES:
                plan.containers.append(parent.id)
            if parent.phase in FAILED_PHASES or parent.phase == states.RUNNING:
                plan.removed += [k.id for k in children.get(parent.id, [])
                                 if k.phase == states.OMITTED]
            parent = by_id.get(parent.parent_id)
    plan.pods = sorted(set(plan.pods))
    plan.containers = sorted(set(plan.containers))
    plan.removed = sorted(set(plan.removed))
    return plan
