"""Resolving ``{{...}}`` references inside a Steps/DAG at run time (pure).

A value that is exactly one reference keeps the referenced value's type; a
reference inside a longer string is substituted as text.

>>> scope = Scope(inputs={"parameters": {"n": 3}, "artifacts": {}})
>>> resolve_text("{{inputs.parameters.n}}", scope), resolve_text("n-{{inputs.parameters.n}}", scope)
(3, 'n-3')
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

from hpcflow import values

_WHOLE = re.compile(r"^\{\{\s*([^{}]+?)\s*\}\}$")
_ANY = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")
_NO_ITEM: Any = object()
#: ``inputs.parameters.p['key'][0]``: a path, then dflow-style subscripts (``p["key"]``)
_SUBSCRIPTED = re.compile(r"^(?P<path>[^\[\]']+?)(?P<subs>(?:\[(?:'[^']*'|-?\d+)\])+)$")
_SUBSCRIPT = re.compile(r"\[(?:'([^']*)'|(-?\d+))\]")


class ResolveError(Exception):
    """A reference names something that does not exist (yet)."""


@dataclass
class Sibling:
    """What a reference may read of another step in the same Steps/DAG."""

    name: str
    phase: str
    inputs: dict
    outputs: dict | None


@dataclass
class Scope:
    inputs: dict
    siblings: MutableMapping[str, Sibling] = field(default_factory=dict)
    item: Any = _NO_ITEM
    workflow: dict = field(default_factory=dict)

    def value(self, data: Any) -> Any:
        """Stored data as the Python value it stands for: a value stored by digest is read
        through the workflow's ``read_value`` (the store's, passed by the service), a
        pickled one unpickled. Only what is looked at is read; references passed on whole
        stay references."""
        return values.from_jsonable(values.expand(data, self.workflow.get("read_value")))


def lookup(path: str, scope: Scope) -> Any:
    """The stored data that ``{{path}}`` names; ``path['key'][0]`` picks a field of it."""
    subscripted = _SUBSCRIPTED.match(path)
    if subscripted is None:
        return _lookup_path(path, scope)
    value = scope.value(_lookup_path(subscripted.group("path"), scope))
    for match in _SUBSCRIPT.finditer(subscripted.group("subs")):
        key: Any = match.group(1) if match.group(2) is None else int(match.group(2))
        if isinstance(value, str):  # dflow's jsonpath reads a parameter's text as JSON
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        fits = (isinstance(value, dict) and isinstance(key, str)) or (
            isinstance(value, (list, tuple)) and isinstance(key, int))
        if fits and (key in value if isinstance(value, dict) else -len(value) <= key < len(value)):
            value = value[key]
            continue
        what = f"key {key!r}" if isinstance(key, str) else f"index {key}"
        raise ResolveError(f"{{{{{path}}}}}: {values.short_repr(value)} has no {what}")
    return values.to_jsonable(value)


def _lookup_path(path: str, scope: Scope) -> Any:
    parts = path.split(".")
    head = parts[0]
    if head == "inputs" and len(parts) == 3 and parts[1] in ("parameters", "artifacts"):
        group = scope.inputs.get(parts[1], {})
        if parts[2] not in group:
            raise ResolveError(f"{{{{{path}}}}}: the enclosing template has no input {parts[2]!r}")
        return group[parts[2]]
    if head in ("steps", "tasks") and len(parts) == 5 and parts[3] in ("parameters", "artifacts"):
        sibling = scope.siblings.get(parts[1])
        if sibling is None:
            raise ResolveError(f"{{{{{path}}}}}: step {parts[1]!r} has not run")
        io = sibling.outputs if parts[2] == "outputs" else sibling.inputs
        group = (io or {}).get(parts[3], {})
        if parts[4] not in group:
            raise ResolveError(
                f"{{{{{path}}}}}: step {parts[1]!r} ({sibling.phase}) has no "
                f"{parts[2][:-1]} {parts[3][:-1]} {parts[4]!r}"
            )
        return group[parts[4]]
    if head == "item":
        if scope.item is _NO_ITEM:
            raise ResolveError(f"{{{{{path}}}}} is used outside a loop")
        value = scope.value(scope.item)
        for part in parts[1:]:
            if not isinstance(value, dict) or part not in value:
                raise ResolveError(f"{{{{{path}}}}}: the item has no field {part!r}")
            value = value[part]
        return values.to_jsonable(value)
    if head == "workflow" and len(parts) == 3 and parts[1] == "parameters":
        # dflow's Workflow(parameters={...}): Argo's global arguments
        given = scope.workflow.get("parameters") or {}
        if parts[2] not in given:
            raise ResolveError(f"{{{{{path}}}}}: the workflow has no parameter {parts[2]!r} "
                               f"(it has: {', '.join(sorted(given)) or 'none'})")
        return given[parts[2]]
    if head == "workflow" and len(parts) == 2 and parts[1] in scope.workflow:
        return scope.workflow[parts[1]]
    raise ResolveError(f"{{{{{path}}}}} is not a reference hpcflow knows")


#: ``{{workflow.parameters.NAME}}``, Argo's reference to a workflow argument.
WORKFLOW_PARAMETER = re.compile(r"\{\{\s*workflow\.parameters\.([A-Za-z0-9_-]+)\s*\}\}")


def bind_workflow_parameters(text: str, given: dict) -> str:
    """``text`` (a script) with each ``{{workflow.parameters.NAME}}`` replaced by the
    value's text, as Argo substitutes global arguments everywhere in a template."""
    return WORKFLOW_PARAMETER.sub(
        lambda m: values.render_text(values.from_jsonable(given[m.group(1)]))
        if m.group(1) in given else m.group(0), text)


