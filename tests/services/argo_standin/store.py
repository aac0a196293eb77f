"""The stand-in's Workflow objects (in memory) and their pods."""

from __future__ import annotations

import copy
import itertools
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from .pods import Pod, now_rfc3339

LABEL_COMPLETED = "workflows.argoproj.io/completed"
LABEL_PHASE = "workflows.argoproj.io/phase"
ANNOTATION_POD_NAMES = "workflows.argoproj.io/pod-name-format"


@dataclass
class WorkflowRecord:
    obj: dict[str, Any]
    pods: dict[str, Pod] = field(default_factory=dict)   # node id -> pod
    shutdown: str | None = None                          # "Terminate" / "Stop"
    deadline: float | None = None                        # monotonic
    completed_at: float | None = None                    # monotonic
    dirty: bool = False

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    @property
    def namespace(self) -> str:
        return str(self.obj["metadata"]["namespace"])

    @property
    def status(self) -> dict[str, Any]:
        return self.obj.setdefault("status", {})

    @property
    def nodes(self) -> dict[str, dict[str, Any]]:
        return self.status.setdefault("nodes", {})


class Store:
    """All Workflows by (namespace, name); one lock guards every record."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.records: dict[tuple[str, str], WorkflowRecord] = {}
        self._versions = itertools.count(1000)

    def next_version(self) -> str:
        return str(next(self._versions))

    def add(self, workflow: dict[str, Any]) -> WorkflowRecord:
        """Store a new Workflow with the metadata the API server fills in (caller holds lock)."""
        meta = workflow.setdefault("metadata", {})
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        meta["resourceVersion"] = self.next_version()
        meta["generation"] = 1
        labels = meta.setdefault("labels", {})
        labels[LABEL_COMPLETED] = "false"
        meta.setdefault("annotations", {})[ANNOTATION_POD_NAMES] = "v2"
        workflow.setdefault("status", {})
        rec = WorkflowRecord(obj=workflow)
        self.records[(meta["namespace"], meta["name"])] = rec
        return rec

    def get(self, namespace: str, name: str) -> WorkflowRecord | None:
        return self.records.get((namespace, name))

    def remove(self, namespace: str, name: str) -> WorkflowRecord | None:
        return self.records.pop((namespace, name), None)

    def in_namespace(self, namespace: str) -> list[WorkflowRecord]:
        return [r for (ns, _), r in self.records.items() if ns == namespace or not namespace]

    def snapshot(self, rec: WorkflowRecord) -> dict[str, Any]:
        return copy.deepcopy(rec.obj)
