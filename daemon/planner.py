"""The planner: given a running Steps/DAG step and its children, what happens next (pure).

``plan_container`` returns actions; the service applies them in one transaction.
Nothing here touches the store, a file or a clock.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, MutableMapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from hpcflow import values
from hpcflow.daemon import states
from hpcflow.daemon.conditions import evaluate, is_true
from hpcflow.daemon.exit_handler import EXIT_HANDLER_SLOT, ROOT_SLOT
from hpcflow.daemon.loops import (
    LoopOutputs,
    aggregate_outputs,
    is_implicit_loop,
    item_label,
    loop_items,
    slice_counts,
    sliced_steps,
    slices_of,
)
from hpcflow.daemon.resolve import (
    ResolveError,
    Scope,
    Sibling,
    is_single_reference,
    resolve_artifact,
    resolve_text,
    resolve_value,
)

POD_KINDS = frozenset({"python", "shell", "pyscript"})
STEP_TYPE_OF_KIND = {"python": "Pod", "shell": "Pod", "pyscript": "Pod", "steps": "Steps",
                     "dag": "DAG"}


@dataclass(frozen=True)
class Node:
    """A step row as the planner sees it."""

    id: int
    slot: str
    name: str
    template: str
    type: str
    phase: str
    inputs: dict
    outputs: dict | None
    spec: dict | None
    reason: str | None = None
    depth: int = 0


@dataclass(frozen=True)
class CreateStep:
    parent_id: int
    slot: str
    name: str
    template: str
    type: str
    phase: str
    inputs: dict
    spec: dict
    key: str | None = None
    reason: str | None = None
    outputs: dict | None = None
    #: Created with this step, as its children (the items of a loop).
    children: Sequence[CreateStep] = ()


@dataclass(frozen=True)
class FinishStep:
    step_id: int
    phase: str
    outputs: dict | None = None
    reason: str | None = None


Action = CreateStep | FinishStep


def _tolerated(child: Node) -> bool:
    """A final child that does not fail its parent."""
    if child.phase in states.STEP_OK:
        return True
    spec = child.spec or {}
    return child.phase in (states.FAILED, states.ERROR, states.OMITTED) and bool(
        spec.get("continue_on_failed"))


def _siblings(children: list[Node]) -> dict[str, Sibling]:
    return {c.name: Sibling(c.name, c.phase, c.inputs, c.outputs) for c in children}


def skipped_outputs(template: dict) -> dict:
    """Outputs of a step that did not run: the declared defaults."""
    params = {n: p["default"] for n, p in template["outputs"]["parameters"].items()
              if "default" in p}
    return {"parameters": params, "artifacts": {}}


def coerce_text(value: Any, declared: str | None, read: Any = None) -> Any:
    """dflow's rule for values that travel as text (Argo parameters): a ``str`` sign gets the
    text; another sign gets JSON text decoded. A list or dict stored by digest becomes its
    JSON text without being read (the stored bytes are that text); text stored by digest is
    read (``read``) only to decode it.

    >>> coerce_text(3, "str"), coerce_text("[1, 2]", "List[int]"), coerce_text("x", "int")
    ('3', [1, 2], 'x')
    """
    if values.is_ref(value):
        info = values.ref_info(value)
        if declared == "str" and info["kind"] in ("list", "dict"):
            return {values.VALUE_TAG: {**info, "kind": "str"}}
        if declared in (None, "str", "Any") or info["kind"] != "str":
            return value
        value = values.expand(value, read)
    if declared == "str" and not isinstance(value, str) and not (
            isinstance(value, dict) and values.PICKLE_TAG in value):
        return values.render_text(value)
    if declared not in (None, "str", "Any") and isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def instantiate(step: dict, templates: dict, scope: Scope, parent_id: int, slot: str) -> CreateStep:
    """The child step row for ``step`` (a step spec), with its inputs resolved in ``scope``.

    A looped step becomes a StepGroup whose items are created with it, each resolved in
    ``scope`` with its own ``{{item}}``.
    """
    slices = slices_of(step, templates[step["template"]])
    if (step.get("with_param") is not None or step.get("with_sequence") is not None
            or is_implicit_loop(step, slices)):
        return instantiate_loop(step, templates, scope, parent_id, slot)
    return instantiate_one(step, templates, scope, parent_id, slot, step["name"])


def instantiate_loop(step: dict, templates: dict, scope: Scope, parent_id: int,
                     slot: str) -> CreateStep:
    common: dict[str, Any] = {"parent_id": parent_id, "slot": slot, "name": step["name"],
                              "template": step["template"], "type": "StepGroup", "spec": step}
    slices = slices_of(step, templates[step["template"]])
    single = dict(step, with_param=None, with_sequence=None, slices=None)
    try:
        items = loop_items(step, scope, slices)
        per_item = (sliced_steps(single, slices, items, scope) if slices
                    else [(item, single) for item in items])
    except ResolveError as exc:
        return CreateStep(**common, phase=states.ERROR, inputs={},
                          reason=f"cannot expand the loop of step {step['name']!r}: {exc}")
    if not per_item:
        return CreateStep(**common, phase=states.SUCCEEDED, inputs={"items": []},
                          outputs=aggregate_outputs([], templates[step["template"]]))
    return CreateStep(**common, phase=states.RUNNING, inputs={"items": items},
                      children=LoopItems(step["name"], per_item, templates, scope))


@dataclass(frozen=True)
class LoopItems(Sequence[CreateStep]):
    """A loop's items, each made when it is read: the service inserts a loop of 100,000
    items one by one, never holding 100,000 of them in memory."""

    step_name: str
    per_item: Sequence[tuple[Any, dict]]
    templates: dict
    scope: Scope

    def __len__(self) -> int:
        return len(self.per_item)

    def __getitem__(self, i: int) -> CreateStep:  # type: ignore[override]  # no slices
        item, spec = self.per_item[i]
        return instantiate_one(spec, self.templates, replace(self.scope, item=item), 0,
                               str(i), f"{self.step_name}({i}:{item_label(item)})")

def instantiate_one(step: dict, templates: dict, scope: Scope, parent_id: int, slot: str,
                    name: str) -> CreateStep:
    template = templates[step["template"]]
    step_type = STEP_TYPE_OF_KIND[template["kind"]]
    common: dict[str, Any] = {"parent_id": parent_id, "slot": slot, "name": name,
                              "template": step["template"], "type": step_type, "spec": step}
    try:
        params = {}
        for name, decl in template["inputs"]["parameters"].items():
            if name in step["parameters"]:
                given = step["parameters"][name]
                params[name] = resolve_value(given, scope)
                if "expr" in given or "calc" in given:  # computed: text for a str sign
                    params[name] = coerce_text(params[name], decl.get("type"),
                                               scope.workflow.get("read_value"))
            elif "default" in decl:
                params[name] = resolve_value(decl["default"], scope)
        arts = {name: resolve_artifact(step["artifacts"].get(name), scope)
                for name in template["inputs"]["artifacts"]}
        for name, ref in arts.items():
            if ref is None and not template["inputs"]["artifacts"][name].get("optional"):
                raise ResolveError(f"input artifact {name!r} has no value")
        key = resolve_key(step["key"], scope) if step.get("key") else None
        run = is_true(step["when"], scope) if step.get("when") else True
    except ResolveError as exc:
        return CreateStep(**common, phase=states.ERROR, inputs={},
                          reason=f"cannot resolve the inputs of step {step['name']!r}: {exc}")
    reused = scope.workflow.get("reuse", {}).get(key) if key is not None else None
    if step.get("volume_saves"):
        # its readers wait for its output in this workflow's volume, which only a run fills
        reused = None
    if reused is not None and run:
        return CreateStep(**common, phase=states.SUCCEEDED,
                          inputs={"parameters": params, "artifacts": arts}, key=key,
                          reason=f"reused from {reused['from']}", outputs=reused["outputs"])
    if not run:
        return CreateStep(**common, phase=states.SKIPPED,
                          inputs={"parameters": params, "artifacts": arts},
                          key=key,
                          reason=f"when {step['when']!r} is false",
                          outputs=skipped_outputs(template))
    phase = states.PENDING if step_type == "Pod" else states.RUNNING
    return CreateStep(**common, phase=phase, inputs={"parameters": params, "artifacts": arts},
                      key=key)


def resolve_key(text: str, scope: Scope) -> str:
    """A step's key with its references resolved, as Argo renders text (a list item as JSON);
    only the key as written is checked (at submission), as in dflow."""
    key = resolve_text(text, scope)
    return key if isinstance(key, str) else values.render_text(scope.value(key))


def _branch(spec: dict, scope: Scope) -> dict:
    """The chosen side of ``if_expression``; the other side is never resolved."""
    return spec["then"] if is_true(spec["cond"], scope) else spec["otherwise"]


def expression_value(spec: dict, scope: Scope) -> Any:
    """``value_from_expression``: an ``if_expression`` or an expression's text."""
    if spec.get("kind") == "if":
        return resolve_value(_branch(spec, scope), scope)
    text = spec["expr"]
    if is_single_reference(text):
        return resolve_text(text, scope)
    return values.to_jsonable(evaluate(text, scope))


