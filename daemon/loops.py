"""Loops: the items of ``with_param`` / ``with_sequence``, and aggregating item outputs (pure).

>>> from hpcflow.daemon.resolve import Scope
>>> loop_items({"with_param": {"kind": "range", "start": {"value": 1}, "end": {"value": 4},
...             "step": {"value": 1}}, "with_sequence": None}, Scope(inputs={}))
[1, 2, 3]
"""

from __future__ import annotations

import ast
import json
import operator
import random
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from hpcflow import values
from hpcflow.artifact_files import flatten_items
from hpcflow.daemon.resolve import (
    ResolveError,
    Scope,
    resolve_artifact,
    resolve_text,
    resolve_value,
)


def _number(spec: dict | None, scope: Scope, default: int) -> int:
    if spec is None:
        return default
    value = evaluate(spec, scope)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ResolveError(f"loop bound {values.short_repr(value)} is not an integer")
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
    if kind == "sum":
        return sum(as_list(evaluate(spec["of"], scope)))
    if kind == "concat":
        return [x for part in as_list(evaluate(spec["of"], scope)) for x in as_list(part)]
    if kind == "enumerate":
        lists = {name: as_list(evaluate(arg, scope)) for name, arg in spec.items()
                 if name != "kind"}
        count = len(next(iter(lists.values())))
        return [{"order": i, **{name: values[i] for name, values in lists.items()}}
                for i in range(count)]
    return scope.value(resolve_value(spec, scope))


def as_list(value: Any) -> list:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ResolveError(f"loop parameter {value[:60]!r} is not a JSON list") from exc
    if not isinstance(value, list):
        raise ResolveError(f"loop parameter is a {type(value).__name__}, not a list")
    return value


def loop_items(step: dict, scope: Scope, slices: dict | None = None) -> list:
    source = step.get("with_param") or step.get("with_sequence")
    if source is None:
        if slices:
            return implicit_items(step, slices, scope)
        raise ResolveError("the step has no loop")
    return [values.to_jsonable(v) for v in as_list(evaluate(source, scope))]


def slices_of(step: dict, template: dict) -> dict | None:
    return step.get("slices") or template.get("slices")


def _index(slices: dict, scope: Scope) -> int:
    """The slice an item takes. dflow pastes the ``slices`` text, references resolved, into
    the step's Python code as an index, so ``"int('{{item}}')"`` and ``"{{item}} + 1"`` are
    indices too: such text is read as a small Python expression (see ``slice_index``)."""
    text = slices.get("slices") or "{{item}}"
    value = scope.value(resolve_text(text, scope))
    if isinstance(value, str):
        value = slice_index(value.strip())
    if not isinstance(value, int) or isinstance(value, bool):
        raise ResolveError(f"slices={text!r} gives {values.short_repr(value)}, not an index")
    return value


_OPERATORS: dict[type, Any] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
_CALLS: dict[str, Any] = {"int": int, "str": str, "len": len, "abs": abs}


def slice_index(text: str) -> Any:
    """``text`` as the Python expression dflow would run: numbers, strings, ``+ - * // %``,
    ``int()``, ``str()``, ``len()``, ``abs()``; anything else is left as the text.

    >>> slice_index("int('3')"), slice_index("2 * 3 + 1"), slice_index("7"), slice_index("a b")
    (3, 7, 7, 'a b')
    """
    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, str)):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](ev(node.operand))
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in _CALLS and not node.keywords and len(node.args) == 1):
            return _CALLS[node.func.id](ev(node.args[0]))
        raise ValueError(ast.dump(node))

    try:
        return ev(ast.parse(text, mode="eval").body)
    except (SyntaxError, ValueError, TypeError, ZeroDivisionError, RecursionError):
        return text


def flat_slices(ref: dict) -> dict:
    """A loop's merged artifact whose items are lists (or missing) as dflow slices it: its
    catalog, one path per slice, each with the parts of the item that made it; any other
    artifact as it is.

    >>> flat_slices({"parts": [], "items": [["a", "b"], None, ["c"]],
    ...              "slice_parts": [["p0"], [], ["p2"]]})["items"]
    ['a', 'b', 'c']
    """
    items = ref.get("items")
    if ("slice_parts" not in ref or not isinstance(items, list)
            or not any(x is None or isinstance(x, list) for x in items)):
        return ref
    pairs = [(rel, parts) for item, parts in zip(items, ref["slice_parts"], strict=True)
             for rel in flatten_items(item)]
    return {**ref, "items": [rel for rel, _ in pairs],
            "slice_parts": [parts for _, parts in pairs]}


