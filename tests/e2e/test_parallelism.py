"""dflow's ``parallelism``, through the engine: a looped ``Step(parallelism=2)`` runs at most
two items at once, and ``Workflow(parallelism=1)`` one pod at once, while the machine would
run four (each item records how many items are running when it starts)."""

import pytest

from hpcflow import Step, Steps, Workflow, argo_range, settings
from hpcflow.python import OP, PythonOPTemplate


@OP.function
def crowded(folder: str, name: str) -> {"seen": int}:
    import os
    import time

    os.makedirs(folder, exist_ok=True)
    mine = os.path.join(folder, name)
    open(mine, "w").close()
    seen = len(os.listdir(folder))
    time.sleep(1.5)
    seen = max(seen, len(os.listdir(folder)))
    os.unlink(mine)
    return {"seen": seen}


@pytest.fixture
def four_at_once(hpc_home, monkeypatch):
    monkeypatch.setenv("HPCFLOW_LOCAL_PARALLELISM", "4")
    monkeypatch.setitem(settings.config, "local_parallelism", 4)
    return hpc_home


def test_a_looped_step_runs_at_most_its_parallelism(four_at_once, tmp_path) -> None:
    folder = str(tmp_path / "running")
    wf = Workflow("loop-parallelism")
    wf.add(Step("item", PythonOPTemplate(crowded), with_param=argo_range(6), parallelism=2,
                parameters={"folder": folder, "name": "item-{{item}}"}))
    wf.submit()
    assert wf.wait(timeout=600) == "Succeeded"
    seen = wf.query_step(name="item")[0].outputs.parameters["seen"].value
    assert len(seen) == 6 and max(seen) <= 2, seen


def test_a_steps_templates_parallelism_counts_its_own_pods(four_at_once, tmp_path) -> None:
    folder = str(tmp_path / "running")
    inner = Steps("inner", parallelism=1)
    inner.add([Step(f"s{i}", PythonOPTemplate(crowded),
                    parameters={"folder": folder, "name": f"s{i}"}) for i in range(3)])
    wf = Workflow("steps-parallelism")
    wf.add(Step("inner", inner))
    wf.submit()
    assert wf.wait(timeout=600) == "Succeeded"
    seen = [wf.query_step(name=f"s{i}")[0].outputs.parameters["seen"].value
            for i in range(3)]
    assert max(seen) == 1, seen


def test_a_workflows_parallelism_bounds_all_its_pods(four_at_once, tmp_path) -> None:
    folder = str(tmp_path / "running")
    wf = Workflow("workflow-parallelism", parallelism=1)
    wf.add([Step(f"p{i}", PythonOPTemplate(crowded),
                 parameters={"folder": folder, "name": f"p{i}"}) for i in range(3)])
    wf.submit()
    assert wf.wait(timeout=600) == "Succeeded"
    seen = [wf.query_step(name=f"p{i}")[0].outputs.parameters["seen"].value
            for i in range(3)]
    assert max(seen) == 1, seen
