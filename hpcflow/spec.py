"""Turning a workflow's object graph into its stored form, checking it on the way.

The spec is JSON (structure) plus blobs (cloudpickled OPs, keyed by SHA-256).
Everything a user can get wrong about the structure is found here, before
anything reaches the store, with an error that names the step and the field.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import re
import sys
import types
from collections import ChainMap
from io import BytesIO
from typing import Any

import cloudpickle

from hpcflow import values
from hpcflow.artifacts import StoredArtifact
from hpcflow.by_value import is_installed_module, register_script_modules
from hpcflow.errors import WorkflowDefinitionError
from hpcflow.expressions import LoopSource
from hpcflow.io import (
    PVC,
    Expression,
    InputArtifact,
    InputParameter,
    OutputArtifact,
    OutputParameter,
    Reference,
    StepArtifactRef,
    StepParameterRef,
)
from hpcflow.names import check_key
from hpcflow.python.op import OP
from hpcflow.python.template import PythonOPTemplate, upload_packages
from hpcflow.python.typecheck import as_dflow_reads, describe, matches, type_name
from hpcflow.step import Step
from hpcflow.steps import DAG, Steps
from hpcflow.templates import SCRIPT_PARAMETER, OPTemplate, ScriptOPTemplate

SPEC_VERSION = 1
_REF_IN_TEXT = re.compile(r"\{\{\s*(steps|tasks)\.([A-Za-z0-9-]+)\.")
_IO_REF_IN_TEXT = re.compile(r"\{\{\s*(?:steps|tasks)\.([A-Za-z0-9-]+)\.(inputs|outputs)\."
                             r"(parameters|artifacts)\.([A-Za-z0-9_-]+)(?:\[[^{}]*\])?\s*\}\}")


#: The OP (class or object) of each blob pickled in this process, by sha256: what reads
#: a blob back here (``hpcflow.graph``) takes the OP itself, since unpickling a class
#: pickled by value in the same process would overwrite the live class's attributes.
PICKLED_OPS: dict[str, Any] = {}


def pickle_op(template: PythonOPTemplate) -> bytes:
    """Pickle the OP by value when it lives in a script or a local module, so jobs need no copy."""
    return pickle_op_object(template.op_object if template.op_object is not None
                            else template.op_class)


def pickle_op_object(payload: Any) -> bytes:
    """``pickle_op`` of an OP class or OP object."""
    op_class = payload if isinstance(payload, type) else type(payload)
    module_name = op_class.__module__
    if not is_installed_module(module_name) and module_name in sys.modules:
        cloudpickle.register_pickle_by_value(sys.modules[module_name])
    register_script_modules()  # helpers.py beside the script, which steps cannot import
    from hpcflow.as_dflow import wrap_pickle  # --as-dflow: the runner loads it with the hook

    return dumps_keeping_files(wrap_pickle(payload))


def _code_reduce_keeping_file(code: types.CodeType) -> Any:
    """cloudpickle's reduction of a code object, with the file it was written in instead of
    ``<dynamic-code>``: a failing OP's traceback in its step's log names the user's file
    (and shows its lines where the file is there too)."""
    ctor, args = cloudpickle.Pickler.dispatch_table[types.CodeType](code)
    return ctor, tuple(code.co_filename if arg == "<dynamic-code>" else arg for arg in args)


class _FileKeepingPickler(cloudpickle.Pickler):
    dispatch_table = ChainMap({types.CodeType: _code_reduce_keeping_file},
                              cloudpickle.Pickler.dispatch_table)


def dumps_keeping_files(payload: Any) -> bytes:
    """``cloudpickle.dumps``, code objects keeping their file names."""
    buffer = BytesIO()
    _FileKeepingPickler(buffer, protocol=pickle.DEFAULT_PROTOCOL).dump(payload)
    return buffer.getvalue()


def pickling_python() -> str:
    """The minor version of the Python that pickles OPs (this one): the runner needs the
    same, as cloudpickle's code objects differ between versions."""
    return f"{sys.version_info[0]}.{sys.version_info[1]}"


