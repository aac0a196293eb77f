"""Loops: the items of ``with_param`` / ``with_sequence``, and aggregating item outputs (pure).

>>> from hpcflow.daemon.resolve import Scope
>>> loop_items({"with_param": {"kind": "range", "start": {"value": 1}, "end": {"value": 4},
...             "step": {"value": 1}}, "with_sequence": None}, Scope(inputs={}))
[1, 2, 3]
"""

from __future__ import annotations

import json
from typing import Any

from hpcflow import values
from hpcflow.daemon.resolve import ResolveError, Scope, resolve_value


def _number(spec: dict | None, scope: Scope, default: int) -> int:
    if spec is None:
        return default
    value = evaluate(spec, scope)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ResolveError(f"loop bound {value!r} is not an integer")
    return value


def evaluate(spec: dict, scope: Scope) -> Any:
    """A loop source or a plain value spec, evaluated in ``scope``."""
    kind = spec.get("kind")
    if kind == "range":
        start, end = _number(spec.get("start"), scope, 0), _number(spec.get("end"), scope, 0)
        return list(range(start, end, _number(spec.get("step"), scope, 1)))
    if kind == "sequence":
        start = _number(spec.get("start"), scope, 0)
        if spec.get("count") is not None:
            seq = list(range(start, start + _number(spec["count"], scope, 0)))
        else:
            end = _number(spec.get("end"), scope, start)
            seq = list(range(start, end + 1)) if end >= start else list(range(start, end - 1, -1))
        fmt = evaluate(spec["format"], scope) if spec.get("format") else None
        return [fmt % i for i in seq] if fmt else seq
    if kind == "len":
        items = as_list(evaluate(spec["of"], scope))
        return len(items)
    return values.from_jsonable(resolve_value(spec, scope))


def as_list(value: Any) -> list:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ResolveError(f"loop parameter {value[:60]!r} is not a JSON list") from exc
    if not isinstance(value, list):
        raise ResolveError(f"loop parameter is a {type(value).__name__}, not a list")
    return value


def loop_items(step: dict, scope: Scope) -> list:
    source = step.get("with_param") or step.get("with_sequence")
    if source is None:
        raise ResolveError("the step has no loop")
    return [values.to_jsonable(v) for v in as_list(evaluate(source, scope))]


def item_label(item: Any) -> str:
    text = values.render_text(values.from_jsonable(item))
    return text if len(text) <= 40 else text[:37] + "..."


def aggregate_outputs(children: list[Any], template: dict) -> dict:
    """Outputs of a finished loop: each output parameter becomes the list of item values, in
    item order; artifacts of all items merge into one (their parts side by side)."""
    ordered = sorted(children, key=lambda c: int(c.slot))
    params = {
        name: [((c.outputs or {}).get("parameters") or {}).get(name) for c in ordered]
        for name in template["outputs"]["parameters"]
    }
    arts: dict[str, Any] = {}
    for name in template["outputs"]["artifacts"]:
        refs = [((c.outputs or {}).get("artifacts") or {}).get(name) for c in ordered]
        present = [r for r in refs if r]
        if present:
            arts[name] = {"parts": [p for r in present for p in r["parts"]],
                          "items": [r.get("items") for r in present]}
    return {"parameters": params, "artifacts": arts}
