"""A loop of 30 items and a sum over their outputs, through the engine."""

from typing import List

from hpcflow import Step, Workflow, argo_range
from hpcflow.python import OP, PythonOPTemplate


@OP.function
def double(x: int) -> {"y": int}:
    return {"y": 2 * x}


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
