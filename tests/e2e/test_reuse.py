"""Reuse from the SDK and ``hpcflow resubmit`` from the terminal."""

import json
from pathlib import Path

import pytest

from hpcflow import Step, Workflow, argo_range
from hpcflow.errors import HpcflowError
from hpcflow.python import OP, PythonOPTemplate
from tests.conftest import run_cli


@OP.function
def maybe(x: int, ledger: str, gate: str) -> {"y": int}:
    with open(ledger, "a") as f:
        f.write(f"{x}\n")
    if x == 2 and not Path(gate).exists():
        raise RuntimeError("gate closed")
    return {"y": x + 10}


def _workflow(tmp_path: Path) -> Workflow:
    wf = Workflow("resub")
    wf.add(Step("m", PythonOPTemplate(maybe),
                parameters={"x": "{{item}}", "ledger": str(tmp_path / "ledger"),
                            "gate": str(tmp_path / "gate")},
                with_param=argo_range(4), key="m-{{item}}", continue_on_num_success=1))
    return wf


def test_cli_resubmit_reuses_succeeded_steps(hpc_home, tmp_path):
    first = _workflow(tmp_path)
    first.submit()
    assert first.wait(timeout=60) == "Succeeded"
    assert first.query_step(key="m-2")[0].phase == "Failed"
    (tmp_path / "gate").touch()
    result = run_cli(["resubmit", first.id, "--reuse-succeeded"], hpc_home, tmp_path)
    assert result.returncode == 0, result.stderr
    second = Workflow(id=result.stdout.strip())
    assert second.wait(timeout=60) == "Succeeded"
    assert sorted((tmp_path / "ledger").read_text().split()) == ["0", "1", "2", "2", "3"]
    group = second.query_step(name="m", type="StepGroup")[0]
    assert group.outputs.parameters["y"].value == [10, 11, 12, 13]
    reused = [s.key for s in second.query_step(type="Pod") if s.reason
              and s.reason.startswith(f"reused from {first.id}/")]
    assert sorted(reused) == ["m-0", "m-1", "m-3"]


def test_cli_resubmit_with_named_keys_and_errors(hpc_home, tmp_path):
    (tmp_path / "gate").touch()
    first = _workflow(tmp_path)
    first.submit()
    assert first.wait(timeout=60) == "Succeeded"
    result = run_cli(["resubmit", first.id, "--reuse", "m-0"], hpc_home, tmp_path)
    assert result.returncode == 0
    assert Workflow(id=result.stdout.strip()).wait(timeout=60) == "Succeeded"
    assert len((tmp_path / "ledger").read_text().split()) == 4 + 3
    bad = run_cli(["resubmit", first.id, "--reuse", "nope"], hpc_home, tmp_path)
    assert bad.returncode == 1 and "no succeeded step with key 'nope'" in bad.stderr
    assert "Traceback" not in bad.stderr
    listed = json.loads(run_cli(["list", "--json"], hpc_home, tmp_path).stdout)
    assert len(listed) == 2


def test_reusing_a_step_without_key_is_refused(hpc_home, tmp_path):
    (tmp_path / "gate").touch()
    wf = Workflow("nokey")
    wf.add(Step("m", PythonOPTemplate(maybe),
                parameters={"x": 1, "ledger": str(tmp_path / "l"), "gate": str(tmp_path / "gate")}))
    wf.submit()
    wf.wait(timeout=60)
    again = Workflow("nokey")
    again.add(Step("m", PythonOPTemplate(maybe),
                   parameters={"x": 1, "ledger": str(tmp_path / "l"),
                               "gate": str(tmp_path / "gate")}))
    with pytest.raises(HpcflowError, match="has no key"):
        again.submit(reuse_step=wf.query_step(name="m"))


def test_bad_key_at_run_time_is_an_error_step(hpc_home, tmp_path):
    wf = Workflow("badkey")
    wf.add(Step("m", PythonOPTemplate(maybe),
                parameters={"x": "{{item}}", "ledger": str(tmp_path / "l"), "gate": "g"},
                with_param=[1], key="Step_{{item}}"))
    wf.submit()
    assert wf.wait(timeout=60) == "Failed"
    step = wf.query_step(name="m", type="Pod")[0]
    assert step.phase == "Error" and "'Step_1'" in step.reason and "RFC 1123" in step.reason