def slice_artifact(ref: dict | None, index: int, sub_path: bool, name: str) -> dict | None:
    """Item ``index`` of a list artifact; with ``sub_path`` only that item's files are fetched."""
    if ref is None:
        return None
    ref = flat_slices(ref)
    items = ref.get("items")
    if not isinstance(items, list):
        raise ResolveError(f"sliced input artifact {name!r} is not a list of paths")
    if not 0 <= index < len(items):
        raise ResolveError(f"sliced input artifact {name!r} has no item {index}")
    if "slice_parts" in ref:
        parts = ref["slice_parts"][index]
    elif sub_path:
        if any(p.get("archive") == "tar" for p in ref["parts"]):
            raise ResolveError(f"Slices(sub_path=True) needs input artifact {name!r} stored "
                               "with archive=None")
        item = items[index]
        parts = [dict(p, sub=item) if isinstance(item, str) else p for p in ref["parts"]]
    else:
        parts = ref["parts"]
    return {"parts": parts, "items": items[index]}


def merge_artifacts(refs: list[dict | None]) -> dict:
    """One list artifact from several (item ``i`` is ``refs[i]``); each item's parts are kept
    apart so that a later step can slice it again. Identical parts are fetched once."""
    parts: list[dict] = []
    for ref in refs:
        for part in (ref or {}).get("parts", []):
            if part not in parts:
                parts.append(part)
    return {"parts": parts, "items": [r.get("items") if r else None for r in refs],
            "slice_parts": [r["parts"] if r else [] for r in refs]}


def sliced_steps(step: dict, slices: dict, items: list,
                 scope: Scope) -> Sequence[tuple[Any, dict]]:
    """One (item, step spec) per parallel step, each with its slices of the sliced inputs as
    constants. With ``group_size`` a step gets several slices: the sliced parameters as lists,
    the sliced artifacts as one list artifact, and ``slice_group`` saying which is which.

    Every slice is checked now (a bad index fails the loop's expansion); each step spec is
    made when it is read (``SlicedSteps``), so 100,000 slices are not 100,000 specs in
    memory at once."""
    full_params = {}
    for name in slices.get("input_parameter", []):
        if name not in step["parameters"]:
            raise ResolveError(f"sliced input parameter {name!r} is not given to the step")
        full_params[name] = as_list(scope.value(resolve_value(step["parameters"][name], scope)))
    full_arts = {name: resolve_artifact(step["artifacts"].get(name), scope)
                 for name in slices.get("input_artifact", [])}
    full_arts = {name: ref if ref is None else flat_slices(ref)
                 for name, ref in full_arts.items()}
    indices = [_index(slices, replace(scope, item=item)) for item in items]
    size = int(slices.get("group_size") or 0)
    order = list(range(len(items)))
    if size and slices.get("shuffle"):
        # dflow's order: the slice numbers shuffled by a generator seeded with random_seed
        random.Random(slices.get("random_seed") or 0).shuffle(order)
    groups = ([order[k:k + size] for k in range(0, len(items), size)]
              if size else [[i] for i in order])
    sliced = SlicedSteps(step, slices, items, indices, groups, full_params, full_arts)
    for name, full in full_params.items():
        bad = [indices[p] for p in order if not 0 <= indices[p] < len(full)]
        if bad:
            raise ResolveError(f"sliced input parameter {name!r} has no item {bad[0]}")
    for name, ref in full_arts.items():
        if ref is not None:  # the artifacts' slices too, once, before any step is made
            for p in order:
                slice_artifact(ref, indices[p], bool(slices.get("sub_path")), name)
    return sliced


