"""dflow's exit handler: Workflow(on_exit=...), as Argo's exit-handler example does it
(a step for every end, one only when the workflow failed), written for dflow."""

import json

from dflow import (
    InputParameter,
    OutputParameter,
    ShellOPTemplate,
    Step,
    Steps,
    Workflow,
)
from dflow.python import OP, PythonOPTemplate


@OP.function
def work(n: int) -> {"m": int}:
    return {"m": n + 1}


@OP.function
def report(status: str, failures: str) -> {"line": str}:
    failed = json.loads(json.loads(failures)) or []
    return {"line": f"{status} with {len(failed)} failed"}


celebrate = ShellOPTemplate(
    name="celebrate", image="alpine:latest",
    script="echo 'all good: {{workflow.status}}' > /tmp/said.txt")
celebrate.outputs.parameters["said"] = OutputParameter(value_from_path="/tmp/said.txt")
cry = ShellOPTemplate(name="cry", image="alpine:latest", script="echo 'it failed'")
report_template = PythonOPTemplate(report)
report_template.inputs.parameters["failures"] = InputParameter(value="{{workflow.failures}}")

exit_handler = Steps(name="exit-handler")
exit_handler.add([
    Step("celebrate", celebrate, when="{{workflow.status}} == Succeeded"),
    Step("cry", cry, when="{{workflow.status}} != Succeeded"),
    Step("report", report_template, parameters={"status": "{{workflow.status}}"}),
])

wf = Workflow(name="exit-handler", on_exit=exit_handler)
wf.add(Step("work", PythonOPTemplate(work), parameters={"n": 1}))
wf.submit()
assert wf.wait() == "Succeeded", wf.query_status()
said = wf.query_step(name="celebrate")[0].outputs.parameters["said"].value
assert said.strip() == "all good: Succeeded", said
assert wf.query_step(name="cry")[0].phase == "Skipped"
line = wf.query_step(name="report")[0].outputs.parameters["line"].value
assert line == "Succeeded with 0 failed", line
assert wf.query_step(name="work")[0].outputs.parameters["m"].value == 2
print("EXAMPLE OK")
