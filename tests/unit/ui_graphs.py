"""Plain step rows and specs for the graph tests (no store): the shapes a workflow takes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

LEAF_TEMPLATE = {"kind": "python"}


def row(step_id: int, parent_id: int, name: str, type_: str = "Pod",
        phase: str = "Succeeded", reason: str | None = None) -> dict[str, Any]:
    return {"id": step_id, "parent_id": parent_id, "name": name, "type": type_,
            "phase": phase, "reason": reason}


def fan_out(items: int, phases: dict[int, str] | None = None) -> Iterator[dict[str, Any]]:
    """A Steps root (id 1) with one loop (id 2) of ``items`` items, made as they are read;
    ``phases`` gives some items another phase than Succeeded."""
    phases = phases or {}
    yield row(1, 0, "wf", "Steps", "Running")
    yield row(2, 1, "fan", "StepGroup", "Running")
    for i in range(items):
        yield row(3 + i, 2, f"fan({i}:{i})", phase=phases.get(i, "Succeeded"))


FAN_SPEC = {"entrypoint": "main", "templates": {
    "main": {"kind": "steps", "steps": [[{"name": "fan", "template": "leaf"}]]},
    "leaf": LEAF_TEMPLATE}}


def diamond_spec(extra_tasks: int = 0) -> dict[str, Any]:
    """A DAG: a -> b, a -> c, b -> d, c -> d; then ``extra_tasks`` tasks t0.. after d."""
    tasks = [{"name": "a", "template": "leaf", "dependencies": []},
             {"name": "b", "template": "leaf", "dependencies": ["a"]},
             {"name": "c", "template": "leaf", "dependencies": ["a"]},
             {"name": "d", "template": "leaf", "dependencies": ["b", "c"]}]
    tasks += [{"name": f"t{i}", "template": "leaf", "dependencies": ["d"]}
              for i in range(extra_tasks)]
    return {"entrypoint": "dag", "templates": {"dag": {"kind": "dag", "tasks": tasks},
                                              "leaf": LEAF_TEMPLATE}}


def diamond_rows(extra_tasks: int = 0) -> list[dict[str, Any]]:
    rows = [row(1, 0, "wf", "DAG", "Running")]
    rows += [row(2 + i, 1, name) for i, name in enumerate("abcd")]
    rows += [row(6 + i, 1, f"t{i}") for i in range(extra_tasks)]
    return rows


#: A Steps root: prep; then in parallel a loop, slices, a nested Steps and a DAG; then sum.
MIXED_SPEC = {"entrypoint": "main", "templates": {
    "main": {"kind": "steps", "steps": [
        [{"name": "prep", "template": "leaf"}],
        [{"name": "fan", "template": "leaf", "with_param": {"value": [1, 2]}},
         {"name": "sliced", "template": "sliced"},
         {"name": "nested", "template": "inner"},
         {"name": "graph", "template": "dag"}],
        [{"name": "sum", "template": "leaf"}]]},
    "inner": {"kind": "steps", "steps": [[{"name": "one", "template": "leaf"}],
                                         [{"name": "two", "template": "leaf"}]]},
    "dag": diamond_spec()["templates"]["dag"],
    "sliced": {"kind": "python", "slices": {"input_parameter": ["x"]}},
    "leaf": LEAF_TEMPLATE}}


def mixed_rows(fan_items: int = 40) -> list[dict[str, Any]]:
    rows = [row(1, 0, "wf", "Steps", "Running"), row(2, 1, "prep"),
            row(3, 1, "fan", "StepGroup", "Running"), row(4, 1, "sliced", "StepGroup"),
            row(5, 1, "nested", "Steps", "Running"), row(6, 1, "graph", "DAG")]
    next_id = 7
    for i in range(fan_items):
        phase = "Failed" if i == 25 else "Running" if i == 33 else "Succeeded"
        rows.append(row(next_id, 3, f"fan({i}:{i})", phase=phase,
                        reason="ValueError: <boom>" if phase == "Failed" else None))
        next_id += 1
    for i in range(3):
        rows.append(row(next_id, 4, f"sliced({i}:{i})"))
        next_id += 1
    rows.append(row(next_id, 5, "one"))
    rows.append(row(next_id + 1, 5, "two", phase="Running"))
    next_id += 2
    for name in "abcd":
        rows.append(row(next_id, 6, name))
        next_id += 1
    return rows
