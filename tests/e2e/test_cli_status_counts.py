"""``status`` counts the leaf steps a workflow will have where its spec says so: a chain of
3 that fails at its second step is 2/3 (its third step is never created), not 2/2; a loop's
count is decided at run time, and then no total is claimed."""

import json
from pathlib import Path

from tests.conftest import run_cli

SCRIPT = '''
from hpcflow import Step, Workflow, argo_range
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def step(x: int) -> {"y": int}:
    if x == 1:
        raise ValueError("the second step fails")
    return {"y": x + 1}

chain = Workflow("chain")
a = Step("a", PythonOPTemplate(step), parameters={"x": 0})
b = Step("b", PythonOPTemplate(step), parameters={"x": a.outputs.parameters["y"]})
c = Step("c", PythonOPTemplate(step), parameters={"x": b.outputs.parameters["y"]})
chain.add(a)
chain.add(b)
chain.add(c)
chain.submit()
print(chain.id)
looped = Workflow("looped")
looped.add(Step("fan", PythonOPTemplate(step), parameters={"x": "{{item}}"},
                with_param=argo_range(3)))
looped.submit()
print(looped.id)
'''


def test_status_counts_the_steps_still_to_come(tmp_path: Path):
    home = tmp_path / "home"
    (tmp_path / "wf.py").write_text(SCRIPT)
    chain, looped = run_cli(["submit", "-q", "wf.py"], home, tmp_path).stdout.split()
    try:
        for wf_id in (chain, looped):
            run_cli(["status", wf_id, "--watch", "--interval", "0.2"], home, tmp_path)
        shown = run_cli(["status", chain], home, tmp_path).stdout.splitlines()[0]
        assert shown.endswith("steps: 1 Succeeded, 1 Failed (2/3)"), shown
        data = json.loads(run_cli(["status", chain, "--json"], home, tmp_path).stdout)
        assert data["expected_steps"] == 3 and data["steps"] == {"Succeeded": 1, "Failed": 1}
        loop = run_cli(["status", looped], home, tmp_path).stdout.splitlines()[0]
        assert loop.endswith("steps: 2 Succeeded, 1 Failed"), loop  # no total claimed
        assert json.loads(run_cli(["status", looped, "--json"], home,
                                  tmp_path).stdout)["expected_steps"] is None
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)
