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

from collections.abc import Iterable
from dataclasses import dataclass, field

from hpcflow.daemon import states
from hpcflow.daemon.exit_handler import EXIT_HANDLER_SLOT

FAILED_PHASES = frozenset({states.FAILED, states.ERROR})


@dataclass(frozen=True)
class RetryRow:
    id: int
    parent_id: int
    type: str
    phase: str
    #: The step had a job (it ran), as opposed to being failed by the planner.
    ran: bool
    #: Where the step sits in its parent (a Steps child's ``"GROUP.NAME"``, a DAG task's
    #: name) and its template: what ``plan_restart`` needs to find what came after it.
    slot: str = ""
    template: str = ""


@dataclass
class RetryPlan:
    pods: list[int] = field(default_factory=list)
    containers: list[int] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.pods or self.containers or self.removed)


def exit_handler_rows(rows: list[RetryRow]) -> list[int]:
    """The exit handler's step and every step under it (``Workflow(on_exit=...)``): a
    workflow run again drops them, so that its handler runs again once the steps retried
    ended, as Argo's ``retry`` does."""
    children: dict[int, list[RetryRow]] = {}
    for row in rows:
        children.setdefault(row.parent_id, []).append(row)
    stack = [r for r in children.get(0, []) if r.slot == EXIT_HANDLER_SLOT]
    found = []
    while stack:
        row = stack.pop()
        found.append(row.id)
        stack.extend(children.get(row.id, []))
    return sorted(found)


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


def plan_restart(rows: list[RetryRow], step_ids: list[int], templates: dict) -> RetryPlan:
    """``hpcflow retry WF --step S --restart-successful`` (Argo's ``--restart-successful``
    with a node selector): the chosen leaf steps run again though they succeeded, and so
    does everything that used what they made. Going up from each chosen step: in a Steps,
    the groups after its own are removed; in a DAG, the tasks that depend on it, directly
    or not (and the omitted ones); in a loop, nothing (items are independent); its
    containers go back to Running. The planner makes the removed steps anew from the new
    outputs. A chosen step under a removed one is made anew rather than restarted.

    >>> dag = {"d": {"tasks": [{"name": "a", "dependencies": []},
    ...                        {"name": "b", "dependencies": ["a"]},
    ...                        {"name": "c", "dependencies": []}]}}
    >>> rows = [RetryRow(1, 0, "Steps", "Succeeded", False, "", "main"),
    ...         RetryRow(2, 1, "DAG", "Succeeded", False, "0.inner", "d"),
    ...         RetryRow(3, 2, "Pod", "Succeeded", True, "a"),
    ...         RetryRow(4, 2, "Pod", "Succeeded", True, "b"),
    ...         RetryRow(5, 2, "Pod", "Succeeded", True, "c"),
    ...         RetryRow(6, 1, "Steps", "Succeeded", False, "1.after"),
    ...         RetryRow(7, 6, "Pod", "Succeeded", True, "0.x")]
    >>> plan_restart(rows, [3], dag)
    RetryPlan(pods=[3], containers=[1, 2], removed=[4, 6, 7])
    """
    by_id = {r.id: r for r in rows}
    children: dict[int, list[RetryRow]] = {}
    for row in rows:
        children.setdefault(row.parent_id, []).append(row)
    removed: set[int] = set()
    reopened: set[int] = set()
    for step_id in step_ids:
        child = by_id[step_id]
        parent = by_id.get(child.parent_id)
        while parent is not None:
            if parent.phase != states.RUNNING:
                reopened.add(parent.id)
            for later in _after(parent, child, children.get(parent.id, []), templates):
                removed.update(_subtree(later, children))
            child, parent = parent, by_id.get(parent.parent_id)
    plan = RetryPlan()
    plan.removed = sorted(removed)
    plan.pods = sorted({i for i in step_ids if not _under(by_id[i], removed, by_id)})
    plan.containers = sorted(i for i in reopened if not _under(by_id[i], removed, by_id))
    return plan


def merge(*plans: RetryPlan) -> RetryPlan:
    """One plan of several (a step removed by one is neither reset nor reopened by another)."""
    removed = {i for p in plans for i in p.removed}
    return RetryPlan(pods=sorted({i for p in plans for i in p.pods} - removed),
                     containers=sorted({i for p in plans for i in p.containers} - removed),
                     removed=sorted(removed))


def _after(parent: RetryRow, child: RetryRow, siblings: list[RetryRow],
           templates: dict) -> Iterable[RetryRow]:
    """The siblings of ``child`` that ran after it with what it made (see ``plan_restart``)."""
    if parent.type == "Steps":
        group = int(child.slot.split(".", 1)[0])
        return [s for s in siblings if int(s.slot.split(".", 1)[0]) > group]
    if parent.type == "DAG":
        dependents: dict[str, list[str]] = {}
        for task in templates[parent.template]["tasks"]:
            for dep in task["dependencies"]:
                dependents.setdefault(dep, []).append(task["name"])
        reached: set[str] = set()
        stack = [child.slot]
        while stack:
            for name in dependents.get(stack.pop(), []):
                if name not in reached:
                    reached.add(name)
                    stack.append(name)
        return [s for s in siblings if s.slot in reached or s.phase == states.OMITTED]
    return []


def _subtree(row: RetryRow, children: dict[int, list[RetryRow]]) -> list[int]:
    ids, stack = [], [row]
    while stack:
        top = stack.pop()
        ids.append(top.id)
        stack.extend(children.get(top.id, []))
    return ids


def _under(row: RetryRow, removed: set[int], by_id: dict[int, RetryRow]) -> bool:
    """``row`` or a step above it is removed."""
    current: RetryRow | None = row
    while current is not None:
        if current.id in removed:
            return True
        current = by_id.get(current.parent_id)
    return False
