"""``Workflow``: build, submit, follow and control a workflow (dflow's API)."""

from __future__ import annotations

import contextlib
import copy
import datetime
import functools
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpcflow import settings as _config
from hpcflow.artifacts import StoredArtifact
from hpcflow.daemon.exit_handler import argo_time
from hpcflow.errors import HpcflowError, WorkflowDefinitionError
from hpcflow.names import check_workflow_name
from hpcflow.phases import WORKFLOW_FINAL
from hpcflow.privacy import private_umask
from hpcflow.step import Step, Task
from hpcflow.steps import DAG, Steps
from hpcflow.values import expand, from_jsonable, short_repr

if TYPE_CHECKING:
    from hpcflow.argo_objects import ArgoWorkflow

FINAL_PHASES = WORKFLOW_FINAL

#: Workflows submitted by this process, in order (``hpcflow run`` follows them).
submitted_workflows: list[Workflow] = []

#: Set by ``hpcflow submit --name/--label/--if-absent`` for the script it runs.
submit_overrides: dict[str, Any] = {}


class ParameterView:
    """``step.outputs.parameters["x"]``: ``.value`` holds the value, read from the store
    when first asked for (a large value is stored once, by digest)."""

    def __init__(self, name: str, stored: Any, read: Callable[[dict], bytes] | None = None
                 ) -> None:
        self.name = name
        self._stored = stored
        self._read = read

    @functools.cached_property
    def value(self) -> Any:
        return from_jsonable(expand(self._stored, self._read))

    def __getitem__(self, key: str) -> Any:
        """``par["value"]``, ``par["name"]``: dflow's parameters are dicts too."""
        if key in ("value", "name"):
            return getattr(self, key)
        raise KeyError(key)

    def __repr__(self) -> str:
        return f"<parameter {self.name}={short_repr(self.value)}>"


class IOView:
    def __init__(self, data: dict | None, read: Callable[[dict], bytes] | None = None) -> None:
        data = data or {}
        self.parameters = {n: ParameterView(n, v, read)
                           for n, v in data.get("parameters", {}).items()}
        self.artifacts = {n: StoredArtifact(ref, name=n)
                          for n, ref in data.get("artifacts", {}).items() if ref is not None}

    def __getitem__(self, key: str) -> Any:
        if key in ("parameters", "artifacts"):
            return getattr(self, key)
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return key in ("parameters", "artifacts")


def elapsed(started: float | None, finished: float | None) -> datetime.timedelta:
    """From ``started`` to ``finished``, or to now while it runs; zero before it starts."""
    if started is None:
        return datetime.timedelta()
    end = finished if finished is not None else time.time()
    return datetime.timedelta(seconds=end - started)


#: A store timestamp in Argo's form (``2024-01-31T12:00:00Z``), as dflow code parses it.
iso_time = argo_time


