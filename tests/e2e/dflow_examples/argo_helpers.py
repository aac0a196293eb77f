"""dflow's argo_sum, argo_concat and argo_enumerate in loops, evaluated at run time."""

from typing import List

from dflow import (
    Step,
    Workflow,
    argo_concat,
    argo_enumerate,
    argo_len,
    argo_range,
    argo_sequence,
    argo_sum,
)
from dflow.python import OP, PythonOPTemplate


@OP.function
def make() -> {"counts": List[int], "groups": List[List[str]], "names": List[str]}:
    return {"counts": [1, 2, 3], "groups": [["a", "b"], ["c"], []],
            "names": ["x", "y"]}


@OP.function
def show(text: str) -> {"out": str}:
    return {"out": text}


wf = Workflow(name="argo-helpers")
made = Step("make", PythonOPTemplate(make))
wf.add(made)
counts = made.outputs.parameters["counts"]
groups = made.outputs.parameters["groups"]
names = made.outputs.parameters["names"]
wf.add([
    Step("summed", PythonOPTemplate(show), parameters={"text": "s{{item}}"},
         with_param=argo_range(argo_sum(counts))),
    Step("concat", PythonOPTemplate(show), parameters={"text": "c{{item}}"},
         with_sequence=argo_sequence(count=argo_len(argo_concat(groups)))),
    Step("enum", PythonOPTemplate(show),
         parameters={"text": "{{item.order}}:{{item.value}}"},
         with_param=argo_enumerate(names)),
    Step("enum2", PythonOPTemplate(show),
         parameters={"text": "{{item.order}}:{{item.n}}-{{item.c}}"},
         with_param=argo_enumerate(n=names, c=[10, 20])),
])
wf.submit()
assert wf.wait() == "Succeeded", wf.query_status()


def outs(name):
    return wf.query_step(name=name)[0].outputs.parameters["out"].value


assert outs("summed") == ["s0", "s1", "s2", "s3", "s4", "s5"], outs("summed")
assert outs("concat") == ["c0", "c1", "c2"], outs("concat")
assert outs("enum") == ["0:x", "1:y"], outs("enum")
assert outs("enum2") == ["0:x-10", "1:y-20"], outs("enum2")
print("EXAMPLE OK")
