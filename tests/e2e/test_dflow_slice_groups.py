"""dflow's groups of slices through the engine, as dflow users write them: Slices(shuffle=,
random_seed=, pool_timeout=, raise_for_group=), continue_on_num_success/_ratio counting
slices, slicing a loop's merged list artifact as its catalog, and Workflow.retry_steps."""

import random
import time
from pathlib import Path
from typing import List

import pytest

from hpcflow import Step, Workflow, argo_range
from hpcflow.errors import HpcflowError, WorkflowDefinitionError
from hpcflow.python import OP, Artifact, PythonOPTemplate, Slices
from tests.conftest import wait_until


@OP.function
def tenfold(x: int) -> {"y": int, "out": Artifact(Path)}:
    Path(f"o{x}.txt").write_text(str(x))
    return {"y": 10 * x, "out": Path(f"o{x}.txt")}


@OP.function
def fragile(x: int) -> {"y": int}:
    if x == 1:
        time.sleep(600)  # pool_timeout ends it
    if x == 2:
        raise ValueError("slice two breaks")
    return {"y": 10 * x}


@OP.function
def pair(x: int) -> {"files": Artifact(List[Path])}:
    for suffix in "ab":
        Path(f"{x}{suffix}.txt").write_text(f"{x}{suffix}")
    return {"files": [Path(f"{x}a.txt"), Path(f"{x}b.txt")]}


@OP.function
def read(data: Artifact(Path)) -> {"text": str}:
    return {"text": Path(data).read_text()}


@OP.function
def flaky(marker: str) -> {"done": str}:
    """Fails on its first run, succeeds once the marker it leaves exists."""
    if not Path(marker).exists():
        Path(marker).write_text("ran")
        raise RuntimeError(f"first run of {marker}")
    return {"done": marker}


@OP.function
def hold(gate: str) -> {"done": str}:
    deadline = time.time() + 300
    while not Path(gate).exists() and time.time() < deadline:
        time.sleep(0.2)
    return {"done": gate}


def _grouped(name: str, template, n: int, **step_kwargs) -> Step:
    return Step(name, template, parameters={"x": list(range(n))}, with_param=argo_range(n),
                **step_kwargs)


def test_shuffled_groups_follow_the_seed(hpc_home, capsys):
    order = list(range(7))
    random.Random(5).shuffle(order)  # dflow: random.seed(5); random.shuffle(range(7))
    slices = Slices(input_parameter=["x"], output_parameter=["y"], output_artifact=["out"],
                    group_size=3, shuffle=True, random_seed=5)
    shuffled = _grouped("shuffled", PythonOPTemplate(tenfold, slices=slices), 7)
    unused = Slices(input_parameter=["x"], output_parameter=["y"], shuffle=True,
                    pool_timeout=5)
    plain = _grouped("plain", PythonOPTemplate(tenfold, slices=unused), 3)
    check = Step("check", PythonOPTemplate(read, slices=Slices(input_artifact=["data"],
                                                               output_parameter=["text"])),
                 artifacts={"data": shuffled.outputs.artifacts["out"]})
    wf = Workflow("shuffled")
    wf.add([shuffled, plain])
    wf.add(check)
    wf.submit()
    err = capsys.readouterr().err
    assert "step 'plain': Slices(shuffle=, pool_timeout=) only acts on groups" in err
    assert wf.wait(timeout=120) == "Succeeded"
    pods = wf.query_step(name="shuffled", type="Pod")
    assert [p.inputs.parameters["x"].value for p in pods] == [order[0:3], order[3:6],
                                                                order[6:]]
    group = wf.query_step(name="shuffled", type="StepGroup")[0]
    assert group.outputs.parameters["y"].value == [10 * x for x in order]  # the groups' order
    texts = wf.query_step(name="check", type="StepGroup")[0].outputs.parameters["text"].value
    assert texts == [str(i) for i in range(7)]  # artifacts in slice order (dflow's catalog)
    plain_y = wf.query_step(name="plain", type="StepGroup")[0].outputs.parameters["y"].value
    assert plain_y == [0, 10, 20]


def test_bad_pool_timeout_is_refused(hpc_home):
    wf = Workflow("bad-timeout")
    wf.add(_grouped("g", PythonOPTemplate(tenfold, slices=Slices(
        input_parameter=["x"], group_size=2, pool_timeout="soon")), 2))
    with pytest.raises(WorkflowDefinitionError, match=r"pool_timeout='soon'"):
        wf.submit()


