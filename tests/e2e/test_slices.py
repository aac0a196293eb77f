"""Slices through the engine: parameters and artifacts sliced per item, outputs stacked."""

from pathlib import Path
from typing import List

import pytest

from hpcflow import Step, Workflow, argo_range, upload_artifact
from hpcflow.errors import WorkflowDefinitionError
from hpcflow.python import OP, Artifact, PythonOPTemplate, Slices


@OP.function
def double(x: int) -> {"y": int}:
    return {"y": 2 * x}


@OP.function
def total(xs: List[int]) -> {"s": int}:
    return {"s": sum(xs)}


@OP.function
def read(data: Artifact(Path)) -> {"text": str, "seen": List[str]}:
    root = Path(data).parent
    return {"text": Path(data).read_text(),
            "seen": sorted(p.name for p in root.rglob("*") if p.is_file())}


def test_a_thousand_slices(hpc_home):
    fan = Step("fan", PythonOPTemplate(double, slices=Slices(input_parameter=["x"],
                                                             output_parameter=["y"])),
               parameters={"x": list(range(1000))}, with_param=argo_range(1000))
    summed = Step("sum", PythonOPTemplate(total), parameters={"xs": fan.outputs.parameters["y"]})
    wf = Workflow("slices-1000")
    wf.add(fan)
    wf.add(summed)
    wf.submit()
    assert wf.wait(timeout=240) == "Succeeded"
    assert wf.query_step(name="sum")[0].outputs.parameters["s"].value == 2 * sum(range(1000))
    assert len(wf.query_step(name="fan", type="Pod")) == 1000


@pytest.mark.parametrize("sub_path", [True, False])
def test_artifact_slices_with_and_without_sub_path(hpc_home, sub_path):
    for i in range(3):
        Path(f"f{i}.txt").write_text(f"content {i}")
    art = upload_artifact([f"f{i}.txt" for i in range(3)], archive=None)
    slices = Slices(input_artifact=["data"], output_parameter=["text", "seen"],
                    sub_path=sub_path)
    kwargs = {} if sub_path else {"with_param": argo_range(3)}
    step = Step("read", PythonOPTemplate(read, slices=slices), artifacts={"data": art}, **kwargs)
    wf = Workflow("art-slices")
    wf.add(step)
    wf.submit()
    assert wf.wait(timeout=60) == "Succeeded"
    group = wf.query_step(name="read", type="StepGroup")[0]
    assert group.outputs.parameters["text"].value == [f"content {i}" for i in range(3)]
    seen = group.outputs.parameters["seen"].value
    if sub_path:
        assert seen == [[f"f{i}.txt"] for i in range(3)]  # only its own slice was fetched
    else:
        assert seen == [[f"f{i}.txt" for i in range(3)]] * 3  # the whole artifact, as dflow


def test_sub_path_of_an_archived_artifact_is_an_error_step(hpc_home):
    Path("a.txt").write_text("a")
    art = upload_artifact(["a.txt"])  # archive="tar"
    step = Step("read", PythonOPTemplate(read, slices=Slices(input_artifact=["data"],
                                                              sub_path=True)),
                artifacts={"data": art})
    wf = Workflow("bad-sub-path")
    wf.add(step)
    wf.submit()
    assert wf.wait(timeout=60) == "Failed"
    [error] = wf.query_step(phase="Error")
    assert "archive=None" in error.reason and "'data'" in error.reason


@OP.function
def stamp(x: int, data: Artifact(Path)) -> {"y": int, "pid": int,
                                             "out": Artifact(Path, archive=None)}:
    import os

    Path("out.txt").write_text(f"{x}:{Path(data).read_text()}")
    return {"y": 10 * x, "pid": os.getpid(), "out": Path("out.txt")}


@pytest.mark.parametrize("pool_size", [None, 3])
def test_group_size_and_pool_size(hpc_home, pool_size):
    for i in range(7):
        Path(f"in{i}.txt").write_text(f"file {i}")
    art = upload_artifact([f"in{i}.txt" for i in range(7)], archive=None)
    slices = Slices(input_parameter=["x"], input_artifact=["data"],
                    output_parameter=["y", "pid"], output_artifact=["out"], group_size=3,
                    pool_size=pool_size, sub_path=True, create_dir=True)
    grouped = Step("grouped", PythonOPTemplate(stamp, slices=slices),
                   parameters={"x": list(range(7))}, artifacts={"data": art})
    check = Step("check", PythonOPTemplate(read, slices=Slices(input_artifact=["data"],
                                                               output_parameter=["text"])),
                 artifacts={"data": grouped.outputs.artifacts["out"]}, with_param=argo_range(7))
    wf = Workflow("grouped")
    wf.add(grouped)
    wf.add(check)
    wf.submit()
    assert wf.wait(timeout=60) == "Succeeded"
    assert len(wf.query_step(name="grouped", type="Pod")) == 3  # 7 slices in groups of 3
    group = wf.query_step(name="grouped", type="StepGroup")[0]
    assert group.outputs.parameters["y"].value == [10 * i for i in range(7)]
    pids = group.outputs.parameters["pid"].value
    if pool_size:
        assert len(set(pids[:3])) == 3  # the first group's slices ran in separate processes
    else:
        assert len(set(pids[:3])) == 1
    texts = wf.query_step(name="check", type="StepGroup")[0].outputs.parameters["text"].value
    assert texts == [f"{i}:file {i}" for i in range(7)]


def test_pool_size_without_group_size_is_refused(hpc_home):
    step = Step("fan", PythonOPTemplate(double, slices=Slices(input_parameter=["x"],
                                                              pool_size=2)),
                parameters={"x": [1, 2]}, with_param=argo_range(2))
    wf = Workflow("pooled")
    wf.add(step)
    with pytest.raises(WorkflowDefinitionError, match="set group_size"):
        wf.submit()
