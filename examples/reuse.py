"""Reuse: a second workflow takes the outputs of keyed steps of the first instead of running
them again (one output modified on the way).

Run: hpcflow run examples/reuse.py
"""

from pathlib import Path

from hpcflow import Step, Workflow, argo_range
from hpcflow.python import OP, PythonOPTemplate


@OP.function
def square(x: int, ledger: str) -> {"y": int}:
    with open(ledger, "a") as f:
        f.write(f"{x}\n")
    return {"y": x * x}


@OP.function
def add(values: list) -> {"total": int}:
    return {"total": sum(values)}


def build(ledger: Path) -> Workflow:
    squares = Step("square", PythonOPTemplate(square),
                   parameters={"x": "{{item}}", "ledger": str(ledger)},
                   with_param=argo_range(4), key="square-{{item}}")
    total = Step("total", PythonOPTemplate(add),
                 parameters={"values": squares.outputs.parameters["y"]}, key="total")
    wf = Workflow(name="reuse")
    wf.add(squares)
    wf.add(total)
    return wf


if __name__ == "__main__":
    ledger = Path("ledger.txt").absolute()
    first = build(ledger)
    first.submit()
    first.wait()
    print("first total:", first.query_step(key="total")[0].outputs.parameters["total"].value)

    reused = first.query_step(key=["square-0", "square-1", "square-2"])
    reused[2].modify_output_parameter("y", 100)
    second = build(ledger)
    second.submit(reuse_step=reused)
    second.wait()
    print("second total:", second.query_step(key="total")[0].outputs.parameters["total"].value)
    print("runs of square:", sorted(ledger.read_text().split()))  # items run in parallel
    print("reused:", sorted(s.key for s in second.query_step(type="Pod")
                            if s.reason and s.reason.startswith("reused")))
