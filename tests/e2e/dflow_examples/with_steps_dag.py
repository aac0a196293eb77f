"""``with Steps(...)`` and ``with DAG(...)`` collect the steps made in their blocks; a
workflow whose first steps are Tasks gets a DAG entrypoint, as in dflow."""

from dflow import DAG, Step, Steps, Task, Workflow
from dflow.python import OP, PythonOPTemplate


@OP.function
def add(a: int, b: int) -> {"c": int}:
    return {"c": a + b}


with Steps(name="pair") as pair:
    first = Step("first", PythonOPTemplate(add), parameters={"a": 1, "b": 2})
    second = Step("second", PythonOPTemplate(add),
                  parameters={"a": first.outputs.parameters["c"], "b": 10})
assert [s.name for g in pair.steps for s in g] == ["first", "second"]

with DAG(name="diamond") as diamond:
    top = Task("top", PythonOPTemplate(add), parameters={"a": 1, "b": 1})
    left = Task("left", PythonOPTemplate(add),
                parameters={"a": top.outputs.parameters["c"], "b": 1})
    right = Task("right", PythonOPTemplate(add),
                 parameters={"a": top.outputs.parameters["c"], "b": 2})
    Task("bottom", PythonOPTemplate(add),
         parameters={"a": left.outputs.parameters["c"], "b": right.outputs.parameters["c"]})

with Workflow(name="nested-contexts") as wf:
    Step("use-pair", pair)
    Step("use-diamond", diamond)
wf.wait()
assert wf.query_status() == "Succeeded", wf.query_status()
assert wf.query_step(name="second")[0].outputs.parameters["c"].value == 13
assert wf.query_step(name="bottom")[0].outputs.parameters["c"].value == 7

with Workflow(name="tasks-first") as dag_wf:
    one = Task("one", PythonOPTemplate(add), parameters={"a": 2, "b": 3})
    Task("two", PythonOPTemplate(add), parameters={"a": one.outputs.parameters["c"], "b": 1})
dag_wf.wait()
assert dag_wf.query_status() == "Succeeded"
assert dag_wf.query_step(name="two")[0].outputs.parameters["c"].value == 6
print("EXAMPLE OK")
