"""dflow's graphs: a workflow (``Workflow.to_graph``) or an OP (``OP.convert_to_graph``) as
plain JSON-able data, and back (``from_graph``).

A workflow's graph has dflow's shape: ``name``, ``labels``, ``parallelism``,
``parameters``, ``entrypoint`` and ``templates`` by name, each with dflow's ``type``
(``Steps``, ``DAG``, ``PythonOPTemplate``, ``ScriptOPTemplate``), ``inputs``/``outputs``,
and its ``steps``/``tasks`` (``template``, ``parameters``, ``artifacts``, ``when``, ``key``...)
or its OP (``op``: ``module``, ``name``, signs, ``source``). What dflow's graph holds as
pickled objects (executors, slices...) is hpcflow's stored form of each template, under
``hpcflow``, as in its Argo manifests (``hpcflow.manifest``). Reading a graph rebuilds
that stored form, makes each OP again from its ``op`` entry (imported by name, or, for an
OP of ``__main__``, by running its ``source``), renders the graph again and compares: a graph
hpcflow did not write, or one edited since, is refused in one line.

A graph is code: the ``source`` of an OP of ``__main__`` is run by ``from_graph``, as
dflow's is. Read only graphs you made or trust, as you would run a script.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable
from importlib import import_module
from typing import Any

from hpcflow.errors import WorkflowDefinitionError

#: Where a template's (and the workflow's) stored form travels in the graph.
STORED = "hpcflow"
_TYPES = {"steps": "Steps", "dag": "DAG", "python": "PythonOPTemplate"}
_MAIN = ("__main__", "__mp_main__")


def source_lines(obj: Any) -> list[str]:
    """The source lines of a function or class (empty when Python has none for it)."""
    try:
        return inspect.getsourcelines(obj)[0]
    except (OSError, TypeError):
        return []


def _source(op_class: type) -> str | None:
    """The OP's file from its start to the OP's end (its imports come with it), as dflow
    keeps it; an OP made from a graph keeps the source it was made from."""
    kept = op_class.__dict__.get("_hpcflow_source")
    if kept is not None:
        return str(kept)
    target = getattr(op_class, "_hpcflow_function", None) or op_class
    try:
        lines, start = inspect.getsourcelines(target)
        path = inspect.getsourcefile(target)
        if path is None:
            return None
        with open(path, encoding="utf-8") as f:
            before = f.readlines()[:max(start - 1, 0)]
    except (OSError, TypeError):
        return None
    return "".join(before + lines) + "\n"


def _sign_text(sign: Any) -> str:
    from hpcflow.python.typecheck import type_name

    return str(sign) if hasattr(sign, "type") else type_name(sign)


def op_graph(op: Any) -> dict:
    """dflow's ``OP.convert_to_graph()`` of an OP class or object."""
    op_class: Any = op if isinstance(op, type) else type(op)
    kept = "_hpcflow_source" in op_class.__dict__
    return {
        "module": "__main__" if kept else str(op_class.__module__),
        "name": op_class.__name__,
        "inputs": {k: _sign_text(v) for k, v in dict(op_class.get_input_sign()).items()},
        "outputs": {k: _sign_text(v) for k, v in dict(op_class.get_output_sign()).items()},
        "source": _source(op_class),
    }


def _refuse(what: str, why: str) -> WorkflowDefinitionError:
    return WorkflowDefinitionError(f"{what}.from_graph: {why}")