def expression_artifact(spec: dict, scope: Scope) -> dict | None:
    """``from_expression``: an ``if_expression`` choosing between artifacts."""
    if spec.get("kind") == "if":
        return resolve_artifact(_branch(spec, scope), scope)
    return resolve_artifact(spec, scope)


def container_outputs(template: dict, scope: Scope) -> tuple[dict, str | None]:
    """Outputs of a finished Steps/DAG from ``value_from_parameter`` / ``_from``."""
    params: dict[str, Any] = {}
    arts: dict[str, Any] = {}
    for name, decl in template["outputs"]["parameters"].items():
        try:
            if "value_from_parameter" in decl:
                params[name] = resolve_value(decl["value_from_parameter"], scope)
            elif "value_from_expression" in decl:
                params[name] = expression_value(decl["value_from_expression"], scope)
            elif "default" in decl:
                params[name] = decl["default"]
        except ResolveError as exc:
            if "default" in decl:
                params[name] = decl["default"]
            else:
                return {}, f"output parameter {name!r} of {template['name']!r}: {exc}"
    for name, decl in template["outputs"]["artifacts"].items():
        try:
            if decl.get("from") is not None:
                arts[name] = resolve_artifact(decl["from"], scope)
            elif decl.get("from_expression") is not None:
                arts[name] = expression_artifact(decl["from_expression"], scope)
        except ResolveError as exc:
            return {}, f"output artifact {name!r} of {template['name']!r}: {exc}"
    return {"parameters": params, "artifacts": arts}, None


