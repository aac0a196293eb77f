"""Parallel steps: ``wf.add([...])`` runs a group at once; the next group sums their outputs.

Run: hpcflow run examples/parallel_steps.py
"""

import os
import time
from typing import List

from hpcflow import Step, Workflow
from hpcflow.python import OP, PythonOPTemplate


@OP.function
def square(x: int) -> {"y": int, "pid": int}:
    time.sleep(0.5)
    return {"y": x * x, "pid": os.getpid()}


@OP.function
def total(values: List[int]) -> {"total": int}:
    return {"total": sum(values)}


if __name__ == "__main__":
    squares = [Step(f"square-{i}", PythonOPTemplate(square), parameters={"x": i})
               for i in range(4)]
    summed = Step("total", PythonOPTemplate(total),
                  parameters={"values": [s.outputs.parameters["y"] for s in squares]})
    wf = Workflow(name="parallel-steps")
    wf.add(squares)
    wf.add(summed)
    wf.submit()
    wf.wait()
    print("phase:", wf.query_status())
    print("total:", wf.query_step(name="total")[0].outputs.parameters["total"].value)
    steps = wf.query_step(name="square-.*")
    print("parallel steps:", len(steps), "distinct processes:",
          len({s.outputs.parameters["pid"].value for s in steps}))