def op_from_graph(graph: Any) -> Any:
    """dflow's ``OP.from_graph``: the OP a graph names. One of ``__main__`` is made by
    running the graph's ``source`` (a graph is code: see the module's docstring)."""
    from hpcflow.python.op import OP

    if not isinstance(graph, dict) or not isinstance(graph.get("name"), str) \
            or not isinstance(graph.get("module"), str):
        raise _refuse("OP", "the graph is not an OP's (it needs 'module' and 'name', as "
                      "OP.convert_to_graph writes)")
    name, module = graph["name"], graph["module"]
    if module in _MAIN:
        source = graph.get("source")
        if not isinstance(source, str):
            raise _refuse("OP", f"OP {name!r} is of __main__ and its graph holds no source")
        namespace: dict[str, Any] = {"__name__": module}
        try:
            # The graph's own code, given by the caller (dflow runs it the same way).
            exec(compile(source, f"<graph of OP {name}>", "exec"), namespace)
        except Exception as exc:
            raise _refuse("OP", f"the source of OP {name!r} fails: "
                          f"{type(exc).__name__}: {exc}") from None
        op = namespace.get(name)
        if op is None:
            raise _refuse("OP", f"the source of OP {name!r} does not define it")
        op_class = op if isinstance(op, type) else type(op)
        op_class._hpcflow_source = source  # type: ignore[attr-defined]
    else:
        try:
            op = getattr(import_module(module), name)
        except (ImportError, AttributeError) as exc:
            raise _refuse("OP", f"OP {name!r} cannot be imported from {module!r}: "
                          f"{exc}") from None
    if not (isinstance(op, OP) or (isinstance(op, type) and issubclass(op, OP))):
        raise _refuse("OP", f"{module}.{name} is not an OP")
    return op


def _io(template: dict) -> dict:
    """The template's inputs and outputs in dflow's graph shape, from the stored form."""
    from hpcflow.manifest import _value_text

    ins, outs = template["inputs"], template["outputs"]

    def out_param(n: str, p: dict) -> dict:
        g = {"name": n, "type": p.get("type"), "value_from_path": p.get("value_from_path"),
             "value_from_parameter": _value_text(p["value_from_parameter"])
             if p.get("value_from_parameter") else None,
             "global_name": p.get("global_name"), "save_as_artifact": bool(p.get("big"))}
        if "default" in p:
            g["default"] = p["default"]
        return g

    def out_art(n: str, a: dict) -> dict:
        source = (a.get("from") or {}).get("expr") if isinstance(a.get("from"), dict) else None
        return {"name": n, "path": a.get("path"), "archive": a.get("archive", "default"),
                "global_name": a.get("global_name"), "_from": source}

    return {
        "inputs": {
            "parameters": {n: {"name": n, "type": p.get("type"),
                               "save_as_artifact": bool(p.get("big")),
                               **({"value": p["default"].get(
                                   "value", _value_text(p["default"]))}
                                  if "default" in p else {})}
                           for n, p in ins["parameters"].items()},
            "artifacts": {n: {"name": n, "path": a.get("path"),
                              "optional": bool(a.get("optional"))}
                          for n, a in ins["artifacts"].items()}},
        "outputs": {
            "parameters": {n: out_param(n, p) for n, p in outs["parameters"].items()},
            "artifacts": {n: out_art(n, a) for n, a in outs["artifacts"].items()}},
    }


def _step(step: dict) -> dict:
    from hpcflow.manifest import _artifact_argument, _loop_text, _value_text

    def source(n: str, v: Any) -> Any:
        arg = _artifact_argument(n, v)
        return arg.get("from") or arg.get("s3") or arg.get("raw")

    return {
        "name": step["name"], "template": step["template"],
        "parameters": {n: _value_text(v) for n, v in (step.get("parameters") or {}).items()},
        "artifacts": {n: source(n, v) for n, v in (step.get("artifacts") or {}).items()},
        "when": step.get("when"),
        "with_param": _loop_text(step["with_param"]) if step.get("with_param") else None,
        "with_sequence": (_loop_text(step["with_sequence"]) if step.get("with_sequence")
                          else None),
        "key": step.get("key"),
        "continue_on_failed": bool(step.get("continue_on_failed")),
        "continue_on_error": bool(step.get("continue_on_error")),
        "continue_on_num_success": step.get("continue_on_num_success"),
        "continue_on_success_ratio": step.get("continue_on_success_ratio"),
        "dependencies": list(step.get("dependencies") or []),
    }