class StepView:
    """A step as stored, returned by ``Workflow.query_step`` (dflow's ArgoStep): its fields
    are attributes and dict items (``step.phase``, ``step["phase"]``)."""

    #: The fields ``step[...]``, ``in`` and ``recover()`` know (Argo's node fields).
    FIELDS = ("id", "name", "displayName", "key", "phase", "type", "templateName",
              "message", "startedAt", "finishedAt", "progress", "inputs", "outputs",
              "workflow", "parent_id", "children")

    def __init__(self, row: Any, read: Callable[[dict], bytes] | None = None) -> None:
        self._read = read
        self.id = str(row["id"])
        self.workflow_id = row["workflow_id"]
        #: dflow's name for the workflow's id.
        self.workflow = row["workflow_id"]
        self.parent_id = str(row["parent_id"]) if row["parent_id"] else None
        self.name = row["name"]
        self.displayName = row["name"]
        self.key = row["key"]
        self.phase = row["phase"]
        self.type = row["type"]
        self.template = row["template"]
        self.templateName = row["template"]
        self.reason = row["reason"]
        self.message = row["reason"]
        self.startedAt = iso_time(row["started_at"])
        self.finishedAt = iso_time(row["finished_at"])
        self._started, self._finished = row["started_at"], row["finished_at"]
        #: Argo's form, "current/total"; None until the OP reports progress.
        self.progress = (f"{row['progress_current']}/{row['progress_total']}"
                         if row["progress_total"] is not None else None)
        self.raw_outputs: dict = json.loads(row["outputs"]) if row["outputs"] else {
            "parameters": {}, "artifacts": {}}
        self.inputs = IOView(json.loads(row["inputs"]) if row["inputs"] else None, read)
        self.outputs = IOView(self.raw_outputs, read)
        self._children: list[str] | None = None

    @property
    def children(self) -> list[str]:
        """Argo's ``children``: the ids of the steps directly under this one, in the order
        they were made (read when first asked for, unless the query that made this step
        read the whole workflow). hpcflow's tree holds each step under the Steps, DAG or
        loop that made it; Argo chains a Steps' groups and a DAG's tasks instead, so the
        lists differ, but walking ``children`` from a step reaches the same steps."""
        if self._children is None:
            from hpcflow.daemon import client

            rows = client.query_steps(_config.home(), self.workflow_id)
            self._children = [str(r["id"]) for r in rows if str(r["parent_id"]) == self.id]
        return self._children

    def modify_output_parameter(self, name: str, value: Any) -> None:
        """Change an output before this step is reused (``wf.submit(reuse_step=[...])``)."""
        from hpcflow.values import to_jsonable

        self.raw_outputs.setdefault("parameters", {})[name] = to_jsonable(value)
        self.outputs = IOView(self.raw_outputs, self._read)

    def modify_output_artifact(self, name: str, artifact: Any) -> None:
        """Replace an output artifact (e.g. with ``upload_artifact(...)``) before reuse."""
        ref = getattr(artifact, "ref", None)
        if ref is None:
            raise HpcflowError(f"modify_output_artifact({name!r}, ...) needs an artifact from "
                               "upload_artifact or from a step's outputs")
        self.raw_outputs.setdefault("artifacts", {})[name] = ref
        self.outputs = IOView(self.raw_outputs, self._read)

    def __getitem__(self, key: str) -> Any:
        if key not in self.FIELDS:
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        """As in Argo's node, a field without a value (and ``children`` of a step without
        any) is not there: ``step.get("children", [])``."""
        return key in self.FIELDS and getattr(self, str(key)) not in (None, [])

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in self else default

    def keys(self) -> list[str]:
        return [k for k in self.FIELDS if k in self]

    def get_duration(self) -> datetime.timedelta:
        """How long the step has run (until now if it still runs; zero before it starts)."""
        return elapsed(self._started, self._finished)

    def recover(self) -> dict:
        """The step as plain data (dflow's ``recover()``): values, and artifact references."""
        def io(view: IOView) -> dict:
            return {"parameters": {n: p.value for n, p in view.parameters.items()},
                    "artifacts": {n: a.ref for n, a in view.artifacts.items()}}

        return {k: io(self[k]) if k in ("inputs", "outputs") else self[k] for k in self.keys()}

    def _pod_only(self, *args: Any, **kwargs: Any) -> None:
        raise HpcflowError(
            "get_pod, delete_pod, get_script, set_script and replay act on the step's "
            "Kubernetes pod, and hpcflow runs no Kubernetes: the step's files are in its "
            f"directory ('hpcflow logs {self.workflow} {self.id}'); "
            f"'hpcflow retry {self.workflow}' runs failed steps again")

    get_pod = delete_pod = get_script = set_script = replay = retry = _pod_only

    def reuse_entry(self) -> dict:
        return {"outputs": self.raw_outputs, "phase": self.phase,
                "from": f"{self.workflow_id}/{self.id}"}

    def __repr__(self) -> str:
        return f"<step {self.name} {self.phase} id={self.id}>"


def link_children(steps: list[StepView]) -> list[StepView]:
    """Each step's ``children`` from a list holding every step of its workflow."""
    for step in steps:
        step._children = []
    by_id = {s.id: s for s in steps}
    for step in steps:
        parent = by_id.get(step.parent_id or "")
        if parent is not None:
            assert parent._children is not None
            parent._children.append(step.id)
    return steps


def reuse_map(steps: list) -> dict[str, dict]:
    """Reused steps by key. A step without a key (a loop's parent, a Steps) cannot be
    matched and is passed over, as dflow does: ``reuse_step=wf.query_step()`` is common."""
    found: dict[str, dict] = {}
    for step in steps:
        if not isinstance(step, StepView):
            raise HpcflowError(f"reuse_step takes steps from query_step(), got {short_repr(step)}")
        if step.key:
            found[step.key] = step.reuse_entry()
    return found


