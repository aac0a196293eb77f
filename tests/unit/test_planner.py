"""The planner is pure: these tests build specs and child lists by hand, no store, no process."""

from hpcflow import DAG, Step, Steps, Task, Workflow
from hpcflow.daemon.planner import CreateStep, FinishStep, Node, plan_container, root_step
from hpcflow.python import OP, PythonOPTemplate
from hpcflow.spec import build_spec


@OP.function
def inc(x: int) -> {"y": int}:
    return {"y": x + 1}


def _spec(wf: Workflow) -> dict:
    assert wf.entry is not None
    spec, _ = build_spec(wf.name, wf.entry)
    return spec


def _root(spec: dict) -> Node:
    r = root_step(spec)
    return Node(1, r.slot, r.name, r.template, r.type, r.phase, r.inputs, None, r.spec)


def _child(action: CreateStep, id_: int, phase: str, outputs: dict | None = None) -> Node:
    return Node(id_, action.slot, action.name, action.template, action.type, phase,
                action.inputs, outputs, action.spec)


def test_steps_run_group_by_group_and_resolve_outputs():
    a = Step("a", PythonOPTemplate(inc), parameters={"x": 1})
    b = Step("b", PythonOPTemplate(inc), parameters={"x": a.outputs.parameters["y"]})
    c = Step("c", PythonOPTemplate(inc), parameters={"x": 10})
    wf = Workflow("w")
    wf.add(a)
    wf.add([b, c])
    spec = _spec(wf)
    root = _root(spec)
    first = plan_container(root, spec["templates"], [], {})
    assert [x.name for x in first] == ["a"]
    assert first[0].inputs["parameters"] == {"x": 1} and first[0].phase == "Pending"
    a_node = _child(first[0], 2, "Running")
    assert plan_container(root, spec["templates"], [a_node], {}) == []
    a_done = _child(first[0], 2, "Succeeded", {"parameters": {"y": 2}, "artifacts": {}})
    second = plan_container(root, spec["templates"], [a_done], {})
    assert {x.name: x.inputs["parameters"]["x"] for x in second} == {"b": 2, "c": 10}
    done = [a_done] + [_child(x, 3 + i, "Succeeded", {"parameters": {"y": 0}, "artifacts": {}})
                       for i, x in enumerate(second)]
    final = plan_container(root, spec["templates"], done, {})
    assert final == [FinishStep(1, "Succeeded", {"parameters": {}, "artifacts": {}})]


def test_failed_step_fails_the_steps_unless_continue_on_failed():
    a = Step("a", PythonOPTemplate(inc), parameters={"x": 1})
    b = Step("b", PythonOPTemplate(inc), parameters={"x": 2})
    wf = Workflow("w")
    wf.add(a)
    wf.add(b)
    spec = _spec(wf)
    root = _root(spec)
    [create] = plan_container(root, spec["templates"], [], {})
    failed = Node(2, create.slot, "a", create.template, "Pod", "Failed", create.inputs, None,
                  create.spec, reason="ValueError: boom")
    [finish] = plan_container(root, spec["templates"], [failed], {})
    assert isinstance(finish, FinishStep) and finish.phase == "Failed"
    assert "'a'" in (finish.reason or "") and "boom" in (finish.reason or "")
    tolerant = dict(create.spec, continue_on_failed=True)
    failed_ok = Node(2, create.slot, "a", create.template, "Pod", "Failed", create.inputs, None,
                     tolerant)
    [next_step] = plan_container(root, spec["templates"], [failed_ok], {})
    assert isinstance(next_step, CreateStep) and next_step.name == "b"


def test_dag_waits_for_dependencies_and_omits_after_failure():
    t1 = Task("t1", PythonOPTemplate(inc), parameters={"x": 1})
    t2 = Task("t2", PythonOPTemplate(inc), parameters={"x": t1.outputs.parameters["y"]})
    t3 = Task("t3", PythonOPTemplate(inc), parameters={"x": 5}, dependencies=[t2])
    t4 = Task("t4", PythonOPTemplate(inc), parameters={"x": 7})
    dag = DAG("d", tasks=[t1, t2, t3, t4])
    spec = _spec(Workflow("w", dag=dag))
    assert spec["templates"]["d"]["tasks"][2]["dependencies"] == ["t2"]
    root = _root(spec)
    first = plan_container(root, spec["templates"], [], {})
    assert sorted(x.name for x in first) == ["t1", "t4"]
    nodes = {x.name: _child(x, i + 2, "Succeeded", {"parameters": {"y": 2}, "artifacts": {}})
             for i, x in enumerate(first)}
    nodes["t1"] = Node(2, "t1", "t1", "inc", "Pod", "Failed", {}, None,
                       spec["templates"]["d"]["tasks"][0])
    actions = plan_container(root, spec["templates"], list(nodes.values()), {})
    assert [(a.name, a.phase) for a in actions] == [("t2", "Omitted"), ("t3", "Omitted")]


def test_unresolvable_reference_makes_an_error_step_with_a_reason():
    inner = Steps("inner")
    from hpcflow import InputParameter

    inner.inputs.parameters["p"] = InputParameter()
    s = Step("s", PythonOPTemplate(inc), parameters={"x": "{{inputs.parameters.nope}}"})
    inner.add(s)
    wf = Workflow("w")
    wf.add(Step("outer", inner, parameters={"p": 1}))
    spec = _spec(wf)
    outer_create = plan_container(_root(spec), spec["templates"], [], {})[0]
    outer = _child(outer_create, 2, "Running")
    [err] = plan_container(outer, spec["templates"], [], {})
    assert err.phase == "Error" and "nope" in (err.reason or "")
