"""Reuse from the SDK and ``hpcflow resubmit`` from the terminal."""

import json
import sqlite3
import time
from pathlib import Path

import pytest

from hpcflow import Step, Workflow, argo_range, download_artifact
from hpcflow.errors import HpcflowError
from hpcflow.python import OP, Artifact, PythonOPTemplate
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


def test_a_step_without_key_is_passed_over_by_reuse(hpc_home, tmp_path):
    """As in dflow: it cannot be matched, so it runs again (no error)."""
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
    again.submit(reuse_step=wf.query_step(name="m"))
    assert again.wait(timeout=60) == "Succeeded"
    assert (tmp_path / "l").read_text().split() == ["1", "1"]
    assert not again.query_step(name="m")[0].reason


def test_a_key_that_breaks_dflows_rule_is_refused_at_submission(hpc_home, tmp_path):
    """dflow checks the key as written, each {{...}} stood in for by a letter."""
    wf = Workflow("badkey")
    wf.add(Step("m", PythonOPTemplate(maybe),
                parameters={"x": "{{item}}", "ledger": str(tmp_path / "l"), "gate": "g"},
                with_param=[1], key="Step_{{item}}"))
    with pytest.raises(HpcflowError, match=r"key name 'Step_\{\{item\}\}' breaks the naming rule"):
        wf.submit()
    assert not json.loads(run_cli(["list", "--json"], hpc_home, tmp_path).stdout)


@OP.function
def made(text: str) -> {"file": Artifact(Path)}:
    Path("made.txt").write_text(text)
    return {"file": Path("made.txt")}


@OP.function
def gated(gate: str) -> {"n": int}:
    while not Path(gate).exists():
        time.sleep(0.05)
    return {"n": 1}


@OP.function
def copied(file: Artifact(Path), n: int) -> {"text": str, "copy": Artifact(Path)}:
    Path("copy.txt").write_text(Path(file).read_text())
    return {"text": Path(file).read_text(), "copy": Path("copy.txt")}


def _gated_workflow(gate: Path) -> Workflow:
    """make (keyed: reused) -> gate (no key: runs again, waits for ``gate``) -> read make's
    artifact."""
    wf = Workflow("reuse-gc")
    make = Step("make", PythonOPTemplate(made), parameters={"text": "made once"}, key="make")
    wait = Step("gate", PythonOPTemplate(gated), parameters={"gate": str(gate)})
    wf.add(make)
    wf.add(wait)
    wf.add(Step("read", PythonOPTemplate(copied),
                artifacts={"file": make.outputs.artifacts["file"]},
                parameters={"n": wait.outputs.parameters["n"]}))
    return wf


def _made_once(tmp_path: Path) -> tuple[Path, Workflow, str]:
    """A finished run of ``_gated_workflow`` (its gate left open): the gate, the workflow
    and the key of the artifact its keyed step made."""
    gate = tmp_path / "gate"
    gate.touch()
    first = _gated_workflow(gate)
    first.submit()
    assert first.wait(timeout=60) == "Succeeded"
    return gate, first, first.query_step(key="make")[0].outputs.artifacts["file"].key


def _objects(home: Path, wf_id: str) -> list[str]:
    root = home / "artifacts"
    return sorted(p.relative_to(root).as_posix() for p in (root / "wf" / wf_id).rglob("*")
                  if p.is_file())


def test_gc_keeps_the_objects_a_kept_workflow_reuses(hpc_home, tmp_path):
    gate, first, made_key = _made_once(tmp_path)
    assert made_key.startswith(f"wf/{first.id}/") and len(_objects(hpc_home, first.id)) == 2
    gate.unlink()
    result = run_cli(["resubmit", first.id, "--reuse-succeeded"], hpc_home, tmp_path)
    assert result.returncode == 0, result.stderr
    second = Workflow(id=result.stdout.strip())
    # the second run is live (its gate waits): gc prunes the first, not what the second reuses
    pruned = run_cli(["gc", "--older-than", "0s", "--json"], hpc_home, tmp_path)
    assert pruned.returncode == 0, pruned.stderr
    assert [w["id"] for w in json.loads(pruned.stdout)["workflows"]] == [first.id]
    assert _objects(hpc_home, first.id) == [made_key]  # the first's own read output is gone
    assert not (hpc_home / "runs" / first.id).exists()
    gate.touch()
    assert second.wait(timeout=60) == "Succeeded"
    assert second.query_step(name="read")[0].outputs.parameters["text"].value == "made once"
    reused = second.query_step(key="make")[0]
    assert reused.reason.startswith(f"reused from {first.id}/")
    got = download_artifact(reused.outputs.artifacts["file"], path=tmp_path / "got")
    assert [Path(p).read_text() for p in got] == ["made once"]
    # a later resubmit of the kept workflow still reuses the artifact
    again = run_cli(["resubmit", second.id, "--reuse-succeeded"], hpc_home, tmp_path)
    assert again.returncode == 0, again.stderr
    third = Workflow(id=again.stdout.strip())
    assert third.wait(timeout=60) == "Succeeded"
    assert third.query_step(name="read")[0].outputs.parameters["text"].value == "made once"
    # once no kept workflow refers to it, the next gc removes it
    pruned = json.loads(run_cli(["gc", "--older-than", "0s", "--json"], hpc_home,
                                tmp_path).stdout)
    assert sorted(w["id"] for w in pruned["workflows"]) == sorted([second.id, third.id])
    assert [_objects(hpc_home, w.id) for w in (first, second, third)] == [[], [], []]


def test_objects_of_a_deleted_workflow_go_when_the_last_workflow_reusing_them_does(
        hpc_home, tmp_path):
    """``delete`` keeps what a kept workflow reuses; pruning (or deleting) that workflow
    later removes it, though the deleted workflow's record is gone by then."""
    _, first, made_key = _made_once(tmp_path)
    result = run_cli(["resubmit", first.id, "--reuse-succeeded"], hpc_home, tmp_path)
    assert result.returncode == 0, result.stderr
    second = Workflow(id=result.stdout.strip())
    assert second.wait(timeout=60) == "Succeeded"
    deleted = run_cli(["delete", first.id], hpc_home, tmp_path)
    assert deleted.returncode == 0, deleted.stderr
    assert _objects(hpc_home, first.id) == [made_key]  # the second still reuses it
    pruned = run_cli(["gc", "--older-than", "0s", "--json"], hpc_home, tmp_path)
    assert pruned.returncode == 0, pruned.stderr
    assert [w["id"] for w in json.loads(pruned.stdout)["workflows"]] == [second.id]
    assert _objects(hpc_home, first.id) == [] and _objects(hpc_home, second.id) == []
    # nothing is left to remember about the deleted workflow's objects
    store = sqlite3.connect(hpc_home / "store.db")
    assert store.execute("SELECT count(*) FROM deleted_prefixes").fetchone()[0] == 0
    store.close()