class SpecBuilder:
    """Walks templates reachable from the entrypoint; one spec entry per template object."""

    def __init__(self, default_executor: Any = None) -> None:
        #: ``Workflow(executor=...)``: where steps run that name no executor, nor their template.
        self.default_executor = default_executor
        self.templates: dict[str, dict] = {}
        self.blobs: dict[str, bytes] = {}
        self._names: dict[int, str] = {}
        self._taken: set[str] = set()
        #: Per container (by id, alive for the build): its steps by name, and for a Steps
        #: each step's group index.
        self._sibling_maps: dict[int, dict[str, Step]] = {}
        self._positions: dict[int, dict[str, int]] = {}

    def template_name(self, template: OPTemplate) -> str:
        if id(template) in self._names:
            return self._names[id(template)]
        name = template.name
        n = 2
        while name in self._taken:
            name = f"{template.name}-{n}"
            n += 1
        self._taken.add(name)
        self._names[id(template)] = name
        self.templates[name] = {}  # placeholder: recursion (a Steps using itself) ends here
        self.templates[name] = self._template_spec(template, name)
        return name

    def _io_spec(self, template: OPTemplate) -> dict:
        params: dict[str, Any] = {}
        for name, p in template.inputs.parameters.items():
            entry: dict[str, Any] = {}
            if isinstance(p, InputParameter) and p.has_value:
                entry["default"] = self.value_spec(p.value, f"template {template.name!r}")
            if getattr(p, "type", None) is not None:
                entry["type"] = type_name(p.type)
            if getattr(p, "save_as_artifact", False):
                entry["big"] = True
            params[name] = entry
        arts = {
            name: {"optional": bool(getattr(a, "optional", False)),
                   "path": getattr(a, "path", None)}
            for name, a in template.inputs.artifacts.items()
        }
        out_params: dict[str, Any] = {}
        for name, p in template.outputs.parameters.items():
            entry = {}
            if isinstance(p, OutputParameter):
                if p.type is not None:
                    entry["type"] = type_name(p.type)
                if p.has_default:
                    entry["default"] = values.to_jsonable(p.default)
                if p.value_from_path:
                    entry["value_from_path"] = p.value_from_path
                if p.save_as_artifact:
                    entry["big"] = True
                if p.global_name:
                    entry["global_name"] = p.global_name
                if p.value_from_parameter is not None:
                    entry["value_from_parameter"] = self.value_spec(
                        p.value_from_parameter, f"output {name!r} of {template.name!r}")
                if p.value_from_expression is not None:
                    entry["value_from_expression"] = _expression_spec(
                        p.value_from_expression, f"output {name!r} of {template.name!r}")
            out_params[name] = entry
        out_arts: dict[str, Any] = {}
        for name, a in template.outputs.artifacts.items():
            entry = {}
            if isinstance(a, OutputArtifact):
                entry["path"] = a.path
                entry["archive"] = a.archive
                if a.global_name:
                    entry["global_name"] = a.global_name
                if a._from is not None:
                    entry["from"] = self.artifact_spec(a._from, f"output {name!r}")
                if a.from_expression is not None:
                    entry["from_expression"] = _expression_spec(
                        a.from_expression, f"output {name!r} of {template.name!r}")
                if a.type is not None:
                    from hpcflow.python.signs import artifact_kind

                    entry["kind"] = artifact_kind(a.type)
            out_arts[name] = entry
        return {"inputs": {"parameters": params, "artifacts": arts},
                "outputs": {"parameters": out_params, "artifacts": out_arts}}

    def _template_spec(self, template: OPTemplate, name: str) -> dict:
        spec: dict[str, Any] = {"kind": template.kind, "name": name, **self._io_spec(template)}
        spec["timeout"] = template.timeout
        spec["retry_on_transient_error"] = template.retry_on_transient_error
        spec["retry_policy"] = getattr(template, "retry_policy", None)
        spec["timeout_as_transient_error"] = template.timeout_as_transient_error
        if isinstance(template, PythonOPTemplate):
            blob = pickle_op(template)
            digest = hashlib.sha256(blob).hexdigest()
            self.blobs[digest] = blob
            PICKLED_OPS[digest] = (template.op_object if template.op_object is not None
                                   else template.op_class)
            in_kinds = {n: getattr(a, "type", None) for n, a in template.inputs.artifacts.items()}
            from hpcflow.python.signs import artifact_kind

            spec.update(
                op=digest, op_name=template.op_class.__name__, image=template.image,
                python=pickling_python(),
                slices=template.slices.to_spec() if template.slices else None,
                python_packages=list(template.python_packages) + list(upload_packages),
                envs=dict(template.envs),
                input_artifact_kinds={n: artifact_kind(t) for n, t in in_kinds.items() if t},
            )
        elif isinstance(template, ScriptOPTemplate):
            for match in SCRIPT_PARAMETER.finditer(template.script):
                if match.group(1) not in template.inputs.parameters:
                    raise WorkflowDefinitionError(
                        f"template {name!r}: the script uses {match.group(0)}, which is not an "
                        f"input parameter of the template: declare it in inputs.parameters "
                        f"(it has: {', '.join(sorted(template.inputs.parameters)) or 'none'})")
            spec.update(image=template.image, command=template.command, script=template.script,
                        envs=dict(template.envs))
        elif isinstance(template, Steps):
            spec["steps"] = [[self.step_spec(s, template) for s in group]
                             for group in template.steps]
            spec["parallelism"] = template.parallelism
            self._check_container(template)
        elif isinstance(template, DAG):
            spec["tasks"] = [self.step_spec(t, template) for t in template.tasks]
            spec["parallelism"] = template.parallelism
            self._check_container(template)
            _check_acyclic(template.name, spec["tasks"])
        else:
            raise WorkflowDefinitionError(f"template {template!r} of unknown kind")
        return spec

    def _check_container(self, container: Steps | DAG) -> None:
        names = [s.name for s in container.all_steps()]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise WorkflowDefinitionError(
                f"{container.kind} {container.name!r} has more than one step named {dupes[0]!r}: "
                "step names must be unique within their Steps/DAG"
            )
        steps = {s.name: s for s in container.all_steps()}
        for kind, outputs in (("parameter", container.outputs.parameters),
                              ("artifact", container.outputs.artifacts)):
            for name, out in outputs.items():
                _check_io_references(
                    f"output {kind} {name!r} of {container.name!r}", steps,
                    [getattr(out, attr, None) for attr in ("value_from_parameter", "_from",
                                                           "value_from_expression",
                                                           "from_expression")])
        for name, out in container.outputs.parameters.items():
            src = getattr(out, "value_from_parameter", None)
            if src is None and getattr(out, "value_from_expression", None) is None and not (
                    isinstance(out, OutputParameter) and out.has_default):
                raise WorkflowDefinitionError(
                    f"output parameter {name!r} of {container.name!r} has no source: set "
                    "value_from_parameter (or value_from_expression, or a default)"
                )

    def value_spec(self, value: Any, where: str) -> dict:
        if isinstance(value, (StepArtifactRef, InputArtifact, OutputArtifact, StoredArtifact)):
            raise WorkflowDefinitionError(
                f"{where}: an artifact was given where a parameter is expected; pass it in "
                "artifacts={...}"
            )
        if isinstance(value, Expression):
            return {"calc": _checked_expression(str(value), where)}
        if isinstance(value, Reference):
            return {"expr": str(value)}
        if isinstance(value, str) and "{{" in value:
            return {"expr": value}
        if _needs_resolving(value):
            return self._container_spec(value, where)
        try:
            return {"value": values.to_jsonable(value)}
        except Exception as exc:
            raise WorkflowDefinitionError(
                f"{where}: value {values.short_repr(value)} cannot be stored: {exc}") from exc

    def _container_spec(self, value: Any, where: str) -> dict:
        """A dict or list with references (or ``{{...}}`` text) inside, as dflow resolves
        them: a reference by its value, a string by substituting text."""
        if isinstance(value, (list, tuple)):
            return {"list": [self._element_spec(v, where) for v in value]}
        if isinstance(value, dict):
            bad = next((k for k in value if not isinstance(k, str)), None)
            if bad is None:
                return {"dict": {k: self._element_spec(v, where) for k, v in value.items()}}
            raise WorkflowDefinitionError(
                f"{where}: a dict holding references needs str keys, not {values.short_repr(bad)}")
        raise WorkflowDefinitionError(
            f"{where}: a reference inside a {type(value).__name__} cannot be resolved: pass it "
            "as a parameter of its own, or inside a dict or list")

    def _element_spec(self, value: Any, where: str) -> dict:
        if isinstance(value, str) and not isinstance(value, Reference) and "{{" in value:
            return {"text": value}
        return self.value_spec(value, where)

    def artifact_spec(self, value: Any, where: str) -> dict | None:
        if value is None:
            return None
        if isinstance(value, PVC):  # another step's output shared through a volume (.pvc())
            return {"volume": _volume_ref(value, where)}
        if isinstance(value, StoredArtifact):
            return {"artifact": value.base_ref, **value.part_spec()}
        if isinstance(value, (StepArtifactRef, InputArtifact, OutputArtifact)):
            return {"expr": str(value), **value.part_spec()}
        if isinstance(value, str) and "{{" in value:
            return {"expr": value}
        if isinstance(value, StepParameterRef):
            raise WorkflowDefinitionError(
                f"{where}: a parameter was given where an artifact is expected; pass it in "
                "parameters={...}"
            )
        raise WorkflowDefinitionError(
            f"{where}: {values.short_repr(value)} is not an artifact: use upload_artifact(...) or "
            "another step's outputs.artifacts[...]"
        )

    def step_spec(self, step: Step, container: Steps | DAG) -> dict:
        where = f"step {step.name!r}"
        template_name = self.template_name(step.template)
        templ = step.template
        declared_p = templ.inputs.parameters
        declared_a = templ.inputs.artifacts
        for given in step.parameters:
            if given not in declared_p:
                raise WorkflowDefinitionError(
                    f"{where} gives parameter {given!r}, which template {templ.name!r} does not "
                    f"declare (it has: {', '.join(declared_p) or 'none'})"
                )
        for given in step.artifacts:
            if given not in declared_a:
                raise WorkflowDefinitionError(
                    f"{where} gives artifact {given!r}, which template {templ.name!r} does not "
                    f"declare (it has: {', '.join(declared_a) or 'none'})"
                )
        for name, decl in declared_p.items():
            has_default = isinstance(decl, InputParameter) and decl.has_value
            if name not in step.parameters and not has_default:
                raise WorkflowDefinitionError(
                    f"{where} is missing input parameter {name!r} of template {templ.name!r}: "
                    f"pass parameters={{{name!r}: ...}}"
                )
        for name, decl in declared_a.items():
            if step.artifacts.get(name) is None and not getattr(decl, "optional", False):
                raise WorkflowDefinitionError(
                    f"{where} is missing input artifact {name!r} of template {templ.name!r}: "
                    f"pass artifacts={{{name!r}: ...}} or declare it optional"
                )
        params = {n: self.value_spec(v, f"{where} parameter {n!r}")
                  for n, v in step.parameters.items()}
        for n, spec in params.items():
            if "value" in spec and not getattr(declared_p[n], "save_as_artifact", False):
                warn_if_large(spec["value"], f"{where} parameter {n!r}")
        slices = step.slices or getattr(templ, "slices", None)
        check_slices = getattr(slices, "check", None)
        if check_slices is not None:
            check_slices(where)
        if isinstance(templ, PythonOPTemplate):
            self._check_constant_types(step, templ, params)
        arts = {n: self.artifact_spec(v, f"{where} artifact {n!r}")
                for n, v in step.artifacts.items()}
        deps = sorted(self._dependencies(step, container))
        if step.when is not None:
            from hpcflow.daemon.conditions import ConditionError, check_syntax

            if not isinstance(step.when, (str, Reference)):
                raise WorkflowDefinitionError(
                    f"{where}: when={values.short_repr(step.when)} is a constant "
                    f"{type(step.when).__name__}, not a condition evaluated at run time: "
                    "compare references (p == True, p < 5) or give the condition's text")
            try:
                check_syntax(str(step.when))
            except ConditionError as exc:
                raise WorkflowDefinitionError(
                    f"{where}: cannot parse the when= condition {exc}") from exc
        if step.key is not None:
            try:
                check_key(str(step.key))
            except WorkflowDefinitionError as exc:
                raise WorkflowDefinitionError(f"{where}: {exc}") from exc
        executor = _spec_of(self._executor_of(step))
        volume_saves = self._volume_saves(step, arts, executor)
        extra = {"volume_saves": volume_saves} if volume_saves else {}
        return {
            **extra,
            "name": step.name,
            "template": template_name,
            "parameters": params,
            "artifacts": arts,
            "when": str(step.when) if step.when is not None else None,
            "key": str(step.key) if step.key is not None else None,
            "with_param": _loop_spec(step.with_param),
            "with_sequence": _loop_spec(step.with_sequence),
            "continue_on_failed": bool(step.continue_on_failed or step.continue_on_error),
            "continue_on_num_success": step.continue_on_num_success,
            "continue_on_success_ratio": step.continue_on_success_ratio,
            "timeout": step.timeout,
            "parallelism": step.parallelism,
            "dependencies": deps,
            "slices": step.slices.to_spec() if hasattr(step.slices, "to_spec") else None,
            "executor": executor,
        }

    def _volume_saves(self, step: Step, arts: dict[str, dict | None],
                      executor: dict | None) -> dict[str, list[dict]]:
        """The volumes each output artifact is copied into (``.pvc()``), after checking that
        the step's template is a script, as dflow requires of a step that mounts a volume,
        and that the step runs where its volumes are (``executor``: its spec)."""
        uses = [n for n, a in arts.items() if a and "volume" in a]
        saved: list[tuple[str, PVC]] = getattr(step, "volume_saves", [])
        if not (uses or saved):
            return {}
        templ = step.template
        if not isinstance(templ, ScriptOPTemplate):
            what = f"input artifact {uses[0]!r}" if uses else \
                f"output artifact {saved[0][0]!r}"
            raise WorkflowDefinitionError(
                f"step {step.name!r}: {what} goes through a volume (.pvc()), which only a "
                "script template (ShellOPTemplate, PythonScriptOPTemplate) can mount, as in "
                f"dflow; template {templ.name!r} is not one: pass the artifact without .pvc()")
        for name in uses:
            if not templ.inputs.artifacts[name].path:
                raise WorkflowDefinitionError(
                    f"step {step.name!r}: input artifact {name!r} comes from a volume "
                    "(.pvc()) and needs a path to appear at: declare InputArtifact(path=...)")
        saves: dict[str, list[dict]] = {}
        for name, claim in saved:
            if not getattr(templ.outputs.artifacts.get(name), "path", None):
                raise WorkflowDefinitionError(
                    f"step {step.name!r}: output artifact {name!r} is saved to a volume "
                    "(.pvc()) and needs the path the script writes: declare "
                    "OutputArtifact(path=...)")
            saves.setdefault(name, []).append(
                _volume_ref(claim, f"step {step.name!r} output artifact {name!r}"))
        self._check_volume_machine(step, executor)
        return saves

    def _executor_of(self, step: Step) -> Any:
        return step.executor or getattr(step.template, "executor", None) or self.default_executor

    def _check_volume_machine(self, step: Step, executor: dict | None) -> None:
        """A volume is a directory beside the workflow's step directories on one machine:
        the steps that share it run there (the local executor, a machine of the config file
        or one the workflow describes), the same machine for the writer and its readers."""
        from hpcflow.connectors.executors.kinds import BATCH_KIND, STEP_MACHINE_KIND

        here = _machine_of(executor)
        if here[0] not in ("local", BATCH_KIND, STEP_MACHINE_KIND):
            raise WorkflowDefinitionError(
                f"step {step.name!r}: a volume (.pvc()) is a directory its steps share on one "
                f"machine, and this step runs through {here[0]!r} executor: run it on the "
                "local executor or an HPC machine, or pass the artifact without .pvc()")
        for name, value in step.artifacts.items():
            writer = getattr(value, "step", None) if isinstance(value, PVC) else None
            if writer is None:
                continue
            theirs = _machine_of(_spec_of(self._executor_of(writer)))
            if theirs != here:
                raise WorkflowDefinitionError(
                    f"step {step.name!r}: input artifact {name!r} comes through a volume "
                    f"(.pvc()) from step {writer.name!r}, which runs on another machine "
                    f"({theirs[1] or 'local'}, not {here[1] or 'local'}): a volume is a "
                    "directory on one machine; run both steps on the same executor")

    def _check_constant_types(self, step: Step, templ: PythonOPTemplate, params: dict) -> None:
        for name, spec in params.items():
            if "value" not in spec or step.with_param is not None or step.with_sequence is not None:
                continue
            slices = step.slices or templ.slices
            if slices and name in slices.input_parameter:
                continue
            declared = templ.inputs.parameters[name].type
            value = as_dflow_reads(values.from_jsonable(spec["value"]), declared)
            # as dflow, None is not type-checked
            if declared is not None and value is not None and not matches(value, declared):
                raise WorkflowDefinitionError(
                    f"step {step.name!r} parameter {name!r}: OP {templ.op_class.__name__!r} "
                    f"expects {type_name(declared)}, got {describe(value)}"
                )

    def _siblings(self, container: Steps | DAG) -> dict[str, Step]:
        """A container's steps by name, made once per build (not once per step: a chain of
        5,000 steps would be 25 million lookups)."""
        key = id(container)
        if key not in self._sibling_maps:
            self._sibling_maps[key] = {s.name: s for s in container.all_steps()}
            if isinstance(container, Steps):
                self._positions[key] = {s.name: i for i, group in enumerate(container.steps)
                                        for s in group}
        return self._sibling_maps[key]

    def _dependencies(self, step: Step, container: Steps | DAG) -> set[str]:
        siblings = self._siblings(container)
        found: set[str] = set()
        for value in [*step.parameters.values(), *step.artifacts.values(), step.when, step.key,
                      step.with_param, step.with_sequence]:
            for ref_name in _referenced_steps(value):
                if ref_name not in siblings:
                    raise WorkflowDefinitionError(
                        f"step {step.name!r} refers to step {ref_name!r}, which is not in "
                        f"{container.kind} {container.name!r}"
                    )
                found.add(ref_name)
        for dep in step.dependencies:
            dep_name = dep if isinstance(dep, str) else getattr(dep, "name", None)
            if dep_name not in siblings:
                raise WorkflowDefinitionError(
                    f"task {step.name!r} depends on {dep_name!r}, which is not in "
                    f"{container.kind} {container.name!r}"
                )
            found.add(str(dep_name))
        _check_io_references(f"step {step.name!r}", siblings,
                             [*step.parameters.values(), *step.artifacts.values(), step.when,
                              step.key, step.with_param, step.with_sequence])
        found.discard(step.name)
        if isinstance(container, Steps):
            self._check_order(step, container, found)
        return found

    def _check_order(self, step: Step, container: Steps, refs: set[str]) -> None:
        position = self._positions[id(container)]
        for ref in refs:
            if position[ref] >= position[step.name]:
                raise WorkflowDefinitionError(
                    f"step {step.name!r} uses outputs of step {ref!r}, which does not run before "
                    f"it in {container.name!r}: add {ref!r} in an earlier wf.add(...)"
                )


