"""What a step leaves in its directory, on the real engine with the local executor.

Every file and directory a step creates is a metadata operation, on the file server when
``$HPCFLOW_HOME`` is on NFS, GPFS or Lustre: a 100,000-item fan-out pays each one 100,000
times. Outside dflow's debug mode a step's parameters are in ``step.json`` and
``result.json`` only; a debug-mode workflow keeps dflow's layout, a file per parameter under
``inputs/parameters`` and ``outputs/parameters`` (its record of a run)."""

import json

import pytest

from hpcflow import Step, Workflow
from hpcflow import settings as config_module
from hpcflow.python import OP, PythonOPTemplate

#: A Python OP step's directory outside debug mode (``op.pkl`` is a hard link to one copy
#: per workflow: a name, not a new file).
LEAN_STEP = {"claim", "log.txt", "op.pkl", "result.json", "step.json", "workdir"}


@OP.function
def double(x: int, label: str) -> {"y": int, "text": str}:
    return {"y": 2 * x, "text": f"{label}!"}


def run_double(name: str) -> tuple[Workflow, dict]:
    wf = Workflow(name)
    wf.add(Step("double", PythonOPTemplate(double), parameters={"x": 21, "label": "hi"}))
    wf.submit()
    assert wf.wait(timeout=120) == "Succeeded"
    out = wf.query_step(name="double")[0].outputs.parameters
    return wf, {name: out[name].value for name in ("y", "text")}


@pytest.mark.parametrize("debug", [False, True])
def test_a_steps_directory_holds_its_parameters_as_files_only_in_debug_mode(
        hpc_home, monkeypatch, debug) -> None:
    if debug:
        monkeypatch.setitem(config_module.config, "mode", "debug")
    wf, outputs = run_double(f"layout-{'debug' if debug else 'default'}")
    assert outputs == {"y": 42, "text": "hi!"}
    step_dir = next((hpc_home / "runs" / wf.id).glob("double-*"))
    result = json.loads((step_dir / "result.json").read_text())
    assert (result["outputs"]["parameters"]["y"], result["outputs"]["parameters"]["text"]) == \
        (42, "hi!")
    assert json.loads((step_dir / "step.json").read_text())["inputs"]["parameters"] == \
        {"x": 21, "label": "hi"}
    entries = {p.name for p in step_dir.iterdir()}
    if not debug:
        assert entries == LEAN_STEP
        assert not any((step_dir / "workdir").iterdir())
        return
    assert entries == LEAN_STEP | {"inputs", "outputs"}
    assert (step_dir / "inputs" / "parameters" / "x").read_text() == "21"
    assert (step_dir / "inputs" / "parameters" / "label").read_text() == "hi"
    assert (step_dir / "outputs" / "parameters" / "y").read_text() == "42"
    assert (step_dir / "outputs" / "parameters" / "text").read_text() == "hi!"