def _finish(node: Node, template: dict, children: list[Node], scope: Scope) -> FinishStep:
    """A container whose children are all final: failed by the first that is not tolerated
    (among ``children``: the ones that could be), else succeeded with its outputs resolved in
    ``scope``."""
    failed = [c for c in children if c.phase in states.STEP_FINAL and not _tolerated(c)]
    if failed:
        first = failed[0]
        why = f": {first.reason}" if first.reason else ""
        return FinishStep(node.id, states.FAILED,
                          reason=f"step {first.name!r} {first.phase.lower()}{why}")
    outputs, error = container_outputs(template, scope)
    if error:
        return FinishStep(node.id, states.ERROR, reason=error)
    return FinishStep(node.id, states.SUCCEEDED, outputs=outputs)


def group_of(slot: str) -> int:
    """The index of the group a Steps child belongs to (its slot is ``"GROUP.NAME"``)."""
    return int(slot.split(".", 1)[0])


def steps_slots(template: dict) -> dict[str, str]:
    """A Steps template's step names -> the slots their steps have (``"GROUP.NAME"``)."""
    return {step["name"]: f"{gi}.{step['name']}"
            for gi, group in enumerate(template["steps"]) for step in group}


def plan_steps(node: Node, template: dict, children: list[Node], templates: dict,
               workflow: dict, siblings: MutableMapping[str, Sibling] | None = None
               ) -> list[Action]:
    """Steps: run groups in order; a group starts when the one before is done and tolerated.

    Groups start in order and only after the one before ended tolerated, so only the last
    started group decides what happens next: ``children`` may be just that group (the
    service reads no more), with ``siblings`` giving the other children by name as
    references need them.
    """
    scope = Scope(inputs=node.inputs, workflow=workflow,
                  siblings=_siblings(children) if siblings is None else siblings)
    started = max((group_of(c.slot) for c in children), default=-1)
    current = [c for c in children if group_of(c.slot) == started]
    if any(c.phase in states.STEP_LIVE for c in current):
        return []
    if any(not _tolerated(c) for c in current):
        return [_finish(node, template, current, scope)]
    groups = template["steps"]
    following = next((gi for gi in range(started + 1, len(groups)) if groups[gi]), None)
    if following is None:
        return [_finish(node, template, current, scope)]
    return [instantiate(step, templates, scope, node.id, f"{following}.{step['name']}")
            for step in groups[following]]


