"""dflow's ``ArgoStep`` and ``ArgoWorkflow`` names, and ``query_workflows``.

``ArgoStep`` is what ``Workflow.query_step()`` returns. ``ArgoWorkflow`` is a workflow as
listed from the store (``query_workflows``): Argo's ``metadata``/``status`` fields, which
dflow code reads (``wf.metadata.name``, ``wf.status.phase``), plus the same values as plain
attributes (``id``, ``phase``, ...) and dict access.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from hpcflow.workflow import StepView

__all__ = ["ArgoStep", "ArgoWorkflow", "query_archived_workflows", "query_workflows"]

ArgoStep = StepView


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    import datetime

    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


class ArgoWorkflow:
    """A stored workflow in Argo's shape; ``get_step(...)`` queries its steps."""

    def __init__(self, row: Any) -> None:
        self.id: str = row["id"]
        self.name: str = row["name"]
        self.phase: str = row["phase"]
        self.labels: dict[str, str] = json.loads(row["labels"] or "{}")
        self.message: str | None = row["message"]
        self.metadata = SimpleNamespace(name=self.id, generateName=f"{self.name}-",
                                        labels=self.labels, annotations={},
                                        creationTimestamp=_iso(row["created_at"]))
        self.status = SimpleNamespace(phase=self.phase, message=self.message,
                                      startedAt=_iso(row["started_at"]),
                                      finishedAt=_iso(row["finished_at"]))
        self.spec = SimpleNamespace(suspend=bool(row["suspended"]) or None)

    def __getitem__(self, name: str) -> Any:
        value = getattr(self, name)
        return vars(value) if isinstance(value, SimpleNamespace) else value

    def get_step(self, **kwargs: Any) -> list[StepView]:
        """Its steps, as ``Workflow(id=...).query_step(**kwargs)`` returns them."""
        from hpcflow.workflow import Workflow

        return Workflow(id=self.id).query_step(**kwargs)

    def __repr__(self) -> str:
        return f"<ArgoWorkflow {self.id} {self.phase}>"


def query_workflows(labels: dict[str, str] | None = None, fields: Any = None
                    ) -> list[ArgoWorkflow]:
    """Every workflow of this ``$HPCFLOW_HOME`` that carries all of ``labels``, newest
    first (``fields``, Argo's response filter, is accepted; every field is there)."""
    from hpcflow import settings
    from hpcflow.daemon import client

    rows = client.store_for(settings.home()).workflows(
        phase=None, limit=None, since=None, labels=dict(labels or {}))
    return [ArgoWorkflow(r) for r in rows]


def query_archived_workflows(labels: dict[str, str] | None = None, id: str | None = None
                             ) -> list[ArgoWorkflow]:
    """dflow's archived workflows: hpcflow keeps every workflow in its store, so these are
    the finished ones (with ``id``, that one)."""
    found = [w for w in query_workflows(labels)
             if w.phase in ("Succeeded", "Failed", "Error", "Terminated")]
    return [w for w in found if id is None or w.id == id]
