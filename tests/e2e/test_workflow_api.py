"""The SDK's workflow management: reattach, query_step filters, terminate, parallelism."""

import os
import time
from pathlib import Path

import pytest

from hpcflow import Step, Workflow, argo_range, config
from hpcflow.errors import HpcflowError
from hpcflow.python import OP, PythonOPTemplate


@OP.function
def nap(seconds: float, tag: str) -> {"pid": int, "start": float, "end": float}:
    start = time.time()
    time.sleep(seconds)
    return {"pid": os.getpid(), "start": start, "end": time.time()}


def test_reattach_and_query_step_filters(hpc_home):
    wf = Workflow("api")
    wf.add(Step("first", PythonOPTemplate(nap), parameters={"seconds": 0, "tag": "a"}))
    wf.add(Step("fan", PythonOPTemplate(nap), parameters={"seconds": 0, "tag": "{{item}}"},
                with_param=["x", "y"]))
    wf.submit()
    assert wf.wait(timeout=60) == "Succeeded"
    again = Workflow(id=wf.id)
    assert again.query_status() == "Succeeded" and again.name == "api"
    assert [s.name for s in again.query_step(name="first")] == ["first"]
    assert len(again.query_step(name="fan.*", type="Pod")) == 2
    assert {s.type for s in again.query_step(phase="Succeeded")} == {"Steps", "Pod",
                                                                    "StepGroup"}
    one = again.query_step(name="first")[0]
    assert again.query_step(id=one.id)[0].name == "first"
    assert one.inputs.parameters["tag"].value == "a"
    missing = Workflow(id="missing-00000")  # fails when used, as in dflow
    with pytest.raises(HpcflowError, match="no workflow 'missing-00000'"):
        missing.query_status()


def test_terminate_kills_running_steps(hpc_home):
    wf = Workflow("stop-me")
    wf.add(Step("long", PythonOPTemplate(nap), parameters={"seconds": 60, "tag": "x"}))
    wf.add(Step("never", PythonOPTemplate(nap), parameters={"seconds": 0, "tag": "y"}))
    wf.submit()
    deadline = time.time() + 120
    claim = None
    while time.time() < deadline and claim is None:
        found = list(hpc_home.glob("runs/*/long-*/claim"))
        claim = found[0] if found and found[0].read_text() else None
        time.sleep(0.05)
    assert claim is not None
    pid = int(claim.read_text().split()[0])  # "PID HOST"
    wf.terminate()
    assert wf.wait(timeout=120) == "Terminated"
    long_step = wf.query_step(name="long")[0]
    assert long_step.phase == "Failed" and long_step.reason == "terminated"
    assert wf.query_step(name="never") == []
    deadline = time.time() + 60
    while Path(f"/proc/{pid}").exists() and time.time() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{pid}").exists(), "the step's process is still alive"


def test_local_parallelism_is_respected(hpc_home, monkeypatch):
    monkeypatch.setitem(config, "local_parallelism", 1)
    wf = Workflow("serial")
    wf.add(Step("p", PythonOPTemplate(nap), parameters={"seconds": 0.3, "tag": "{{item}}"},
                with_param=argo_range(3)))
    wf.submit()
    assert wf.wait(timeout=60) == "Succeeded"
    spans = sorted((s.outputs.parameters["start"].value, s.outputs.parameters["end"].value)
                   for s in wf.query_step(type="Pod"))
    assert all(spans[i][1] <= spans[i + 1][0] for i in range(len(spans) - 1)), spans