def plan_dag(node: Node, template: dict, children: list[Node], templates: dict,
             workflow: dict, siblings: MutableMapping[str, Sibling] | None = None
             ) -> list[Action]:
    """DAG: a task starts once its dependencies are done; after a failure nothing new starts.

    Omissions propagate within one call (a task after an omitted one is omitted too).
    ``children`` need their inputs and outputs only where ``siblings`` is not given (the
    service reads those by name, as references need them).
    """
    by_slot = {c.slot: c for c in children}
    scope = Scope(inputs=node.inputs, workflow=workflow,
                  siblings=_siblings(children) if siblings is None else siblings)
    failing = any(c.phase in states.STEP_FINAL and not _tolerated(c) for c in children)
    actions: list[Action] = []
    progress = True
    while progress:
        progress = False
        for task in template["tasks"]:
            if task["name"] in by_slot:
                continue
            deps = [by_slot.get(d) for d in task["dependencies"]]
            if any(d is None or d.phase in states.STEP_LIVE for d in deps):
                continue
            if failing or any(not _tolerated(d) for d in deps if d is not None):
                reason = "an earlier task failed" if failing else "a dependency failed"
                action = CreateStep(node.id, task["name"], task["name"], task["template"],
                                    STEP_TYPE_OF_KIND[templates[task["template"]]["kind"]],
                                    states.OMITTED, {}, task, reason=reason)
            else:
                action = instantiate(task, templates, scope, node.id, task["name"])
            actions.append(action)
            made = Node(-1, action.slot, action.name, action.template, action.type,
                        action.phase, action.inputs, action.outputs, action.spec, action.reason)
            by_slot[task["name"]] = made
            # a task final when made (reused, skipped, a loop over nothing) is read by the
            # tasks planned after it in this same pass
            scope.siblings[made.name] = Sibling(made.name, made.phase, made.inputs, made.outputs)
            progress = True
    if actions or any(c.phase in states.STEP_LIVE for c in by_slot.values()):
        return actions
    if len(by_slot) < len(template["tasks"]):
        return []  # cannot happen for an acyclic DAG; a cycle is refused when the spec is built
    return [_finish(node, template, children, scope)]


