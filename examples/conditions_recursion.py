"""Conditions and recursion: a ``Steps`` that calls itself until ``when`` turns false
(dflow's dynamic loop), with a key per iteration and a conditional output.

Run: hpcflow run examples/conditions_recursion.py
"""

from hpcflow import (
    InputParameter,
    OutputParameter,
    Step,
    Steps,
    Workflow,
    if_expression,
)
from hpcflow.python import OP, PythonOPTemplate


@OP.function
def plus_one(i: int) -> {"i": int}:
    return {"i": i + 1}


def make_loop(limit: int) -> Steps:
    loop = Steps(name="loop")
    loop.inputs.parameters["i"] = InputParameter()
    loop.outputs.parameters["last"] = OutputParameter()
    step = Step("plus-one", PythonOPTemplate(plus_one),
                parameters={"i": loop.inputs.parameters["i"]},
                key="iter-{{inputs.parameters.i}}")
    loop.add(step)
    again = Step("again", loop, parameters={"i": step.outputs.parameters["i"]},
                 when="%s < %s" % (step.outputs.parameters["i"], limit))
    loop.add(again)
    loop.outputs.parameters["last"].value_from_expression = if_expression(
        _if=step.outputs.parameters["i"] < limit,
        _then=again.outputs.parameters["last"],
        _else=step.outputs.parameters["i"],
    )
    return loop


if __name__ == "__main__":
    wf = Workflow(name="recursion")
    wf.add(Step("start", make_loop(limit=5), parameters={"i": 0}))
    wf.submit()
    wf.wait()
    print("phase:", wf.query_status())
    print("last:", wf.query_step(name="start")[0].outputs.parameters["last"].value)
    print("keys:", sorted(wf.query_keys_of_steps()))
    print("skipped:", [s.name for s in wf.query_step(phase="Skipped")])