def warn_if_large(stored: Any, where: str) -> None:
    """One line on stderr for a constant above ``values.WARN_BYTES``: it would pass through
    the store and every step that takes it; a file suits it better."""
    if isinstance(stored, str) and len(stored) * 4 <= values.WARN_BYTES:
        return
    size = len(values.stored_form(stored)[0])
    if size > values.WARN_BYTES:
        print(f"hpcflow: warning: {where} is {size / 2**20:.1f} MiB: parameters pass through "
              "the daemon and its store; give it as an artifact (upload_artifact) instead, or "
              "declare the input BigParameter to say the size is meant", file=sys.stderr)


def _check_acyclic(dag_name: str, tasks: list[dict]) -> None:
    deps = {t["name"]: set(t["dependencies"]) for t in tasks}
    done: set[str] = set()
    while len(done) < len(deps):
        ready = [n for n, d in deps.items() if n not in done and d <= done]
        if not ready:
            cycle = sorted(n for n in deps if n not in done)
            raise WorkflowDefinitionError(
                f"DAG {dag_name!r} has a dependency cycle among tasks {', '.join(cycle)}: "
                "remove one of the dependencies"
            )
        done.update(ready)


def _referenced_steps(value: Any) -> set[str]:
    if value is None:
        return set()
    if isinstance(value, (StepParameterRef, StepArtifactRef)):
        return {value.step.name}
    if isinstance(value, (list, tuple)):
        return {n for v in value for n in _referenced_steps(v)}
    if isinstance(value, dict):
        return {n for v in value.values() for n in _referenced_steps(v)}
    if isinstance(value, LoopSource):
        return {n for v in value.args.values() for n in _referenced_steps(v)}
    return {m.group(2) for m in _REF_IN_TEXT.finditer(str(value))}


