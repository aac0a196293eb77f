"""A DAG: dependencies come from input/output references, plus ``dependencies=[...]``.

Run: hpcflow run examples/dag.py
"""

import time

from hpcflow import DAG, Task, Workflow
from hpcflow.python import OP, PythonOPTemplate


@OP.function
def produce(n: int) -> {"n": int, "at": float}:
    return {"n": n, "at": time.time()}


@OP.function
def combine(a: int, b: int) -> {"n": int, "at": float}:
    return {"n": a * 10 + b, "at": time.time()}


if __name__ == "__main__":
    dag = DAG(name="diamond")
    top = Task("top", PythonOPTemplate(produce), parameters={"n": 1})
    left = Task("left", PythonOPTemplate(combine),
                parameters={"a": top.outputs.parameters["n"], "b": 2})
    right = Task("right", PythonOPTemplate(combine),
                 parameters={"a": top.outputs.parameters["n"], "b": 3})
    bottom = Task("bottom", PythonOPTemplate(combine),
                  parameters={"a": left.outputs.parameters["n"], "b": 4},
                  dependencies=[right])
    for task in (top, left, right, bottom):
        dag.add(task)
    wf = Workflow(name="dag", dag=dag)
    wf.submit()
    wf.wait()
    print("phase:", wf.query_status())
    at = {s.name: s.outputs.parameters["at"].value for s in wf.query_step(type="Pod")}
    print("bottom:", wf.query_step(name="bottom")[0].outputs.parameters["n"].value)
    print("order ok:", at["top"] < at["left"] < at["bottom"] and at["right"] < at["bottom"])
