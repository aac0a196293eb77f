"""Loop expansion and aggregation, without the engine."""

import pytest

from hpcflow import Step, Steps, Workflow, argo_len, argo_range, argo_sequence
from hpcflow.daemon.loops import loop_items
from hpcflow.daemon.planner import Node, plan_container, root_step
from hpcflow.daemon.resolve import ResolveError, Scope
from hpcflow.python import OP, PythonOPTemplate
from hpcflow.spec import build_spec


@OP.function
def double(x: int) -> {"y": int}:
    return {"y": 2 * x}


def _items(with_param=None, with_sequence=None, inputs=None):
    step = Step("s", PythonOPTemplate(double), parameters={"x": "{{item}}"},
                with_param=with_param, with_sequence=with_sequence)
    wf = Workflow("w")
    wf.add(step)
    assert wf.entry is not None
    spec, _ = build_spec("w", wf.entry)
    step_spec = spec["templates"]["w"]["steps"][0][0]
    return loop_items(step_spec, Scope(inputs=inputs or {"parameters": {}, "artifacts": {}}))


def test_loop_sources():
    assert _items(with_param=argo_range(3)) == [0, 1, 2]
    assert _items(with_param=argo_range(2, 8, 3)) == [2, 5]
    assert _items(with_param=["a", {"k": 1}]) == ["a", {"k": 1}]
    assert _items(with_sequence=argo_sequence(count=3, start=5)) == [5, 6, 7]
    assert _items(with_sequence=argo_sequence(end=2)) == [0, 1, 2]
    assert _items(with_sequence=argo_sequence(count=2, format="%03d")) == ["000", "001"]
    assert _items(with_sequence=argo_sequence(argo_len([7, 8, 9]))) == [0, 1, 2]


def test_loop_over_an_input_parameter_given_as_json_text():
    inner = Steps("inner")
    from hpcflow import InputParameter

    inner.inputs.parameters["xs"] = InputParameter()
    with pytest.raises(ResolveError, match="not a list"):
        loop_items({"with_param": {"expr": "{{inputs.parameters.xs}}"}},
                   Scope(inputs={"parameters": {"xs": 5}}))
    assert loop_items({"with_param": {"expr": "{{inputs.parameters.xs}}"}},
                      Scope(inputs={"parameters": {"xs": "[1, 2]"}})) == [1, 2]


def test_loop_creates_items_and_aggregates_in_item_order():
    fan = Step("fan", PythonOPTemplate(double), parameters={"x": "{{item}}"},
               with_param=argo_range(3), continue_on_num_success=2)
    wf = Workflow("w")
    wf.add(fan)
    assert wf.entry is not None
    spec, _ = build_spec("w", wf.entry)
    r = root_step(spec)
    root = Node(1, r.slot, r.name, r.template, r.type, r.phase, r.inputs, None, r.spec)
    [group] = plan_container(root, spec["templates"], [], {})
    assert group.type == "StepGroup" and group.phase == "Running"
    assert [c.inputs["parameters"]["x"] for c in group.children] == [0, 1, 2]
    assert group.children[1].name == "fan(1:1)"
    node = Node(2, group.slot, group.name, group.template, "StepGroup", "Running",
                group.inputs, None, group.spec)
    kids = [Node(10 + i, c.slot, c.name, c.template, "Pod", phase, c.inputs,
                 {"parameters": {"y": 2 * i}, "artifacts": {}}, c.spec)
            for i, (c, phase) in enumerate(zip(group.children, ["Succeeded", "Failed",
                                                                 "Succeeded"], strict=True))]
    kids_reversed = list(reversed(kids))
    [finish] = plan_container(node, spec["templates"], kids_reversed, {})
    assert finish.phase == "Succeeded"  # 2 of 3 succeeded, and 2 were enough
    assert finish.outputs == {"parameters": {"y": [0, 2, 4]}, "artifacts": {}}