def _io_references(value: Any) -> set[tuple[str, str, str, str]]:
    """``(step, "inputs"|"outputs", "parameters"|"artifacts", name)`` of each step I/O that
    ``value`` refers to, as a reference object or as ``{{steps.NAME...}}`` text."""
    if value is None:
        return set()
    if isinstance(value, (StepParameterRef, StepArtifactRef)):
        return {(value.step.name, value.io, value.kind, value.name)}
    if isinstance(value, (list, tuple)):
        return {r for v in value for r in _io_references(v)}
    if isinstance(value, dict):
        return {r for v in value.values() for r in _io_references(v)}
    if isinstance(value, LoopSource):
        return {r for v in value.args.values() for r in _io_references(v)}
    return {(m.group(1), m.group(2), m.group(3), m.group(4))
            for m in _IO_REF_IN_TEXT.finditer(str(value))}


def _check_io_references(where: str, steps: dict[str, Step], used: list[Any]) -> None:
    """Refuse a reference to an input or output that the step's template does not declare
    (``step.outputs.parameters["nope"]`` builds one without complaint)."""
    for step_name, io, kind, name in sorted(_io_references(used)):
        step = steps.get(step_name)
        if step is None:
            continue  # a step outside the container: refused where dependencies are found
        group = getattr(step.template, io)
        if name in getattr(group, kind):
            continue
        other = "artifacts" if kind == "parameters" else "parameters"
        hint = (f"; {name!r} is an {io[:-1]} {other[:-1]}: use {io}.{other}[{name!r}]"
                if name in getattr(group, other) else "")
        raise WorkflowDefinitionError(
            f"{where} uses {{{{{step.prefix}.{step_name}.{io}.{kind}.{name}}}}}, but step "
            f"{step_name!r} (template {step.template.name!r}) has no {io[:-1]} {kind[:-1]} "
            f"{name!r} (it has: {', '.join(getattr(group, kind)) or 'none'}){hint}")