def test_pool_timeout_raise_for_group_and_success_counted_per_slice(hpc_home):
    """Four slices in groups of two: slice 1 outlives pool_timeout, slice 2 raises; the
    group's other slices still run, and continue_on_num_success/_ratio count slices."""
    def sliced(raise_for_group: bool = False, pool_size: int | None = 2) -> PythonOPTemplate:
        return PythonOPTemplate(fragile, slices=Slices(
            input_parameter=["x"], output_parameter=["y"], group_size=2, pool_size=pool_size,
            pool_timeout=8, raise_for_group=raise_for_group))

    steps = [
        _grouped("strict", sliced(), 4),
        _grouped("enough", sliced(pool_size=None), 4, continue_on_num_success=2),
        _grouped("ratio", sliced(), 4, continue_on_success_ratio=0.5),
        _grouped("too-few", sliced(), 4, continue_on_num_success=3),
        _grouped("raising", sliced(raise_for_group=True), 4, continue_on_num_success=2),
    ]
    wf = Workflow("pool-timeout")
    wf.add(steps)
    started = time.time()
    wf.submit()
    assert wf.wait(timeout=240) == "Failed"
    assert time.time() - started < 300  # the 600 s naps were cut short
    loops = {s.name: s for s in wf.query_step(type="StepGroup")}
    assert loops["strict"].phase == "Failed"
    groups = {p.name: p for p in wf.query_step(name="strict", type="Pod")}
    first = next(p for n, p in groups.items() if n.startswith("strict(0:"))
    assert "pool_timeout=8" in first.reason and "slice 1" in first.reason, first.reason
    # slices counted, not groups: 2 of 4 slices succeeded, each group had a failed one
    assert loops["enough"].phase == "Succeeded", loops["enough"].reason
    assert loops["enough"].outputs.parameters["y"].value == [0, None, None, 30]
    assert loops["ratio"].phase == "Succeeded"
    assert loops["too-few"].phase == "Failed"
    assert "2 of 4 slices failed" in loops["too-few"].reason
    # raise_for_group: the groups fail, their good slices still count towards the 2
    assert loops["raising"].phase == "Succeeded", loops["raising"].reason
    assert {p.phase for p in wf.query_step(name="raising", type="Pod")} == {"Failed"}


def test_a_loops_list_outputs_are_sliced_as_one_flat_catalog(hpc_home):
    made = Step("made", PythonOPTemplate(pair), parameters={"x": "{{item}}"},
                with_param=argo_range(2))
    each = Step("each", PythonOPTemplate(read, slices=Slices(input_artifact=["data"],
                                                             output_parameter=["text"])),
                artifacts={"data": made.outputs.artifacts["files"]})
    grouped = Step("grouped", PythonOPTemplate(read, slices=Slices(
        input_artifact=["data"], output_parameter=["text"], group_size=3)),
        artifacts={"data": made.outputs.artifacts["files"]}, with_param=argo_range(4))
    wf = Workflow("flat-catalog")
    wf.add(made)
    wf.add([each, grouped])
    wf.submit()
    assert wf.wait(timeout=120) == "Succeeded"
    for name in ("each", "grouped"):
        loop = wf.query_step(name=name, type="StepGroup")[0]
        assert loop.outputs.parameters["text"].value == ["0a", "0b", "1a", "1b"], name
    assert len(wf.query_step(name="each", type="Pod")) == 4  # one path per slice


def test_retry_steps_reruns_only_the_steps_given(hpc_home, tmp_path):
    gate = tmp_path / "gate"
    first = Step("first", PythonOPTemplate(flaky), parameters={"marker": str(tmp_path / "m1")})
    second = Step("second", PythonOPTemplate(flaky),
                  parameters={"marker": str(tmp_path / "m2")})
    slow = Step("slow", PythonOPTemplate(hold), parameters={"gate": str(gate)})
    wf = Workflow("retry-steps")
    wf.add([first, second, slow])
    wf.submit()
    wait_until(lambda: len(wf.query_step(phase="Failed", type="Pod")) == 2, "two failures")
    assert wf.query_status() == "Running"  # dflow's case: the workflow still runs
    [one] = wf.query_step(name="first")
    [two] = wf.query_step(name="second")
    [running] = wf.query_step(name="slow")
    with pytest.raises(HpcflowError, match=r"step 'slow' \(\d+\) is Running: only a Failed"):
        wf.retry_steps([running.id])
    with pytest.raises(HpcflowError, match="has no step '999999'"):
        wf.retry_steps(["999999"])
    wf.retry_steps([one.id])
    wait_until(lambda: wf.query_step(name="first")[0].phase == "Succeeded", "first rerun")
    assert wf.query_step(name="second")[0].phase == "Failed"  # not given: left as it was
    rerun = wf.query_step(name="first")[0]["startedAt"]
    gate.touch()
    assert wf.wait(timeout=120) == "Failed"
    # a finished, failed workflow: reopened for the steps given
    wf.retry_steps([two.id])  # a request, applied at the engine's next cycle (as retry())
    wait_until(lambda: wf.query_status() != "Failed", "the workflow reopened")
    assert wf.wait(timeout=120) == "Succeeded"
    assert wf.query_step(name="first")[0]["startedAt"] == rerun  # not run a third time
    assert wf.query_step(name="second")[0].outputs.parameters["done"].value == str(
        tmp_path / "m2")