class SlicedSteps(Sequence[tuple[Any, dict]]):
    """``sliced_steps``' (item, step spec) pairs, each made when it is read."""

    def __init__(self, step: dict, slices: dict, items: list, indices: list[int],
                 groups: list[list[int]], full_params: dict[str, list],
                 full_arts: dict[str, Any]) -> None:
        self.step, self.slices, self.items, self.indices = step, slices, items, indices
        self.groups, self.full_params, self.full_arts = groups, full_params, full_arts
        self.size = int(slices.get("group_size") or 0)

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, k: int) -> tuple[Any, dict]:  # type: ignore[override]  # no slices
        step, slices, size = self.step, self.slices, self.size
        positions = self.groups[k]
        chosen = [self.indices[p] for p in positions]
        params = dict(step["parameters"])
        for name, full in self.full_params.items():
            picked = [full[i] for i in chosen]
            params[name] = {"value": values.to_jsonable(picked if size else picked[0])}
        arts = dict(step["artifacts"])
        for name, ref in self.full_arts.items():
            refs = [slice_artifact(ref, i, bool(slices.get("sub_path")), name) for i in chosen]
            if ref is None:
                arts[name] = None
            else:
                arts[name] = {"artifact": merge_artifacts(refs) if size else refs[0]}
        extra: dict[str, Any] = {}
        if slices.get("create_dir"):
            extra["output_dir"] = str(positions[0])
        if size:
            extra["slice_group"] = {
                "size": len(positions), "first": positions[0], "positions": positions,
                "parameters": list(self.full_params), "artifacts": list(self.full_arts),
                "pool_size": slices.get("pool_size"), "create_dir": bool(slices.get("create_dir")),
                "timeout": slices.get("pool_timeout"), "tolerate": _tolerates(step, slices),
            }
        # a group is one step of a loop over the groups, as in dflow: its {{item}} is the
        # group's number; each slice inside it took its own item above
        item = k if size else self.items[positions[0]]
        return item, dict(step, parameters=params, artifacts=arts, **extra)


#: In a group's outputs: how many of its slices succeeded (a group's failure result too).
SUCCEEDED_SLICES = "succeeded_slices"


def _tolerates(step: dict, slices: dict) -> bool:
    """A group whose slices may fail without failing it (dflow's ``success_tag``): the step
    counts successful slices (``continue_on_num_success``/``_ratio``) and the group is not
    to raise (``raise_for_group``)."""
    counted = (step.get("continue_on_num_success") is not None
               or step.get("continue_on_success_ratio") is not None)
    return counted and not slices.get("raise_for_group")


def group_positions(group: dict) -> list[int]:
    """The slice numbers a group ran, in its order (groups made before ``shuffle`` existed
    hold only their first)."""
    return list(group.get("positions") or range(group["first"], group["first"] + group["size"]))


def is_implicit_loop(step: dict, slices: dict | None) -> bool:
    """A sliced step without ``with_param``/``with_sequence`` loops over its first sliced
    input, as dflow infers it."""
    if not slices or step.get("with_param") is not None or step.get("with_sequence") is not None:
        return False
    return bool(slices.get("input_parameter") or slices.get("input_artifact"))


def implicit_items(step: dict, slices: dict, scope: Scope) -> list:
    """A sliced step without a loop: one item per slice of the first sliced input (the first
    sliced parameter, else the first sliced artifact)."""
    for name in slices.get("input_parameter", []):
        if name in step["parameters"]:
            return list(range(len(as_list(scope.value(
                resolve_value(step["parameters"][name], scope))))))
    for name in slices.get("input_artifact", []):
        ref = resolve_artifact(step["artifacts"].get(name), scope)
        if ref is not None and isinstance(ref.get("items"), list):
            return list(range(len(flat_slices(ref)["items"])))
    raise ResolveError("Slices without a loop need a sliced input that is a list")


def item_label(item: Any) -> str:
    text = values.render_text(values.from_jsonable(item))
    return text if len(text) <= 40 else text[:37] + "..."


def _per_slice(child: Any, kind: str, name: str, read: Any = None) -> list:
    """A loop item's output ``name`` once per slice it ran: the value itself for a plain item,
    the list it returned for a step that ran a group of slices (None each if it has none;
    a list stored by digest is read with ``read``)."""
    value = ((child.outputs or {}).get(kind) or {}).get(name)
    group = (child.spec or {}).get("slice_group")
    if not group:
        reused = (child.reason or "").startswith("reused from ")
        return [_own_position(value, int(child.slot)) if kind == "artifacts" and reused
                else value]
    size = group["size"]
    if kind == "parameters":
        value = values.expand(value, read)
        return value if isinstance(value, list) and len(value) == size else [None] * size
    if value and len(value.get("slice_parts", [])) == size:
        return [{"parts": parts, "items": items}
                for parts, items in zip(value["slice_parts"], value["items"], strict=True)]
    return [None] * size