def _expression_spec(value: Any, where: str) -> dict:
    """``if_expression(...)`` as data, or any other expression as its text; a condition
    hpcflow cannot parse is refused here."""
    if isinstance(value, LoopSource):
        spec = value.to_spec()
        if "cond" in spec:
            _checked_expression(spec["cond"], f"{where}: if_expression(_if=...)")
        return spec
    return {"expr": str(value)}


def _checked_expression(text: str, where: str) -> str:
    from hpcflow.daemon.conditions import ConditionError, check_syntax

    try:
        check_syntax(text)
    except ConditionError as exc:
        raise WorkflowDefinitionError(f"{where}: cannot parse the expression {exc}") from exc
    return text


def _needs_resolving(value: Any, depth: int = 0, in_object: bool = False) -> bool:
    """``value`` holds a reference somewhere (in a dict, list, tuple, set or an object's
    attributes), or ``{{...}}`` text in its dicts and lists: a constant only if not."""
    if isinstance(value, Reference):
        return True
    if isinstance(value, str) and "{{" in value:
        return not in_object
    if depth > 8 or isinstance(value, (str, bytes, int, float, bool)) or value is None:
        return False
    if isinstance(value, dict):
        return any(_needs_resolving(v, depth + 1, in_object) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_needs_resolving(v, depth + 1, in_object) for v in value)
    if isinstance(value, (set, frozenset)):
        return any(_needs_resolving(v, depth + 1, True) for v in value)
    attrs = getattr(value, "__dict__", None)
    return isinstance(attrs, dict) and any(_needs_resolving(v, depth + 1, True)
                                           for v in attrs.values())