def _template(template: dict, load_op: Callable[[str], Any]) -> dict:
    kind = template["kind"]
    stored = {k: v for k, v in template.items() if k != "op"}
    graph: dict[str, Any] = {"name": template["name"],
                             "type": _TYPES.get(kind, "ScriptOPTemplate"), **_io(template),
                             "timeout": template.get("timeout"),
                             "retry_on_transient_error": template.get("retry_on_transient_error")}
    if kind == "steps":
        graph["steps"] = [[_step(s) for s in group] for group in template["steps"]]
        graph["parallelism"] = template.get("parallelism")
    elif kind == "dag":
        graph["tasks"] = [_step(t) for t in template["tasks"]]
        graph["parallelism"] = template.get("parallelism")
    elif kind == "python":
        graph.update(op=op_graph(load_op(template["op"])), image=template.get("image"),
                     python_packages=list(template.get("python_packages") or []))
    else:
        graph.update(image=template.get("image"), command=template.get("command"),
                     script=template.get("script"), envs=template.get("envs") or {})
    graph[STORED] = stored
    return graph


def to_graph(spec: dict, blobs: dict[str, bytes], id: str | None = None) -> dict:
    """dflow's ``Workflow.to_graph()`` of a stored spec (``build_spec``'s) and its OPs."""
    import cloudpickle

    from hpcflow.spec import PICKLED_OPS
    from hpcflow.values import from_jsonable

    def load_op(digest: str) -> Any:
        if digest not in PICKLED_OPS:  # a stored workflow's OP, not pickled here
            PICKLED_OPS[digest] = cloudpickle.loads(blobs[digest])
        return PICKLED_OPS[digest]

    head = {k: v for k, v in spec.items() if k != "templates"}
    graph = {
        "name": spec["name"], "id": id, "labels": dict(spec.get("labels") or {}),
        "annotations": {}, "parallelism": spec.get("parallelism"),
        "parameters": {k: from_jsonable(v)
                       for k, v in (spec.get("workflow_parameters") or {}).items()},
        "entrypoint": spec["entrypoint"],
        "templates": {n: _template(t, load_op) for n, t in spec["templates"].items()},
        STORED: head,
    }
    return json.loads(json.dumps(graph, default=str))


def from_graph(graph: Any) -> tuple[dict, dict[str, bytes]]:
    """The stored spec and OP blobs of a graph ``to_graph`` wrote; each OP is made again
    with ``op_from_graph`` (which runs the source of an OP of ``__main__``)."""
    from hpcflow.spec import PICKLED_OPS, SPEC_VERSION, pickle_op_object

    if not isinstance(graph, dict) or not isinstance(graph.get("templates"), dict) \
            or not isinstance(graph.get(STORED), dict):
        raise _refuse("Workflow", "not a workflow graph that hpcflow wrote (it needs "
                      f"'templates' and {STORED!r}, as Workflow.to_graph writes them)")
    head = dict(graph[STORED])
    if head.get("version") != SPEC_VERSION:
        raise _refuse("Workflow", f"the graph is of hpcflow's format {head.get('version')!r}, "
                      f"this hpcflow reads {SPEC_VERSION}: make it again with this version")
    templates: dict[str, dict] = {}
    blobs: dict[str, bytes] = {}
    for name, entry in graph["templates"].items():
        stored = entry.get(STORED) if isinstance(entry, dict) else None
        if not isinstance(stored, dict) or stored.get("name") != name:
            raise _refuse("Workflow", f"template {name!r} has no {STORED!r} entry of that name")
        stored = dict(stored)
        if stored.get("kind") == "python":
            op = op_from_graph(entry.get("op"))
            blob = pickle_op_object(op)
            stored["op"] = hashlib.sha256(blob).hexdigest()
            blobs[stored["op"]] = blob
            PICKLED_OPS[stored["op"]] = op
        templates[name] = stored
    spec = {**head, "templates": templates}
    if spec.get("entrypoint") not in templates:
        raise _refuse("Workflow", f"the entrypoint {spec.get('entrypoint')!r} is not among "
                      "the templates")
    again = to_graph(spec, blobs, graph.get("id"))
    if again != graph:
        raise _refuse("Workflow", f"{_first_difference(again, graph)} differs from what "
                      "hpcflow wrote (the graph was edited?): change the workflow in Python "
                      "and make its graph again")
    return spec, blobs


def _first_difference(expected: dict, given: dict) -> str:
    for name, template in expected["templates"].items():
        if given["templates"].get(name) != template:
            return f"template {name!r}"
    return "the workflow"


__all__ = ["from_graph", "op_from_graph", "op_graph", "source_lines", "to_graph"]
