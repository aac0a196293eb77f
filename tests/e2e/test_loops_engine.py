"""A loop of 30 items and a sum over their outputs, through the engine."""

from typing import List

from hpcflow import Step, Workflow, argo_range
from hpcflow.python import OP, PythonOPTemplate


@OP.function
def double(x: int) -> {"y": int}:
    return {"y": 2 * x}


@OP.function
def broken(x: int) -> {"y": int}:
    raise ValueError(f"no y for {x}")


@OP.function
def total(xs: List[int]) -> {"s": int}:
    return {"s": sum(xs)}


def test_fan_out_and_sum(hpc_home):
    fan = Step("fan", PythonOPTemplate(double), parameters={"x": "{{item}}"},
               with_param=argo_range(30))
    summed = Step("sum", PythonOPTemplate(total), parameters={"xs": fan.outputs.parameters["y"]})
    wf = Workflow("fan")
    wf.add(fan)
    wf.add(summed)
    wf.submit()
    assert wf.wait(timeout=120) == "Succeeded"
    assert wf.query_step(name="sum")[0].outputs.parameters["s"].value == 2 * sum(range(30))
    assert len(wf.query_step(name=r"fan\(.*", type="Pod")) == 30
    group = wf.query_step(type="StepGroup")[0]
    assert group.outputs.parameters["y"].value == [2 * i for i in range(30)]


@OP.function
def make_list(n: int) -> {"xs": List[int]}:
    return {"xs": list(range(n))}


@OP.function
def echo(x: str) -> {"y": str}:
    return {"y": x}


def test_loops_over_step_outputs_enclosing_inputs_and_sequences(hpc_home):
    from hpcflow import InputParameter, OutputParameter, Steps, argo_len, argo_sequence

    made = Step("make", PythonOPTemplate(make_list), parameters={"n": 4})
    over_output = Step("over-output", PythonOPTemplate(double), parameters={"x": "{{item}}"},
                       with_param=made.outputs.parameters["xs"])
    sequence = Step("sequence", PythonOPTemplate(echo), parameters={"x": "{{item}}"},
                    with_sequence=argo_sequence(argo_len(made.outputs.parameters["xs"]),
                                                start=3, format="n%02d"))
    inner = Steps("inner")
    inner.inputs.parameters["xs"] = InputParameter()
    inner.outputs.parameters["ys"] = OutputParameter()
    loop = Step("over-input", PythonOPTemplate(double), parameters={"x": "{{item}}"},
                with_param=inner.inputs.parameters["xs"])
    inner.add(loop)
    inner.outputs.parameters["ys"].value_from_parameter = loop.outputs.parameters["y"]
    wf = Workflow("loop-sources")
    wf.add(made)
    wf.add([over_output, sequence, Step("nested", inner, parameters={"xs": [5, 6]})])
    wf.submit()
    assert wf.wait(timeout=60) == "Succeeded"

    def group(name: str) -> list:
        step = wf.query_step(name=name, type="StepGroup")[0]
        return step.outputs.parameters["y"].value

    assert group("over-output") == [0, 2, 4, 6]
    assert group("sequence") == ["n03", "n04", "n05", "n06"]
    assert wf.query_step(name="nested")[0].outputs.parameters["ys"].value == [10, 12]


def test_unresolvable_references(hpc_home):
    import pytest

    from hpcflow.errors import WorkflowDefinitionError

    # a declared output that a failed step (continued past) never produced: known at run time
    first = Step("first", PythonOPTemplate(broken), parameters={"x": 1},
                 continue_on_failed=True)
    second = Step("second", PythonOPTemplate(double),
                  parameters={"x": "{{steps.first.outputs.parameters.y}}"})
    wf = Workflow("unresolved")
    wf.add(first)
    wf.add(second)
    wf.submit()
    assert wf.wait(timeout=60) == "Failed"
    step = wf.query_step(name="second")[0]
    assert step.phase == "Error"
    assert "{{steps.first.outputs.parameters.y}}" in step.reason
    # an output the template does not declare, or a step that is not there: at submission
    typo = Workflow("typo")
    typo.add(Step("first", PythonOPTemplate(double), parameters={"x": 1}))
    typo.add(Step("second", PythonOPTemplate(double),
                  parameters={"x": "{{steps.first.outputs.parameters.nope}}"}))
    with pytest.raises(WorkflowDefinitionError, match="has no output parameter 'nope'"):
        typo.submit()
    static = Workflow("static")
    static.add(Step("s", PythonOPTemplate(double),
                    parameters={"x": "{{steps.ghost.outputs.parameters.y}}"}))
    with pytest.raises(WorkflowDefinitionError, match="refers to step 'ghost'"):
        static.submit()
