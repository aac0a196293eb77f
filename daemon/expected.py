"""How many leaf steps a workflow will have, when its spec says so before it runs: for
``hpcflow status`` to show a failed 3-step workflow as 2/3, not 2/2 (steps after a failure
are never created). Loops, slices, choices between templates (``then``/``otherwise``) and
recursion decide their count at run time: then it is not known (None)."""

from __future__ import annotations

from typing import Any

from hpcflow.daemon.loops import is_implicit_loop, slices_of

CONTAINERS = ("steps", "dag")


def expected_leaf_steps(spec: dict) -> int | None:
    """Leaf steps a complete run of ``spec`` creates (each ``when`` step counts: a skipped
    one is a row too); None when that depends on the run.

    >>> leaf = {"kind": "python"}
    >>> step = {"template": "leaf", "with_param": None, "with_sequence": None}
    >>> inner = {"kind": "dag", "tasks": [step, step]}
    >>> root = {"kind": "steps", "steps": [[step], [{**step, "template": "inner"}]]}
    >>> spec = {"entrypoint": "root", "templates": {"root": root, "inner": inner,
    ...                                             "leaf": leaf}}
    >>> expected_leaf_steps(spec)
    3
    >>> root["steps"].append([{**step, "with_param": "{{x}}"}])
    >>> expected_leaf_steps(spec) is None
    True
    """
    templates = spec.get("templates") or {}
    return _count(spec.get("entrypoint"), templates, frozenset())


def _count(name: Any, templates: dict, seen: frozenset) -> int | None:
    template = templates.get(name)
    if template is None or name in seen:  # unknown, or recursion: decided at run time
        return None
    if template.get("kind") not in CONTAINERS:
        return 1
    members = [s for group in template.get("steps") or [] for s in group] \
        if template["kind"] == "steps" else list(template.get("tasks") or [])
    total = 0
    for member in members:
        counted = _member(member, templates, seen | {name})
        if counted is None:
            return None
        total += counted
    return total


def _member(step: dict, templates: dict, seen: frozenset) -> int | None:
    if "then" in step or "otherwise" in step or not isinstance(step.get("template"), str):
        return None
    if step.get("with_param") is not None or step.get("with_sequence") is not None:
        return None
    template = templates.get(step["template"])
    if template is None or is_implicit_loop(step, slices_of(step, template)):
        return None
    return _count(step["template"], templates, seen)
