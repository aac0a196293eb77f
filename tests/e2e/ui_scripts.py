"""Workflow scripts the dashboard's browser tests (and benchmarks/ui_first_paint.py) run.

``LIVE``: one step that logs, waits for the file ``argv[1]``, logs again and ends: the test
holds it Running as long as it needs. ``FLAKY``: a step that fails until the file
``argv[1]`` exists (retried from the page once it does). ``DAG200``: 200 tasks, ten
layers of twenty, each task after its two neighbours in the layer above. ``SLICES``: one
sliced step over ``argv[1]`` numbers and a sum. ``ARTIFACT``: a step with an output
parameter and an output artifact (a folder holding ``data.txt``).
"""

LIVE = '''
import sys, time
from pathlib import Path
from hpcflow import Step, Workflow
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def wait_go(go: str) -> {"y": int}:
    print("waiting for go", flush=True)
    while not Path(go).exists():
        time.sleep(0.2)
    print("got go", flush=True)
    return {"y": 1}

wf = Workflow("live")
wf.add(Step("hold", PythonOPTemplate(wait_go), parameters={"go": sys.argv[1]}))
wf.submit()
print(wf.id)
'''

FLAKY = '''
import sys
from pathlib import Path
from hpcflow import Step, Workflow
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def flaky(flag: str) -> {"y": int}:
    if not Path(flag).exists():
        raise ValueError("the flag file is missing")
    print("the flag is there")
    return {"y": 2}

wf = Workflow("flaky")
wf.add(Step("flaky", PythonOPTemplate(flaky), parameters={"flag": sys.argv[1]}))
wf.submit()
print(wf.id)
'''

DAG200 = '''
from hpcflow import DAG, Step, Task, Workflow
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def add(a: int, b: int) -> {"y": int}:
    return {"y": a + b}

LAYERS, WIDTH = 10, 20
dag = DAG(name="grid")
above = []
for layer in range(LAYERS):
    row = []
    for i in range(WIDTH):
        if above:
            left, right = above[i], above[(i + 1) % WIDTH]
            params = {"a": left.outputs.parameters["y"], "b": right.outputs.parameters["y"]}
        else:
            params = {"a": i, "b": 0}
        row.append(Task(f"t{layer}-{i}", PythonOPTemplate(add), parameters=params))
    dag.add(row)
    above = row
wf = Workflow("dag-200")
wf.add(Step("grid", dag))
wf.submit()
print(wf.id)
'''

SLICES = '''
import sys
from typing import List
from hpcflow import Step, Workflow, argo_range
from hpcflow.python import OP, PythonOPTemplate, Slices

N = int(sys.argv[1])

@OP.function
def double(x: int) -> {"y": int}:
    return {"y": 2 * x}

@OP.function
def total(xs: List[int]) -> {"s": int}:
    return {"s": sum(xs)}

fan = Step("fan", PythonOPTemplate(double, slices=Slices(input_parameter=["x"],
                                                         output_parameter=["y"])),
           parameters={"x": list(range(N))}, with_param=argo_range(N))
wf = Workflow(f"slices-{N}")
wf.add(fan)
wf.add(Step("sum", PythonOPTemplate(total), parameters={"xs": fan.outputs.parameters["y"]}))
wf.submit()
print(wf.id)
'''

ARTIFACT = '''
from pathlib import Path
from hpcflow import Step, Workflow
from hpcflow.python import OP, PythonOPTemplate, Artifact

@OP.function
def make(x: int) -> {"y": int, "out": Artifact(Path)}:
    Path("out").mkdir()
    Path("out/data.txt").write_text(f"value {x}\\n")
    return {"y": x + 1, "out": Path("out")}

wf = Workflow("artifact")
wf.add(Step("make", PythonOPTemplate(make), parameters={"x": 41}))
wf.submit()
print(wf.id)
'''
