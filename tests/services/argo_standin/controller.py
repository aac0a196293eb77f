"""The simulated workflow controller: walks each Workflow's templates as Argo does.

Supported: an entrypoint of type ``container``/``script``, ``dag`` (``dependencies``,
``arguments.parameters``/``artifacts`` with ``from``, fail-fast) or ``steps`` (sequential
groups of parallel steps) whose leaves are container/script templates.
``{{inputs.parameters.X}}``, ``{{inputs.artifacts.X.path}}``, ``{{workflow.name}}``,
``{{workflow.namespace}}``, ``{{workflow.uid}}``, ``{{workflow.parameters.X}}``,
``{{pod.name}}``, ``{{tasks.T.outputs.parameters.X}}`` and ``{{steps.S.outputs.parameters.X}}``
are substituted.

Node names and ids as Argo v3.7.18 makes them: the root node is named (and id'd) after the
workflow; a DAG task is ``PARENT.TASK``, a step group ``PARENT[i]`` and a step
``PARENT[i].STEP``; a node id is ``WORKFLOW-fnv32a(name)`` (workflow_types.go NodeID), a pod
name ``WORKFLOW-TEMPLATE-fnv32a(node name)`` (workflow/util/pod_name.go, POD_NAMES=v2).

Messages (workflow/controller/*.go of v3.7.18): a pod stopped by a shutdown
``workflow shutdown with strategy:  Terminate`` (two spaces, exec_control.go), the workflow
``Stopped with strategy 'Terminate'`` (operator.go); a pod or pending node past the
workflow's deadline ``Step exceeded its deadline``; a failed step group or steps node
``child 'ID' failed`` (steps.go); the workflow's message is otherwise its root node's.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import artifacts
from .faults import Faults
from .pods import DEADLINE_MESSAGE, Pod, now_rfc3339
from .store import LABEL_COMPLETED, LABEL_PHASE, Store, WorkflowRecord

FULFILLED = ("Succeeded", "Failed", "Error", "Skipped", "Omitted")
SHUTDOWN_POD = "workflow shutdown with strategy:  {}"
SHUTDOWN_WF = "Stopped with strategy '{}'"
STEP_DEADLINE = "Step exceeded its deadline"
TICK = 0.2
_VAR_RE = re.compile(r"\{\{\s*([A-Za-z0-9_.\-]+)\s*\}\}")


def fnv32a(text: str) -> int:
    h = 0x811C9DC5
    for byte in text.encode():
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


def node_id(workflow: str, node_name: str) -> str:
    return workflow if node_name == workflow else f"{workflow}-{fnv32a(node_name)}"


def pod_name(workflow: str, node_name: str, template: str) -> str:
    if node_name == workflow:
        return workflow
    prefix = f"{workflow}-{template}" if template else workflow
    return f"{prefix[:242]}-{fnv32a(node_name)}"


def substitute(obj: Any, values: dict[str, str]) -> Any:
    """Replace ``{{name}}`` in every string of ``obj`` (unknown names are left as they are)."""
    def repl(m: re.Match[str]) -> str:
        value = values.get(m.group(1))
        return m.group(0) if value is None else json.dumps(str(value))[1:-1]
    return json.loads(_VAR_RE.sub(repl, json.dumps(obj)))


def as_seconds(value: Any) -> float | None:
    if value in (None, ""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class Controller:
    def __init__(self, store: Store, faults: Faults, state: Path,
                 secrets: dict[str, dict[str, dict[str, str]]],
                 repository: dict[str, Any]) -> None:
        self.store = store
        self.faults = faults
        self.state = state
        self.secrets = secrets
        self.repository = repository
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="controller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(TICK):
            with self.store.lock:
                records = list(self.store.records.values())
            for rec in records:
                with self.store.lock:
                    if self.store.get(rec.namespace, rec.name) is rec:
                        self.advance(rec)

    # -- one reconciliation ------------------------------------------------------------------
    def advance(self, rec: WorkflowRecord) -> None:
        status = rec.status
        if status.get("phase") in ("Succeeded", "Failed", "Error"):
            self._after_completion(rec)
            return
        spec = rec.obj["spec"]
        if not status.get("phase"):
            self._set(rec, status, phase="Running", startedAt=now_rfc3339(), progress="0/1")
            rec.obj["metadata"]["labels"][LABEL_PHASE] = "Running"
            secs = as_seconds(spec.get("activeDeadlineSeconds"))
            rec.deadline = time.monotonic() + secs if secs is not None else None
        stopping = self._stop_message(rec)
        if stopping:
            for pod in rec.pods.values():
                pod.kill(stopping)
        globals_ = {"workflow.name": rec.name, "workflow.namespace": rec.namespace,
                    "workflow.uid": rec.obj["metadata"]["uid"]}
        for p in (spec.get("arguments") or {}).get("parameters") or []:
            globals_[f"workflow.parameters.{p['name']}"] = str(p.get("value", ""))
        root = self._execute(rec, rec.name, spec["entrypoint"], spec.get("arguments") or {},
                             None, rec.name, globals_)
        self._progress(rec)
        if root is not None and root["phase"] in FULFILLED:
            self._complete(rec, root)
        if rec.dirty:
            rec.obj["metadata"]["resourceVersion"] = self.store.next_version()
            rec.dirty = False

    def _stop_message(self, rec: WorkflowRecord) -> str | None:
        if rec.shutdown:
            return SHUTDOWN_POD.format(rec.shutdown)
        if rec.deadline is not None and time.monotonic() >= rec.deadline:
            return STEP_DEADLINE
        return None

    def _set(self, rec: WorkflowRecord, target: dict[str, Any], **fields: Any) -> None:
        for key, value in fields.items():
            if value is None:
                if key in target:
                    del target[key]
                    rec.dirty = True
            elif target.get(key) != value:
                target[key] = value
                rec.dirty = True

    def _template(self, rec: WorkflowRecord, name: str) -> dict[str, Any]:
        for tmpl in rec.obj["spec"].get("templates") or []:
            if tmpl.get("name") == name:
                return dict(tmpl)
        raise KeyError(name)

    def _new_node(self, rec: WorkflowRecord, name: str, display: str, kind: str,
                  template: str | None, boundary: str | None) -> dict[str, Any]:
        nid = node_id(rec.name, name)
        node: dict[str, Any] = {"id": nid, "name": name, "displayName": display, "type": kind,
                                "phase": "Pending" if kind == "Pod" else "Running",
                                "startedAt": now_rfc3339(), "progress": "0/1"}
        if template:
            node["templateName"] = template
            node["templateScope"] = "local/"
        if boundary:
            node["boundaryID"] = boundary
        rec.nodes[nid] = node
        rec.dirty = True
        return node

    def _add_child(self, rec: WorkflowRecord, parent: dict[str, Any], child_id: str) -> None:
        children = parent.setdefault("children", [])
        if child_id not in children:
            children.append(child_id)
            rec.dirty = True

    def _finish_node(self, rec: WorkflowRecord, node: dict[str, Any], phase: str,
                     message: str = "") -> dict[str, Any]:
        self._set(rec, node, phase=phase, message=message or None, finishedAt=now_rfc3339(),
                  progress="1/1" if phase == "Succeeded" else node.get("progress"))
        return node

    def _execute(self, rec: WorkflowRecord, name: str, tmpl_name: str,
                 arguments: dict[str, Any], boundary: str | None, display: str,
                 scope: dict[str, str]) -> dict[str, Any] | None:
        nid = node_id(rec.name, name)
        existing = rec.nodes.get(nid)
        if existing is not None and existing["phase"] in FULFILLED:
            return existing
        if existing is not None and nid in rec.pods:   # a running pod: only follow its state
            return self._pod_state(rec, existing, rec.pods[nid])
        try:
            tmpl = self._template(rec, tmpl_name)
        except KeyError:
            node = existing or self._new_node(rec, name, display, "Pod", tmpl_name, boundary)
            return self._finish_node(rec, node, "Error", f"template {tmpl_name} not found")
        tmpl = self._bind_inputs(tmpl, arguments, scope)
        if "dag" in tmpl:
            kind = "DAG"
        elif "steps" in tmpl:
            kind = "Steps"
        else:
            kind = "Pod"
        node = existing or self._new_node(rec, name, display, kind, tmpl_name, boundary)
        if existing is None and tmpl.get("inputs"):
            node["inputs"] = tmpl["inputs"]
        if kind == "DAG":
            return self._dag(rec, node, tmpl, scope)
        if kind == "Steps":
            return self._steps(rec, node, tmpl, scope)
        return self._pod(rec, node, tmpl, scope)

    def _bind_inputs(self, tmpl: dict[str, Any], arguments: dict[str, Any],
                     scope: dict[str, str]) -> dict[str, Any]:
        """The template with its inputs given values from the arguments (then substituted)."""
        args_params = {p["name"]: p for p in arguments.get("parameters") or []}
        args_arts = {a["name"]: a for a in arguments.get("artifacts") or []}
        inputs = dict(tmpl.get("inputs") or {})
        params = []
        for p in inputs.get("parameters") or []:
            bound = dict(p)
            if p["name"] in args_params and "value" in args_params[p["name"]]:
                bound["value"] = str(args_params[p["name"]]["value"])
            elif "value" not in bound and "default" in bound:
                bound["value"] = str(bound["default"])
            params.append(bound)
        arts = []
        for a in inputs.get("artifacts") or []:
            bound = dict(a)
            given = args_arts.get(a["name"])
            if given is not None:
                source = given
                if given.get("from"):
                    source = self._lookup_artifact(given["from"], scope) or {}
                for key in ("s3", "raw", "archive"):
                    if key in source and key not in a:
                        bound[key] = source[key]
                if "s3" in source and "s3" in a:
                    bound["s3"] = {**a["s3"], **source["s3"]}
            arts.append(bound)
        if params:
            inputs["parameters"] = params
        if arts:
            inputs["artifacts"] = arts
        if inputs:
            tmpl["inputs"] = inputs
        values = dict(scope)
        values.update({f"inputs.parameters.{p['name']}": str(p.get("value", "")) for p in params})
        values.update({f"inputs.artifacts.{a['name']}.path": a.get("path", "") for a in arts})
        return dict(substitute(tmpl, values))

    @staticmethod
    def _lookup_artifact(ref: str, scope: dict[str, str]) -> dict[str, Any] | None:
        m = _VAR_RE.fullmatch(ref.strip())
        value = scope.get(m.group(1)) if m else None
        return json.loads(value) if value else None

    # -- template kinds ------------------------------------------------------------------------
    def _pod(self, rec: WorkflowRecord, node: dict[str, Any], tmpl: dict[str, Any],
             scope: dict[str, str]) -> dict[str, Any]:
        pod = rec.pods.get(node["id"])
        if pod is None:
            stopping = self._stop_message(rec)
            if stopping:
                return self._finish_node(rec, node, "Failed", stopping)
            pod = self._create_pod(rec, node, tmpl, scope)
        return self._pod_state(rec, node, pod)

    def _pod_state(self, rec: WorkflowRecord, node: dict[str, Any], pod: Pod) -> dict[str, Any]:
        with pod.lock:
            phase, message = pod.node_phase, pod.message
            outputs = dict(pod.outputs)
            finished = pod.finished_at
        self._set(rec, node, phase=phase, message=message or None, hostNodeName="standin-node",
                  outputs=outputs or None)
        if phase in FULFILLED:
            self._set(rec, node, finishedAt=finished or now_rfc3339(),
                      progress="1/1" if phase == "Succeeded" else "0/1")
            self._gc_pod(rec, pod, phase)
        return node

    def _create_pod(self, rec: WorkflowRecord, node: dict[str, Any], tmpl: dict[str, Any],
                    scope: dict[str, str]) -> Pod:
        spec = rec.obj["spec"]
        name = pod_name(rec.name, node["name"], tmpl.get("name", ""))
        tmpl = dict(substitute(tmpl, {"pod.name": name}))
        for key in ("nodeSelector", "tolerations", "serviceAccountName"):
            if key not in tmpl and key in spec:
                tmpl[key] = spec[key]
        container = tmpl.get("container") or tmpl.get("script") or {}
        deadline = None
        tmpl_secs = as_seconds(tmpl.get("activeDeadlineSeconds"))
        if tmpl_secs is not None:
            deadline = time.monotonic() + tmpl_secs
        deadline_message = DEADLINE_MESSAGE
        if rec.deadline is not None and (deadline is None or rec.deadline <= deadline):
            # The controller acts on the workflow's deadline before the kubelet's sync loop
            # would (it requeues the workflow for that instant): Argo's message wins.
            deadline, deadline_message = rec.deadline, STEP_DEADLINE
        key_format = (self.repository.get("s3") or {}).get(
            "keyFormat", "{{workflow.name}}/{{pod.name}}")
        prefix = str(substitute(key_format, {**scope, "pod.name": name}))
        namespace = rec.namespace

        def secret(secret_name: str, key: str) -> str:
            found = self.secrets.get(namespace, {}).get(secret_name)
            if found is None:
                raise KeyError(f'secret "{secret_name}" not found')
            if key not in found:
                raise KeyError(f"couldn't find key {key} in Secret {namespace}/{secret_name}")
            return str(found[key])

        pod = Pod(name=name, namespace=namespace, node_id=node["id"], template=tmpl,
                  root=self.state / "pods" / namespace / name,
                  log_dir=self.state / "logs" / namespace / name, deadline=deadline,
                  fault=self.faults.for_image(str(container.get("image", ""))),
                  secret=secret, repository=self.repository, key_prefix=prefix,
                  deadline_message=deadline_message)
        rec.pods[node["id"]] = pod
        pod.start()
        return pod

    def _outputs_scope(self, prefix: str, step: str, node: dict[str, Any]) -> dict[str, str]:
        out: dict[str, str] = {}
        outputs = node.get("outputs") or {}
        for p in outputs.get("parameters") or []:
            out[f"{prefix}.{step}.outputs.parameters.{p['name']}"] = str(p.get("value", ""))
        for a in outputs.get("artifacts") or []:
            out[f"{prefix}.{step}.outputs.artifacts.{a['name']}"] = json.dumps(a)
        if "result" in outputs:
            out[f"{prefix}.{step}.outputs.result"] = str(outputs["result"])
        if "exitCode" in outputs:
            out[f"{prefix}.{step}.exitCode"] = str(outputs["exitCode"])
        return out

    def _dag(self, rec: WorkflowRecord, node: dict[str, Any], tmpl: dict[str, Any],
             scope: dict[str, str]) -> dict[str, Any]:
        tasks = (tmpl.get("dag") or {}).get("tasks") or []
        fail_fast = (tmpl.get("dag") or {}).get("failFast", True)
        by_name = {t["name"]: t for t in tasks}
        local = dict(scope)
        states: dict[str, str] = {}
        for task in tasks:
            tnode = rec.nodes.get(node_id(rec.name, f"{node['name']}.{task['name']}"))
            if tnode is not None:
                states[task["name"]] = tnode["phase"]
                local.update(self._outputs_scope("tasks", task["name"], tnode))
        failed = any(s in ("Failed", "Error") for s in states.values())
        for task in tasks:
            if task["name"] in states and states[task["name"]] in FULFILLED:
                continue
            deps = task.get("dependencies") or []
            blocked = any(states.get(d) != "Succeeded" for d in deps) or (failed and fail_fast)
            if task["name"] not in states and blocked:
                continue
            child = self._execute(rec, f"{node['name']}.{task['name']}", task["template"],
                                  substitute(task.get("arguments") or {}, local), node["id"],
                                  task["name"], local)
            if child is None:
                continue
            states[task["name"]] = child["phase"]
            local.update(self._outputs_scope("tasks", task["name"], child))
            parents = [rec.nodes[node_id(rec.name, f"{node['name']}.{d}")]
                       for d in deps if d in by_name] or [node]
            for parent in parents:
                self._add_child(rec, parent, child["id"])
        if any(s not in FULFILLED for s in states.values()):
            return node
        bad = [s for s in states.values() if s in ("Failed", "Error")]
        if bad:
            return self._finish_node(rec, node, "Error" if "Error" in bad else "Failed")
        if len(states) == len(tasks):
            return self._finish_node(rec, node, "Succeeded")
        return self._finish_node(rec, node, "Failed")   # tasks that can never run

    def _steps(self, rec: WorkflowRecord, node: dict[str, Any], tmpl: dict[str, Any],
               scope: dict[str, str]) -> dict[str, Any]:
        local = dict(scope)
        previous: list[dict[str, Any]] = [node]
        for i, group in enumerate(tmpl.get("steps") or []):
            sg_name = f"{node['name']}[{i}]"
            sg = rec.nodes.get(node_id(rec.name, sg_name)) or self._new_node(
                rec, sg_name, f"[{i}]", "StepGroup", None, node["id"])
            for parent in previous:
                self._add_child(rec, parent, sg["id"])
            children = []
            for step in group:
                child = self._execute(rec, f"{sg_name}.{step['name']}", step["template"],
                                      substitute(step.get("arguments") or {}, local),
                                      node["id"], step["name"], local)
                if child is None:
                    continue
                self._add_child(rec, sg, child["id"])
                children.append(child)
            if any(c["phase"] not in FULFILLED for c in children):
                return node
            for child in children:
                if child["phase"] in ("Failed", "Error"):
                    message = f"child '{child['id']}' failed"
                    self._finish_node(rec, sg, "Failed", message)
                    return self._finish_node(rec, node, "Failed", message)
            self._finish_node(rec, sg, "Succeeded")
            for step, child in zip(group, children, strict=True):
                local.update(self._outputs_scope("steps", step["name"], child))
            previous = children
        return self._finish_node(rec, node, "Succeeded")

    # -- completion, garbage collection, TTL ----------------------------------------------------
    def _progress(self, rec: WorkflowRecord) -> None:
        pods = [n for n in rec.nodes.values() if n["type"] == "Pod"]
        done = sum(1 for n in pods if n["phase"] == "Succeeded")
        self._set(rec, rec.status, progress=f"{done}/{max(len(pods), 1)}")

    def _complete(self, rec: WorkflowRecord, root: dict[str, Any]) -> None:
        phase = root["phase"] if root["phase"] in ("Succeeded", "Failed", "Error") else "Failed"
        message = root.get("message", "")
        if phase != "Succeeded" and rec.shutdown:
            message = SHUTDOWN_WF.format(rec.shutdown)
        self._set(rec, rec.status, phase=phase, finishedAt=now_rfc3339(),
                  message=message or None)
        labels = rec.obj["metadata"]["labels"]
        labels[LABEL_COMPLETED] = "true"
        labels[LABEL_PHASE] = phase
        rec.status["conditions"] = [{"type": "PodRunning", "status": "False"},
                                    {"type": "Completed", "status": "True"}]
        rec.completed_at = time.monotonic()
        rec.dirty = True
        strategy = (rec.obj["spec"].get("podGC") or {}).get("strategy", "")
        if strategy == "OnWorkflowCompletion" or (
                strategy == "OnWorkflowSuccess" and phase == "Succeeded"):
            for pod in rec.pods.values():
                self._delete_pod(pod)

    def _gc_pod(self, rec: WorkflowRecord, pod: Pod, phase: str) -> None:
        strategy = (rec.obj["spec"].get("podGC") or {}).get("strategy", "")
        if strategy == "OnPodCompletion" or (strategy == "OnPodSuccess" and phase == "Succeeded"):
            self._delete_pod(pod)

    @staticmethod
    def _delete_pod(pod: Pod) -> None:
        with pod.lock:
            pod.phase = "Deleted"
        pod.delete_logs()

    def _after_completion(self, rec: WorkflowRecord) -> None:
        ttl = rec.obj["spec"].get("ttlStrategy") or {}
        phase = rec.status.get("phase")
        secs = ttl.get("secondsAfterSuccess" if phase == "Succeeded" else "secondsAfterFailure")
        if secs is None:
            secs = ttl.get("secondsAfterCompletion")
        if secs is not None and rec.completed_at is not None \
                and time.monotonic() >= rec.completed_at + float(secs):
            self.delete(rec)

    def delete(self, rec: WorkflowRecord, on_deleted: Callable[[], None] | None = None) -> None:
        """Remove a Workflow: its running pods are killed, their logs and roots removed."""
        self.store.remove(rec.namespace, rec.name)
        for pod in rec.pods.values():
            pod.kill("pod deleted")
            pod.delete_logs()
            artifacts.remove_tree(pod.root)
        if on_deleted:
            on_deleted()

    def record(self, rec: WorkflowRecord) -> dict[str, Any]:
        """The per-workflow record of ``GET /standin/workflows``."""
        return {"namespace": rec.namespace, "name": rec.name,
                "phase": rec.status.get("phase", ""), "shutdown": rec.shutdown,
                "labels": dict(rec.obj["metadata"].get("labels") or {}),
                "pods": [p.record() for p in rec.pods.values()],
                "podGC": rec.obj["spec"].get("podGC"),
                "ttlStrategy": rec.obj["spec"].get("ttlStrategy"),
                "serviceAccountName": rec.obj["spec"].get("serviceAccountName")}