def _loop_spec(value: Any) -> Any:
    if value is None:
        return None
    if hasattr(value, "to_spec"):
        return value.to_spec()
    if isinstance(value, Reference):
        return {"expr": str(value)}
    if isinstance(value, str):
        return {"expr": value}
    return {"value": values.to_jsonable(list(value))}


def _reachable(templates: dict[str, dict], start: str) -> set[str]:
    """The templates ``start`` runs, itself included (the steps' and tasks' ``template``)."""
    found, stack = set(), [start]
    while stack:
        name = stack.pop()
        if name in found or name not in templates:
            continue
        found.add(name)
        template = templates[name]
        for step in [s for group in template.get("steps") or [] for s in group] \
                + list(template.get("tasks") or []):
            stack.append(step.get("template"))
    return found


def _check_workflow_end_read_by_handler_only(templates: dict[str, dict], entry: str) -> None:
    """``{{workflow.status}}``/``{{workflow.failures}}`` exist once the steps ended: a
    template the steps run cannot read them (Argo fails such a step when it runs)."""
    from hpcflow.daemon.resolve import WORKFLOW_END

    for name in sorted(_reachable(templates, entry)):
        found = WORKFLOW_END.search(json.dumps(templates[name]))
        if found:
            raise WorkflowDefinitionError(
                f"template {name!r} uses {found.group(0)}, which only the steps of an exit "
                "handler (Workflow(on_exit=...)) can read: the workflow's steps run before "
                "it has a value")