def check_machines(spec: dict, home: Path) -> None:
    """Place the steps the config file sends somewhere without their naming an executor (an
    Argo cluster with ``images = true`` takes the steps whose template has an image), then
    check that every machine a step names is declared in the daemon's config file (else one
    line that names the step and the machine, before anything is stored)."""
    from hpcflow.config_file import DaemonConfig, load_config
    from hpcflow.connectors.plugins import (
        ChecksTemplates,
        ClaimsSteps,
        executor_kind,
        executor_kinds,
    )

    loaded: list[DaemonConfig] = []

    def config() -> DaemonConfig:
        if not loaded:
            loaded.append(load_config(home))
        return loaded[0]

    claimers = [k for k in executor_kinds().values() if isinstance(k, ClaimsSteps)]
    # (kind, machine) -> (the first step that names it, the table it needs)
    wanted: dict[tuple[str, str], tuple[str, str]] = {}
    for template in spec["templates"].values():
        steps = [s for group in template.get("steps") or [] for s in group]
        for step in steps + list(template.get("tasks") or []):
            executor = step.get("executor") or {}
            own = spec["templates"].get(step.get("template") or "") or {}
            if not executor.get("kind") and own.get("image") and claimers:
                claimed = next((c for k in claimers if (c := k.claims(config(), own))), None)
                if claimed is not None:
                    step["executor"] = executor = claimed
            kind = executor_kind(executor["kind"]) if executor.get("kind") else None
            problem = isinstance(kind, ChecksTemplates) and kind.template_problem(own)
            if problem:
                raise WorkflowDefinitionError(f"step {step['name']!r}: {problem}")
            needed = kind is not None and kind.declaration(executor)
            if needed:
                wanted.setdefault((executor["kind"], needed[1]), (step["name"], needed[0]))
    for (kind_name, machine), (step, table) in sorted(wanted.items()):
        kind = executor_kind(kind_name)
        if not kind.declares(config(), machine):
            what = getattr(kind, "what", "machine")
            raise WorkflowDefinitionError(
                f"step {step!r} runs on {what} {machine!r}, which the config file "
                f"({config().path or home / 'config.toml'}) does not declare: add "
                f"[{table}.{machine}] or fix the name")


#: Variables of the submitting process a debug-mode step does not take: hpcflow's own
#: (the executor sets them for the step) and the shell's bookkeeping.
_NOT_CARRIED = ("PWD", "OLDPWD", "SHLVL", "_")


def submitter_env() -> dict[str, str]:
    """In dflow's debug mode each OP is a child process of the script, so it sees the
    script's environment (``os.environ`` changes included; ``DFLOW_MODE=debug`` is how an OP
    sees debug mode). The same for the steps of a debug-mode workflow that run on this
    host, without credential variables (``hpcflow.secrets``: they stay out of the store)."""
    from hpcflow.secrets import without_credentials

    return {k: v for k, v in without_credentials().items()
            if not k.startswith("HPCFLOW_") and k not in _NOT_CARRIED}


