"""dflow's ``ArgoStep`` and ``ArgoWorkflow`` names, and ``query_workflows``.

``ArgoStep`` is what ``Workflow.query_step()`` returns. ``ArgoWorkflow`` is a workflow as
listed from the store (``query_workflows``): Argo's ``metadata``/``status`` fields, which
dflow code reads (``wf.metadata.name``, ``wf.status.phase``), plus the same values as plain
attributes (``id``, ``phase``, ...) and dict access.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from hpcflow.workflow import FINAL_PHASES, StepView, elapsed, iso_time, link_children

__all__ = ["ArgoStep", "ArgoWorkflow", "query_archived_workflows", "query_workflows"]

ArgoStep = StepView


class ArgoDict(dict):
    """A dict whose items are also attributes (``wf.status.phase``, ``wf.status["phase"]``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def recover(self) -> dict:
        return {k: v.recover() if hasattr(v, "recover") else v for k, v in self.items()}


class StepNodes(Mapping):
    """``status.nodes``: the workflow's steps by id, read from the store when first used."""

    def __init__(self, load: Callable[[], list[StepView]]) -> None:
        self._load = load
        self._steps: dict[str, StepView] | None = None

    def _all(self) -> dict[str, StepView]:
        if self._steps is None:
            self._steps = {s.id: s for s in self._load()}
        return self._steps

    def __getitem__(self, step_id: str) -> StepView:
        return self._all()[str(step_id)]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def recover(self) -> dict:
        return {i: s.recover() for i, s in self._all().items()}


def _as_list(value: Any) -> list | None:
    return None if value is None else [str(v) for v in (
        value if isinstance(value, (list, tuple, set)) else [value])]


def by_generation(steps: list[StepView], parent_id: str | None) -> list[StepView]:
    """The steps under ``parent_id`` (the root's when None), generation by generation from
    it (dflow's ``sort_by_generation``); a Pod's id gives that step alone."""
    children: dict[str | None, list[StepView]] = {}
    for step in steps:
        children.setdefault(step.parent_id, []).append(step)
    if parent_id is None:
        roots = children.get(None, [])
        level = [c for r in roots for c in children.get(r.id, [])]
    else:
        node = next((s for s in steps if s.id == str(parent_id)), None)
        if node is None:
            return []
        if node.type == "Pod":
            return [node]
        level = children.get(node.id, [])
    found: list[StepView] = []
    while level:
        found += level
        level = [c for s in level for c in children.get(s.id, [])]
    return found


def select_steps(steps: list[StepView], name: str | list[str] | None = None,
                 key: str | list[str] | None = None, phase: str | list[str] | None = None,
                 id: Any = None, type: str | list[str] | None = None,
                 parent_id: Any = None, sort_by_generation: bool = False) -> list[StepView]:
    """dflow's ``get_step`` filters over a workflow's steps (each one a str or a list; a
    name also matches its loop items ``name(i:item)`` and, in hpcflow, a full regex)."""
    from hpcflow.daemon.client import name_matches

    if parent_id is not None or sort_by_generation:
        steps = by_generation(steps, None if parent_id is None else str(parent_id))
    keys, phases, ids, types = _as_list(key), _as_list(phase), _as_list(id), _as_list(type)
    return [s for s in steps
            if (name is None or name_matches(s.name, name))
            and (keys is None or s.key in keys)
            and (phases is None or s.phase in phases)
            and (ids is None or s.id in ids)
            and (types is None or s.type in types)]


def load_steps(home: Any, wf_id: str) -> list[StepView]:
    """Every step of a workflow, as ``query_step()`` gives them."""
    from hpcflow.daemon import client

    read = client.store_for(home).read_value
    return link_children([StepView(r, read) for r in client.query_steps(home, wf_id)])


class ArgoWorkflow:
    """A stored workflow in Argo's shape, what ``Workflow.query()`` and ``query_workflows``
    return: ``metadata``/``status``/``spec`` as dflow code reads them (``wf.metadata.name``,
    ``wf.status.phase``, ``wf.status.nodes``), the same values as plain attributes (``id``,
    ``phase``, ...), dict access, and ``get_step(...)`` over its steps. ``steps`` is the
    snapshot ``Workflow.query()`` took; without it the steps are read when first asked for.

    What ``Workflow.submit()`` returns is one too, as in dflow (``.id``, ``.uid``,
    ``.metadata.name``), made with ``submitted=``, the ``Workflow``: the names it lacks are
    the Workflow's (``wait()``, ``query_step()``...), so ``wf = wf.submit()`` keeps working."""

    def __init__(self, row: Any, steps: list[StepView] | None = None,
                 submitted: Any = None) -> None:
        from hpcflow import settings

        self._submitted = submitted

        self.id: str = row["id"]
        self.uid: str = row["id"]
        self.name: str = row["name"]
        self.phase: str = row["phase"]
        self.labels: dict[str, str] = json.loads(row["labels"] or "{}")
        self.message: str | None = row["message"]
        self._started, self._finished = row["started_at"], row["finished_at"]
        home = settings.home()
        nodes = StepNodes(lambda: steps if steps is not None else load_steps(home, self.id))
        self.metadata = ArgoDict(name=self.id, uid=self.id, generateName=f"{self.name}-",
                                 labels=self.labels, annotations={},
                                 creationTimestamp=iso_time(row["created_at"]))
        self.status = ArgoDict(phase=self.phase, message=self.message,
                               startedAt=iso_time(row["started_at"]),
                               finishedAt=iso_time(row["finished_at"]), nodes=nodes)
        self.spec = ArgoDict(suspend=bool(row["suspended"]) or None)

    def __getattr__(self, name: str) -> Any:
        submitted = self.__dict__.get("_submitted")
        if submitted is None or name.startswith("_"):
            raise AttributeError(f"'ArgoWorkflow' object has no attribute {name!r}")
        return getattr(submitted, name)

    def __getitem__(self, name: str) -> Any:
        return getattr(self, name)

    def __contains__(self, name: object) -> bool:
        return name in ("id", "uid", "name", "phase", "labels", "message", "metadata",
                        "status", "spec")

    def get_step(self, name: str | list[str] | None = None,
                 key: str | list[str] | None = None, phase: str | list[str] | None = None,
                 id: Any = None, type: str | list[str] | None = None,
                 parent_id: Any = None, sort_by_generation: bool = False) -> list[StepView]:
        """Its steps that pass every filter given (as ``Workflow.query_step``)."""
        steps = list(self.status.nodes.values())
        return select_steps(steps, name=name, key=key, phase=phase, id=id, type=type,
                            parent_id=parent_id, sort_by_generation=sort_by_generation)

    def get_duration(self) -> datetime.timedelta:
        return elapsed(self._started, self._finished)

    def recover(self) -> dict:
        return {"metadata": self.metadata.recover(), "status": self.status.recover(),
                "spec": self.spec.recover()}

    def __repr__(self) -> str:
        return f"<ArgoWorkflow {self.id} {self.phase}>"


def query_workflows(labels: dict[str, str] | None = None, fields: Any = None
                    ) -> list[ArgoWorkflow]:
    """Every workflow of this ``$HPCFLOW_HOME`` that carries all of ``labels``, newest
    first (``fields``, Argo's response filter, is accepted; every field is there)."""
    from hpcflow import settings
    from hpcflow.daemon import client

    rows = client.workflows(settings.home(), labels=dict(labels or {}))
    return [ArgoWorkflow(r) for r in rows]


def query_archived_workflows(labels: dict[str, str] | None = None, id: str | None = None
                             ) -> list[ArgoWorkflow]:
    """dflow's archived workflows: hpcflow keeps every workflow in its store, so these are
    the finished ones (with ``id``, that one)."""
    found = [w for w in query_workflows(labels) if w.phase in FINAL_PHASES]
    return [w for w in found if id is None or w.id == id]