def _check_values_given(template: OPTemplate, what: str) -> None:
    """A template the workflow itself starts (nothing hands it arguments): each input
    parameter needs a value."""
    for pname, decl in template.inputs.parameters.items():
        if not (isinstance(decl, InputParameter) and decl.has_value):
            raise WorkflowDefinitionError(
                f"the workflow's {what} {template.name!r} needs a value for input "
                f"parameter {pname!r}")


def workflow_parameters(given: dict[str, Any], templates: dict[str, dict]) -> dict:
    """``Workflow(parameters=...)`` as stored; each ``{{workflow.parameters.NAME}}`` in
    the templates must name one of them (Argo refuses the workflow otherwise)."""
    from hpcflow.daemon.resolve import WORKFLOW_PARAMETER

    for name in given:
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_-]+", name):
            raise WorkflowDefinitionError(
                f"Workflow(parameters=...): {name!r} is not a parameter name (letters, digits, "
                "'_' and '-')")
    for tname, template in templates.items():
        for match in WORKFLOW_PARAMETER.finditer(json.dumps(template)):
            if match.group(1) not in given:
                raise WorkflowDefinitionError(
                    f"template {tname!r} uses {match.group(0)}, but the workflow has no "
                    f"parameter {match.group(1)!r}: give it in Workflow(parameters={{...}}) "
                    f"(it has: {', '.join(sorted(given)) or 'none'})")
    try:
        return {k: values.to_jsonable(v) for k, v in given.items()}
    except Exception as exc:
        raise WorkflowDefinitionError(
            f"Workflow(parameters=...): a value cannot be stored: {exc}") from exc


