"""Function OPs: signs come from annotations; a chain of steps passes parameters along.

Run: hpcflow run examples/function_op.py
"""

from hpcflow import Step, Workflow
from hpcflow.python import OP, PythonOPTemplate


@OP.function
def add(a: int, b: int) -> {"sum": int}:
    return {"sum": a + b}


@OP.function
def scale(x: int, factor: float = 2.0) -> {"y": float}:
    return {"y": x * factor}


if __name__ == "__main__":
    first = Step("add", PythonOPTemplate(add), parameters={"a": 2, "b": 3})
    second = Step("scale", PythonOPTemplate(scale),
                  parameters={"x": first.outputs.parameters["sum"], "factor": 1.5})
    wf = Workflow(name="function-op")
    wf.add(first)
    wf.add(second)
    wf.submit()
    wf.wait()
    print("phase:", wf.query_status())
    print("y:", wf.query_step(name="scale")[0].outputs.parameters["y"].value)