#: ``{{workflow.status}}`` and ``{{workflow.failures}}``: what an exit handler's steps read.
WORKFLOW_END = re.compile(r"\{\{\s*workflow\.(status|failures)\s*\}\}")


def bind_workflow_end(text: str, context: dict) -> str:
    """``text`` (a script) with ``{{workflow.status}}``/``{{workflow.failures}}`` replaced by
    their text where ``context`` (the workflow's, once its entrypoint ended) has them."""
    return WORKFLOW_END.sub(lambda m: str(context.get(m.group(1), m.group(0))), text)


def is_single_reference(text: str) -> bool:
    return _WHOLE.match(text.strip()) is not None


def resolve_text(text: str, scope: Scope) -> Any:
    whole = _WHOLE.match(text)
    if whole:
        return lookup(whole.group(1), scope)
    return _ANY.sub(
        lambda m: values.render_text(scope.value(lookup(m.group(1), scope))), text)


def resolve_value(spec: dict, scope: Scope) -> Any:
    """A parameter value spec as stored JSON: ``{"value"}``, ``{"expr"}`` (text with
    references), ``{"calc"}`` (an expression such as ``p + 1``, computed), ``{"list"}`` /
    ``{"dict"}`` (a container with references inside) or ``{"text"}`` (a string inside such
    a container: its references are substituted as text, as Argo renders them)."""
    if "value" in spec:
        value = spec["value"]
        if isinstance(value, str) and "{{" in value:
            return resolve_text(value, scope)
        return value
    if "expr" in spec:
        return resolve_text(spec["expr"], scope)
    if "calc" in spec:
        from hpcflow.daemon.conditions import evaluate

        value = evaluate(spec["calc"], scope)
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # as Argo renders a number: 4.0 is "4"
        return values.to_jsonable(value)
    if "text" in spec:
        return _ANY.sub(
            lambda m: values.render_text(scope.value(lookup(m.group(1), scope))), spec["text"])
    if "list" in spec:
        return _container([resolve_value(v, scope) for v in spec["list"]], scope)
    if "dict" in spec:
        return _container({k: resolve_value(v, scope) for k, v in spec["dict"].items()}, scope)
    raise ResolveError(f"unknown value spec {spec!r}")


def _container(data: Any, scope: Scope) -> Any:
    """A resolved list or dict as stored JSON: as it is, or, when an element is a pickled
    value, the whole container decoded and stored again (a pickle is only read whole)."""
    items = data.values() if isinstance(data, dict) else data
    if not any((isinstance(v, dict) and values.PICKLE_TAG in v)
               or (values.is_ref(v) and values.ref_info(v)["kind"] == "object") for v in items):
        return data
    if isinstance(data, dict):
        return values.to_jsonable({k: scope.value(v) for k, v in data.items()})
    return values.to_jsonable([scope.value(v) for v in data])


def resolve_artifact(spec: dict | None, scope: Scope) -> dict | None:
    """The reference ``spec`` names, narrowed to the part it selects (``art[0]``,
    ``art.sub_path(p)``: ``select``/``sub_path`` in the spec)."""
    if spec is None:
        return None
    if "volume" in spec:  # a volume another step's output is copied into (``.pvc()``)
        return {"volume": dict(spec["volume"])}
    if "artifact" in spec:
        ref = dict(spec["artifact"])
    elif "expr" in spec:
        ref = resolve_text(spec["expr"], scope)
        if ref is not None and not (isinstance(ref, dict) and "parts" in ref):
            raise ResolveError(f"{spec['expr']} is not an artifact")
    else:
        raise ResolveError(f"unknown artifact spec {spec!r}")
    if ref is None or not (spec.get("select") or spec.get("sub_path")):
        return ref
    from hpcflow.artifact_part import ArtifactPartError, narrow

    try:
        return narrow(ref, spec.get("select") or (), spec.get("sub_path"),
                      lambda text: resolve_text(text, scope))
    except ArtifactPartError as exc:
        raise ResolveError(f"{spec.get('expr', 'artifact')}: {exc}") from None