def plan_loop(node: Node, template: dict, children: Iterable[Node],
              read: Any = None) -> list[Action]:
    """A StepGroup is done when every item is; ``continue_on_num_success`` / ``_ratio`` say
    how many slices must succeed (an item is one slice, a group of slices counts each).
    ``children`` are read once, one at a time (the service streams a large loop's)."""
    spec = node.spec or {}
    outputs = LoopOutputs(template, read)
    ok = total = items = failed = 0
    first_failed: Node | None = None
    grouped = False
    for child in children:
        if child.phase in states.STEP_LIVE:
            return []
        done, size = slice_counts(child, states.STEP_OK)
        ok, total, items = ok + done, total + size, items + 1
        if child.phase not in states.STEP_OK:
            failed += 1
            first_failed = first_failed or child
        grouped = grouped or bool((child.spec or {}).get("slice_group"))
        outputs.add(child)
    enough, needs = not failed, ""
    if spec.get("continue_on_num_success") is not None:
        wanted = int(spec["continue_on_num_success"])
        enough, needs = ok >= wanted, f"continue_on_num_success={wanted}"
    if spec.get("continue_on_success_ratio") is not None:
        ratio = float(spec["continue_on_success_ratio"])
        # 7 of 10 is 0.7 of them, though 0.7 * 10 is 7.000000000000001 in floating point
        # (which dflow's check, succ >= ratio * total, refuses)
        wanted = math.ceil(ratio * total - 1e-9 * max(1, total))
        enough = ok >= wanted
        needs = f"continue_on_success_ratio={ratio:g} needs {wanted}"
    if enough:
        return [FinishStep(node.id, states.SUCCEEDED, outputs=outputs.result())]
    if first_failed is not None:
        why = f": {first_failed.reason}" if first_failed.reason else ""
        detail = f"{first_failed.name} {first_failed.phase.lower()}{why}"
    else:  # groups that succeeded with failed slices (their failures in their logs)
        detail = "see the groups' logs (hpcflow logs) for the slices that failed"
    what = (f"{total - ok} of {total} slices failed" if grouped
            else f"{failed} of {items} items failed")
    if needs:  # the threshold the successes fell short of, and by how much
        what += f" ({ok} succeeded; {needs})"
    return [FinishStep(node.id, states.FAILED, outputs=outputs.result(),
                       reason=f"{what}; {detail}")]


def plan_container(node: Node, templates: dict, children: Iterable[Node], workflow: dict,
                   siblings: MutableMapping[str, Sibling] | None = None) -> list[Action]:
    """What happens next in a running Steps, DAG or StepGroup (``workflow`` holds its name,
    id, ``max_depth``, the recursion limit, and ``read_value``, which reads a value stored
    by digest when one must be looked at).

    ``children`` are the node's children, all of them (a loop's may be an iterator, read
    once), or for a Steps only its last started group; ``siblings`` (default: from
    ``children``) gives children by name for references.
    """
    if node.phase != states.RUNNING:
        return []
    template = templates[node.template]
    if node.type == "StepGroup":
        return plan_loop(node, template, children, workflow.get("read_value"))
    if template["kind"] == "steps":
        actions = plan_steps(node, template, list(children), templates, workflow, siblings)
    elif template["kind"] == "dag":
        actions = plan_dag(node, template, list(children), templates, workflow, siblings)
    else:
        return []
    limit = workflow.get("max_depth")
    if limit is None or node.depth < int(limit):
        return actions
    return [_too_deep(a, int(limit)) if isinstance(a, CreateStep) and a.type != "Pod" else a
            for a in actions]


def _too_deep(action: CreateStep, limit: int) -> CreateStep:
    return replace(action, phase=states.ERROR, inputs={}, children=(), reason=(
        f"step {action.name!r} would nest Steps/DAGs deeper than max_recursion_depth={limit}: "
        "end the recursion with a when= condition, or raise hpcflow.config"
        "['max_recursion_depth']"))


def root_step(spec: dict) -> CreateStep:
    """The step that stands for the whole workflow: the entry template, instantiated."""
    return _top_step(spec, spec["entrypoint"], ROOT_SLOT,
                     {"parameters": spec.get("workflow_parameters") or {}})


def exit_handler_step(spec: dict, workflow: dict) -> CreateStep:
    """dflow's (Argo's) exit handler, ``Workflow(on_exit=...)``: its template instantiated
    beside the root once the root ended; ``workflow`` holds ``status`` and ``failures``."""
    return _top_step(spec, spec["on_exit"], EXIT_HANDLER_SLOT, workflow)


def _top_step(spec: dict, template_name: str, slot: str, workflow: dict) -> CreateStep:
    template = spec["templates"][template_name]
    scope = Scope(inputs={"parameters": {}, "artifacts": {}}, workflow=workflow)
    params = {n: resolve_value(p["default"], scope)
              for n, p in template["inputs"]["parameters"].items() if "default" in p}
    step_type = STEP_TYPE_OF_KIND[template["kind"]]
    return CreateStep(0, slot, spec["name"], template_name, step_type,
                      states.RUNNING if step_type != "Pod" else states.PENDING,
                      {"parameters": params, "artifacts": {}}, {"name": spec["name"],
                                                                 "template": template_name})