def _own_position(ref: dict | None, position: int) -> dict | None:
    """A reused item's artifact given as a positional list (``upload_artifact([None, path])``,
    set with ``modify_output_artifact`` on the item before reuse) holds only the item at the
    item's own position: in dflow its catalog order puts it in that place of the loop's
    list, so it stands for that item alone."""
    items = (ref or {}).get("items")
    if (not isinstance(items, list) or len(items) <= position or items[position] is None
            or any(x is not None for i, x in enumerate(items) if i != position)
            or "slice_parts" in (ref or {})):
        return ref
    return dict(ref or {}, items=items[position])


def slice_counts(child: Any, ok_phases: frozenset[str]) -> tuple[int, int]:
    """(slices that succeeded, slices) of one loop item: a plain item is one slice; a group
    counts its own (dflow's ``success_tag``: a group may succeed with failed slices)."""
    group = (child.spec or {}).get("slice_group")
    done = child.phase in ok_phases
    if not group:
        return int(done), 1
    counted = (child.outputs or {}).get(SUCCEEDED_SLICES)
    size = int(group["size"])
    return (int(counted) if isinstance(counted, int) else size if done else 0), size


def _slice_order(child: Any) -> list[int]:
    group = (child.spec or {}).get("slice_group")
    return group_positions(group) if group else [int(child.slot)]


class LoopOutputs:
    """A finished loop's outputs, gathered one item at a time (a loop of 100,000 items is
    never 100,000 items in memory, only what they output): each output parameter becomes
    the list of its values in item (slice) order; each output artifact, one list artifact of
    the items' artifacts (an empty one for a loop over nothing, or when no item made an
    optional output: its consumer gets ``[]``, as in dflow)."""

    def __init__(self, template: dict, read: Any = None) -> None:
        self.param_names = list(template["outputs"]["parameters"])
        self.art_names = list(template["outputs"]["artifacts"])
        self.read = read
        # Per item, in arrival order: its slot, whether it ran a group of slices, and each
        # output parameter's value (a group's: its list, one per slice). Flat lists, not an
        # object per item: 100,000 items are a few MB.
        self._slots: list[int] = []
        self._grouped = bytearray()
        self._values: dict[str, list[Any]] = {n: [] for n in self.param_names}
        #: output artifact -> (slice position, the item's artifact for it)
        self._arts: dict[str, list[tuple[int, Any]]] = {n: [] for n in self.art_names}

    def add(self, child: Any) -> None:
        grouped = bool((child.spec or {}).get("slice_group"))
        self._slots.append(int(child.slot))
        self._grouped.append(grouped)
        for name in self.param_names:
            per_slice = _per_slice(child, "parameters", name, self.read)
            self._values[name].append(per_slice if grouped else per_slice[0])
        for name in self.art_names:
            self._arts[name].extend(zip(_slice_order(child), _per_slice(child, "artifacts", name),
                                        strict=False))

    def result(self) -> dict:
        # parameters in the items' (groups') order, Argo's list of them; artifacts in slice
        # order (dflow's catalog order), also when Slices(shuffle=True) dealt them to the
        # groups in another
        order = sorted(range(len(self._slots)), key=self._slots.__getitem__)
        params = {name: [v for i in order
                         for v in (values[i] if self._grouped[i] else (values[i],))]
                  for name, values in self._values.items()}
        return {"parameters": params, "artifacts": {
            name: merge_artifacts([r for _, r in sorted(pairs, key=lambda pair: pair[0])])
            for name, pairs in self._arts.items()}}


def aggregate_outputs(children: Iterable[Any], template: dict, read: Any = None) -> dict:
    """``LoopOutputs`` of ``children``, all at once."""
    gathered = LoopOutputs(template, read)
    for child in children:
        gathered.add(child)
    return gathered.result()