class Workflow:
    """A workflow: steps added with ``add`` or an entry ``Steps``/``DAG``; ``id=`` reattaches."""

    def __init__(self, name: str = "workflow", steps: Steps | None = None, dag: DAG | None = None,
                 id: str | None = None, parallelism: int | None = None,
                 labels: dict[str, str] | None = None, annotations: dict | None = None,
                 context: Any = None, executor: Any = None,
                 parameters: dict[str, Any] | None = None, on_exit: Any = None,
                 **kwargs: Any) -> None:
        self.id = id
        #: dflow's exit handler: a template run once the steps ended, whatever their end
        #: (``{{workflow.status}}`` and ``{{workflow.failures}}`` tell it which).
        self.on_exit = on_exit
        #: dflow's global parameters, ``{{workflow.parameters.NAME}}`` in the steps.
        self.parameters = dict(parameters or {})
        #: Where steps run that name no executor (nor does their template): local if None.
        self.executor = executor
        #: False when ``--if-absent`` found this workflow already there.
        self.is_new = id is None
        self.labels = dict(labels or {})
        self.parallelism = parallelism
        # Argo's and Kubernetes' own arguments (namespace=, host=, token=...) in kwargs
        # are accepted and not used: steps run where their executors say.
        self._name: str | None = None
        #: The stored form and OPs of a workflow read from a manifest (``from_dict``).
        self._loaded: tuple[dict, dict[str, bytes]] | None = None
        if id is not None:
            # Nothing is read yet: an unknown id fails when used, as in dflow.
            self.entry: Steps | DAG | None = None
            return
        check_workflow_name(name)
        self._name = name
        if steps is not None and dag is not None:
            raise WorkflowDefinitionError("Workflow takes steps= or dag=, not both")
        self.entry = steps if steps is not None else dag
        #: The entrypoint is ours to choose (a Steps, or a DAG when tasks come first).
        self._default_entry = self.entry is None
        if self.entry is None:
            self.entry = Steps(name=name)

    @property
    def name(self) -> str:
        """The workflow's name (of a reattached one, read from the store when first asked)."""
        if self._name is None:
            from hpcflow.daemon import client

            self._name = str(client.workflow_row(_config.home(), self._need_id())["name"])
        return self._name

    @name.setter
    def name(self, value: str) -> None:
        self._name = value

    # -- building -----------------------------------------------------------------
    def add(self, step: Step | list[Step]) -> None:
        if self.id is not None:
            raise HpcflowError(f"workflow {self.id} is already submitted: build a new Workflow")
        if self._loaded is not None:
            raise HpcflowError(f"workflow {self.name!r} was read from a manifest and takes no "
                               "new steps: add them where the workflow is built, and dump it "
                               "again")
        assert self.entry is not None
        if self._default_entry and not self.entry.all_steps() and all(
                isinstance(s, Task) for s in (step if isinstance(step, list) else [step])):
            self.entry = DAG(name=self.name)  # tasks first: a DAG entrypoint, as in dflow
        self._default_entry = False
        self.entry.add(step)  # type: ignore[arg-type]

    def __enter__(self) -> Workflow:
        """``with Workflow(...) as wf:`` steps created in the block join ``wf``; leaving
        the block submits it (unless the block raised)."""
        from hpcflow import context_syntax

        context_syntax.enter(self)
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        from hpcflow import context_syntax

        context_syntax.leave(self)
        if exc_type is None:
            self.submit()

    # -- submitting ---------------------------------------------------------------
    def submit(self, reuse_step: list | None = None, **kwargs: Any) -> ArgoWorkflow:
        """Store the workflow and start running it. Returns what dflow's returns, an
        ``ArgoWorkflow`` of the stored workflow (``.id``, ``.uid``, ``.metadata.name``,
        ``.status.phase``), which also answers this Workflow's methods (``wait()``...)."""
        from hpcflow.argo_objects import ArgoWorkflow
        from hpcflow.daemon import client

        if self.id is not None:
            raise HpcflowError(f"workflow {self.id} is already submitted")
        assert self.entry is not None
        if submit_overrides.get("name"):
            self.name = submit_overrides["name"]
            check_workflow_name(self.name)
        self.labels.update(submit_overrides.get("labels") or {})
        spec, blobs = self._spec_and_blobs()
        spec["archive_mode"] = _config.config.get("archive_mode", "tar")
        spec["max_recursion_depth"] = int(_config.config.get("max_recursion_depth") or 100)
        spec["reuse"] = reuse_map(reuse_step or [])
        if _config.config.get("mode") == "debug":
            spec["debug_env"] = submitter_env()
        nested_in = nesting_step_dir(_config.home())
        if nested_in is not None:
            spec["lends_slot_of"] = str(nested_in)
        check_machines(spec, _config.home())
        from hpcflow.config import explain_unused

        explain_unused(f"its own engine for {_config.home()}")
        with private_umask():  # the store, wake-up and log files made on the way
            self.id, self.is_new = client.submit(
                _config.home(), self.name, spec, blobs, _config.storage_spec(), self.labels,
                idle_exit=float(_config.config.get("engine_idle_exit") or 600.0),
                engine_env={"HPCFLOW_LOCAL_PARALLELISM": str(_config.local_parallelism())},
                if_absent=bool(submit_overrides.get("if_absent")),
                autostart=bool(_config.config.get("engine_autostart", True)),
            )
        submitted_workflows.append(self)
        if nested_in is not None and self.is_new:
            lend_slot(nested_in, self.id, self.query_status)
        if _config.config.get("mode") == "debug" and not _config.config.get("detach"):
            self.wait()  # dflow's debug mode runs the workflow to its end in submit()
        return ArgoWorkflow(client.workflow_row(_config.home(), self.id), submitted=self)

    def _spec_and_blobs(self) -> tuple[dict, dict[str, bytes]]:
        """The workflow's stored form and its OPs: built from its steps, read from its
        manifest (``from_dict``), or, reattached by id, read from the store."""
        if self._loaded is not None:
            from hpcflow.spec import workflow_parameters

            spec, blobs = copy.deepcopy(self._loaded)
            spec.update(name=self.name, labels=dict(self.labels), parallelism=self.parallelism)
            spec.pop("workflow_parameters", None)  # wf.parameters may have been changed
            given = workflow_parameters(self.parameters, spec["templates"])
            if given:
                spec["workflow_parameters"] = given
            return spec, blobs
        if self.entry is None:
            from hpcflow.daemon import client

            home = _config.home()
            spec = json.loads(client.workflow_row(home, self._need_id())["spec"])
            store = client.store_for(home)
            return spec, {t["op"]: store.blob(t["op"]) for t in spec["templates"].values()
                          if t.get("op")}
        from hpcflow.spec import build_spec

        return build_spec(self.name, self.entry, parallelism=self.parallelism,
                          default_executor=self.executor, labels=self.labels,
                          parameters=self.parameters, on_exit=self.on_exit)

    # -- Argo manifests (dflow's to_dict/from_dict) -------------------------------------
    def to_dict(self) -> dict:
        """The workflow as an Argo ``Workflow`` manifest (``hpcflow.manifest``), which
        ``Workflow.from_dict`` turns back into a workflow that runs the same."""
        from hpcflow.manifest import to_manifest

        return to_manifest(*self._spec_and_blobs(), id=self.id)

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    def to_yaml(self, **kwargs: Any) -> str:
        import yaml

        return str(yaml.safe_dump(self.to_dict(), **kwargs))

    @classmethod
    def from_dict(cls, manifest: dict) -> Workflow:
        """A new workflow (not yet submitted) from a manifest that ``to_dict`` wrote; a
        manifest hpcflow did not write, or one edited since, is refused in one line."""
        from hpcflow.manifest import from_manifest

        spec, blobs = from_manifest(manifest)
        return cls._from_stored(spec, blobs)

    @classmethod
    def _from_stored(cls, spec: dict, blobs: dict[str, bytes]) -> Workflow:
        """A new workflow of a stored form read from a manifest or a graph."""
        wf = cls(spec["name"], labels=spec.get("labels"), parallelism=spec.get("parallelism"))
        wf.parameters = {k: from_jsonable(v)
                         for k, v in (spec.get("workflow_parameters") or {}).items()}
        wf._loaded = (spec, blobs)
        return wf

    @classmethod
    def from_json(cls, text: str) -> Workflow:
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_yaml(cls, text: str) -> Workflow:
        import yaml

        return cls.from_dict(yaml.safe_load(text))

    # -- dflow's graphs -------------------------------------------------------------
    def to_graph(self) -> dict:
        """The workflow as dflow's graph (``hpcflow.graph``): plain data that
        ``Workflow.from_graph`` turns back into a workflow that runs the same."""
        from hpcflow.graph import to_graph

        return to_graph(*self._spec_and_blobs(), id=self.id)

    def to_graph_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_graph(), **kwargs)

    def to_graph_yaml(self, **kwargs: Any) -> str:
        import yaml

        return str(yaml.safe_dump(self.to_graph(), **kwargs))

    @classmethod
    def from_graph(cls, graph: dict) -> Workflow:
        """A new workflow (not yet submitted) from a graph ``to_graph`` wrote. A graph is
        code: the source of each OP of ``__main__`` in it is run to make the OP again, as
        dflow does; read only graphs you made or trust. A graph hpcflow did not write, or
        one edited since, is refused in one line."""
        from hpcflow.graph import from_graph

        spec, blobs = from_graph(graph)
        return cls._from_stored(spec, blobs)

    @classmethod
    def from_graph_json(cls, text: str, **kwargs: Any) -> Workflow:
        return cls.from_graph(json.loads(text, **kwargs))

    @classmethod
    def from_graph_yaml(cls, text: str, **kwargs: Any) -> Workflow:
        import yaml

        return cls.from_graph(yaml.safe_load(text))

    def _need_id(self) -> str:
        if self.id is None:
            raise HpcflowError(f"workflow {self.name!r} has not been submitted: call submit()")
        return self.id

    # -- following ----------------------------------------------------------------
    def query_status(self) -> str:
        from hpcflow.daemon import client

        phase = str(client.workflow_row(_config.home(), self._need_id())["phase"])
        if phase in FINAL_PHASES:
            slot_returned(self._need_id())
        return phase

    def query(self, fields: Any = None, **kwargs: Any) -> ArgoWorkflow:
        """The workflow and a snapshot of its steps (dflow's ``ArgoWorkflow``): ``.status``,
        ``.metadata``, ``get_step(...)`` (``fields``, Argo's response filter, is accepted)."""
        from hpcflow.argo_objects import ArgoWorkflow, load_steps
        from hpcflow.daemon import client

        home, wf_id = _config.home(), self._need_id()
        row = client.workflow_row(home, wf_id)
        return ArgoWorkflow(row, load_steps(home, wf_id))

    def wait(self, interval: float = 0.2, timeout: float | None = None) -> str:
        """Block until the workflow is final (or ``timeout`` seconds pass); returns the phase.
        ``interval`` comes first, as in dflow's ``wait(interval=1)``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            phase = self.query_status()
            if phase in FINAL_PHASES:
                return phase
            if deadline is not None and time.monotonic() > deadline:
                return phase
            time.sleep(interval)

    def query_step(self, name: str | list[str] | None = None,
                   key: str | list[str] | None = None,
                   phase: str | list[str] | None = None, id: Any = None,
                   type: str | list[str] | None = None, parent_id: Any = None,
                   sort_by_generation: bool = False, **kwargs: Any) -> list[StepView]:
        """Steps that pass every filter given (dflow's arguments, each a str or a list),
        in the order they were made; ``parent_id=`` those under that step, and
        ``sort_by_generation`` all of them, generation by generation from the root."""
        from hpcflow.argo_objects import select_steps
        from hpcflow.daemon import client

        home = _config.home()
        wf_id = self._need_id()
        tree = parent_id is not None or sort_by_generation
        one = (lambda v: v if isinstance(v, str) and not tree else None)  # noqa: E731
        rows = client.query_steps(home, wf_id, key=one(key), phase=one(phase),
                                  type_=one(type))
        if not rows:
            client.workflow_row(home, wf_id)  # an unknown id is an error, not "no steps"
        read = client.store_for(home).read_value
        found = [StepView(r, read) for r in rows]
        if one(key) is None and one(phase) is None and one(type) is None:
            link_children(found)  # every step was read: children need no second read
        return select_steps(found, name=name, key=key,
                            phase=phase, id=id, type=type, parent_id=parent_id,
                            sort_by_generation=sort_by_generation)

    def query_step_by_key(self, key: str | list[str], name: str | list[str] | None = None,
                          phase: str | list[str] | None = None, id: Any = None,
                          type: str | list[str] | None = None) -> list[StepView]:
        return self.query_step(key=key, name=name, phase=phase, id=id, type=type)

    def query_global_outputs(self) -> IOView | None:
        """The workflow's global outputs (template outputs declared with ``global_name=``),
        by global name: each from the latest succeeded step that gave it, as Argo sets a
        global output whenever such a step ends; None while there is none (as dflow)."""
        from hpcflow.daemon import client

        home, wf_id = _config.home(), self._need_id()
        spec = json.loads(client.workflow_row(home, wf_id)["spec"])
        declared: dict[str, list[tuple[str, str, str]]] = {}  # template -> (kind, out, global)
        for name, template in spec["templates"].items():
            for kind, outs in (template.get("outputs") or {}).items():
                for out, entry in outs.items():
                    if isinstance(entry, dict) and entry.get("global_name"):
                        declared.setdefault(name, []).append((kind, out, entry["global_name"]))
        found: dict[str, dict] = {"parameters": {}, "artifacts": {}}
        rows = [r for r in client.query_steps(home, wf_id, phase="Succeeded")
                if r["template"] in declared and r["type"] not in ("StepGroup", "TaskGroup")]
        for row in sorted(rows, key=lambda r: (r["finished_at"] or 0, r["id"])):
            outputs = json.loads(row["outputs"] or "{}")
            for kind, out, global_name in declared[row["template"]]:
                if (outputs.get(kind) or {}).get(out) is not None:
                    found[kind][global_name] = outputs[kind][out]
        if not found["parameters"] and not found["artifacts"]:
            return None
        return IOView(found, client.store_for(home).read_value)

    def query_keys_of_steps(self) -> list[str]:
        return [s.key for s in self.query_step() if s.key]

    def terminate(self) -> None:
        self._request("terminate")

    def stop(self) -> None:
        """Argo's stop: as ``terminate``, except that the exit handler (``on_exit=``) runs."""
        self._request("stop")

    def delete(self, timeout: float = 120.0) -> None:
        """Argo's delete: a live workflow is terminated first; then its step directories
        and artifacts are removed as ``hpcflow gc`` removes them (its record stays, marked
        pruned, as Argo keeps a deleted workflow in its archive)."""
        from hpcflow.daemon import client
        from hpcflow.daemon.prune import prune_workflows

        home, wf_id = _config.home(), self._need_id()
        if self.query_status() not in FINAL_PHASES:
            with contextlib.suppress(HpcflowError):  # it may have ended meanwhile
                self.terminate()
            if self.wait(timeout=timeout) not in FINAL_PHASES:
                raise HpcflowError(f"workflow {wf_id} did not stop within {timeout:.0f} s "
                                   "of being terminated: not deleted")
        prune_workflows(home, [client.workflow_row(home, wf_id)])

    def suspend(self) -> None:
        """No new steps start until ``resume()``; running ones go on (as in dflow)."""
        self._request("suspend")

    def resume(self) -> None:
        self._request("resume")

    def retry(self) -> None:
        """Run the failed steps of this Failed workflow again (``hpcflow retry``)."""
        self._request("retry")

    def retry_steps(self, step_ids: Any) -> None:
        """dflow's ``retry_steps``: only these failed steps (ids from ``query_step()``) run
        again, in a running workflow (as dflow) or a failed one (reopened); the failed steps
        above them run on, other failed steps stay failed."""
        from hpcflow.daemon import client

        ids = [step_ids] if isinstance(step_ids, (str, int)) else list(step_ids)
        client.retry_steps(_config.home(), self._need_id(), ids)

    def resubmit(self) -> Workflow:
        """A new run of this workflow from its stored spec (Argo's resubmit, ``hpcflow
        resubmit``); returns it (dflow returns nothing; this object keeps the old id)."""
        from hpcflow.daemon import client

        new_id = client.resubmit(_config.home(), self._need_id(), False, [],
                                 float(_config.config.get("engine_idle_exit") or 600.0))
        return Workflow(id=new_id)

    @property
    def uid(self) -> str | None:
        """Argo's uid of the workflow: its id here."""
        return self.id

    def _request(self, kind: str) -> None:
        from hpcflow.daemon import client

        client.request(_config.home(), self._need_id(), kind)

    def __repr__(self) -> str:
        return f"<Workflow {self.id or self.name}>"


def nesting_step_dir(home: Path) -> Path | None:
    """The directory of the local step of ``home`` this process runs in, if any: a workflow
    submitted from there is nested in it (``STEP_DIR_ENV`` is set by the local executor)."""
    from hpcflow.connectors.executors.base import STEP_DIR_ENV

    step_dir = os.environ.get(STEP_DIR_ENV)
    if not step_dir:
        return None
    path = Path(step_dir)
    return path if path.is_relative_to(home) and path.is_dir() else None


#: Nested workflows this process lends its step's slot to: id -> marker file.
_lent: dict[str, Path] = {}


def lend_slot(step_dir: Path, wf_id: str, phase: Callable[[], str]) -> None:
    """While the nested workflow ``wf_id`` lives, the step that submitted it does not hold
    one of the local executor's slots (its own steps may need them: waiting for them must
    not deadlock). The engine removes the marker when the workflow ends; so does this
    process when it sees it end (it may have ended before the marker was made)."""
    from hpcflow.connectors.executors.base import NESTED_DIR

    marker = step_dir / NESTED_DIR / wf_id
    marker.parent.mkdir(exist_ok=True)
    marker.touch()
    _lent[wf_id] = marker
    phase()  # a workflow already over takes its marker back at once


def slot_returned(wf_id: str) -> None:
    marker = _lent.pop(wf_id, None)
    if marker is not None:
        marker.unlink(missing_ok=True)


def __getattr__(name: str) -> Any:
    """dflow's ``dflow.workflow`` names that applications import from it (read from
    ``hpcflow.argo_objects`` when asked for: it imports this module)."""
    if name in ("ArgoStep", "ArgoWorkflow", "query_archived_workflows", "query_workflows"):
        from hpcflow import argo_objects

        return getattr(argo_objects, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