def build_spec(name: str, entry: OPTemplate, parallelism: int | None = None,
               labels: dict | None = None, default_executor: Any = None,
               parameters: dict[str, Any] | None = None,
               on_exit: OPTemplate | None = None) -> tuple[dict, dict[str, bytes]]:
    """The stored form of a workflow and its OPs. ``on_exit``: dflow's exit handler, a
    template run once the entrypoint ended (``spec["on_exit"]`` names it)."""
    builder = SpecBuilder(default_executor)
    entry_name = builder.template_name(entry)
    _check_values_given(entry, "entry template")
    spec = {
        "version": SPEC_VERSION,
        "name": name,
        "entrypoint": entry_name,
        "templates": builder.templates,
        "parallelism": parallelism,
        "labels": dict(labels or {}),
    }
    if on_exit is not None:
        if not isinstance(on_exit, OPTemplate):
            raise WorkflowDefinitionError(
                f"Workflow(on_exit=...) takes a template (a Steps, DAG or OP template), not "
                f"a {type(on_exit).__name__}")
        _check_values_given(on_exit, "exit handler template")
        spec["on_exit"] = builder.template_name(on_exit)
    _check_workflow_end_read_by_handler_only(builder.templates, entry_name)
    given = workflow_parameters(parameters or {}, builder.templates)
    if given:
        spec["workflow_parameters"] = given
    return spec, builder.blobs


__all__ = ["OP", "build_spec"]


def _volume_ref(claim: PVC, where: str) -> dict[str, str]:
    """A volume (dflow's ``PVC``) as the spec keeps it; its name and subpath are single
    plain path components (they name a directory and a file in it on the machine)."""
    from hpcflow.daemon.volumes import check_component

    try:
        return {"name": check_component(str(claim.name), "volume name"),
                "subpath": check_component(str(claim.subpath), "volume subpath")}
    except ValueError as exc:
        raise WorkflowDefinitionError(f"{where}: {exc}") from None


def _spec_of(executor: Any) -> dict | None:
    """A step's executor as its spec stores it (None: the local executor)."""
    return executor.to_spec() if hasattr(executor, "to_spec") else None


def _machine_of(executor: dict | None) -> tuple[str, str | None]:
    """(executor kind, machine) a step runs on, from its executor's spec (None: local)."""
    if not executor:
        return ("local", None)
    return (str(executor.get("kind")), executor.get("machine") or executor.get("cluster"))