def test_a_large_loop_ends_with_its_outputs_in_memory_not_its_items():
    """The service streams a finished loop's items into plan_loop: 50,000 items, read once
    from an iterator, cost about what their outputs are, not an object per item (holding the
    items as the planner's nodes took about 40 MB here; their outputs are under 2 MB)."""
    import tracemalloc

    from hpcflow.daemon.planner import plan_loop

    n = 50_000
    template = {"outputs": {"parameters": {"y": {}}, "artifacts": {}}}
    loop = Node(1, "0.fan", "fan", "double", "StepGroup", "Running", {}, None, {})

    def items():
        for i in range(n):
            yield Node(100 + i, str(i), f"fan({i}:{i})", "double", "Pod", "Succeeded", {},
                       {"parameters": {"y": 2 * i}, "artifacts": {}}, None)

    tracemalloc.start()
    try:
        (action,) = plan_loop(loop, template, items())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert action.phase == "Succeeded"
    assert action.outputs["parameters"]["y"] == [2 * i for i in range(n)]
    assert peak < 10_000_000, peak


@pytest.mark.parametrize("sliced", [False, True])
def test_a_large_loop_is_expanded_one_item_at_a_time(sliced: bool):
    """30,000 items, with_param or Slices: the loop's expansion holds its items' values, not
    a step spec per item (Slices made 30 MB of specs at once here)."""
    import tracemalloc

    from hpcflow.daemon.planner import instantiate
    from hpcflow.python import Slices

    n = 30_000
    if sliced:
        template = PythonOPTemplate(double, slices=Slices(
            "{{item}}", input_parameter=["x"], output_parameter=["y"]))
        step = Step("fan", template, parameters={"x": list(range(n))},
                    with_param=argo_range(n))
    else:
        step = Step("fan", PythonOPTemplate(double), parameters={"x": "{{item}}"},
                    with_param=argo_range(n))
    wf = Workflow("w")
    wf.add(step)
    assert wf.entry is not None
    spec, _ = build_spec("w", wf.entry)
    tracemalloc.start()
    try:
        group = instantiate(spec["templates"]["w"]["steps"][0][0], spec["templates"],
                            Scope(inputs={"parameters": {}, "artifacts": {}}), 1, "0.fan")
        made = sum(1 for _ in group.children)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert made == n
    assert group.children[n - 1].inputs["parameters"]["x"] == n - 1
    assert peak < 10_000_000, peak


@pytest.mark.parametrize(("spec", "succeeded", "phase", "says"), [
    # 7 of 10 is 0.7 of them (0.7 * 10 is 7.000000000000001 in floating point)
    ({"continue_on_success_ratio": 0.7}, 7, "Succeeded", None),
    ({"continue_on_success_ratio": 0.7}, 6, "Failed",
     "4 of 10 items failed (6 succeeded; continue_on_success_ratio=0.7 needs 7); "),
    ({"continue_on_success_ratio": 0.25}, 3, "Succeeded", None),  # 2.5 rounds up to 3
    ({"continue_on_success_ratio": 0.25}, 2, "Failed", "needs 3); "),
    ({"continue_on_num_success": 5}, 4, "Failed",
     "6 of 10 items failed (4 succeeded; continue_on_num_success=5); fan(4:4) failed: boom"),
    ({}, 9, "Failed", "1 of 10 items failed; fan(9:9) failed: boom"),
])
def test_a_loops_success_threshold_and_what_its_failure_says(spec, succeeded, phase, says):
    from hpcflow.daemon.planner import plan_loop

    template = {"outputs": {"parameters": {"y": {}}, "artifacts": {}}}
    loop = Node(1, "0.fan", "fan", "double", "StepGroup", "Running", {}, None, spec)
    items = [Node(100 + i, str(i), f"fan({i}:{i})", "double", "Pod",
                  "Succeeded" if i < succeeded else "Failed", {},
                  {"parameters": {"y": i}, "artifacts": {}}, None,
                  None if i < succeeded else "boom")
             for i in range(10)]
    (action,) = plan_loop(loop, template, items)
    assert action.phase == phase
    if says is not None:
        assert says in action.reason, action.reason
