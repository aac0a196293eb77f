"""Workflow control from the CLI: retry (same workflow, failed steps only), suspend/resume,
status --watch, list filters, gc. Everything runs through the real engine and the `hpcflow`
command as a separate process."""

import json
import time
from collections import Counter
from pathlib import Path

from tests.conftest import integrity_ok, run_cli, wait_progressing

# prep -> a DAG (b fails until FIX exists; c needs b; a loop whose item 2 fails until FIX
# exists) -> final. Every execution is appended to LEDGER.
FLAKY = '''
import os
from pathlib import Path
from hpcflow import DAG, Step, Task, Workflow
from hpcflow.python import OP, Artifact, PythonOPTemplate

@OP.function
def work(tag: str, bad: str) -> {"out": str}:
    with open("LEDGER", "a") as f:
        f.write(tag + "\\n")
    if tag == bad and not os.path.exists("FIX"):
        raise RuntimeError(f"{tag} is broken until FIX exists")
    return {"out": tag}

@OP.function
def keep(text: str) -> {"file": Artifact(Path)}:
    Path("kept.txt").write_text(text)
    return {"file": Path("kept.txt")}

t = PythonOPTemplate(work)
dag = DAG("inner")
b = Task("b", t, parameters={"tag": "b", "bad": "b"})
c = Task("c", t, parameters={"tag": "c", "bad": b.outputs.parameters["out"]},
         dependencies=[b])
fan = Task("fan", t, parameters={"tag": "fan{{item}}", "bad": "fan2"}, with_param=[0, 1, 2, 3])
dag.add([b, c, fan])
wf = Workflow("flaky")
wf.add(Step("prep", t, parameters={"tag": "prep", "bad": ""}))
wf.add(Step("dag", dag))
wf.add(Step("final", t, parameters={"tag": "final", "bad": ""}))
wf.add(Step("keep", PythonOPTemplate(keep), parameters={"text": "kept"}))
wf.submit()
'''


def flaky(tmp_path: Path) -> tuple[str, Path, Path]:
    ledger, fix = tmp_path / "ledger.txt", tmp_path / "FIX"
    return FLAKY.replace("LEDGER", str(ledger)).replace("FIX", str(fix)), ledger, fix


def _submit(tmp_path: Path, home: Path, text: str, *args: str) -> str:
    script = tmp_path / f"wf{len(list(tmp_path.glob('wf*.py')))}.py"
    script.write_text(text)
    done = run_cli(["submit", str(script), *args], home, tmp_path)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def _status(home: Path, cwd: Path, wf_id: str) -> dict:
    return json.loads(run_cli(["status", wf_id, "--json"], home, cwd).stdout)


def _wait_final(home: Path, cwd: Path, wf_id: str, timeout: float = 90) -> dict:
    """The final status; fails only when no step changed phase for ``timeout`` seconds."""
    return wait_progressing(lambda: _status(home, cwd, wf_id),
                            lambda data: data["phase"] not in ("Pending", "Running"),
                            lambda data: data["steps"], stall=timeout, what=wf_id,
                            interval=0.2)


def test_retry_runs_only_the_failed_steps_in_the_same_workflow(tmp_path):
    home = tmp_path / "home"
    text, ledger, fix = flaky(tmp_path)
    wf_id = _submit(tmp_path, home, text)
    try:
        first = _wait_final(home, tmp_path, wf_id)
        assert first["phase"] == "Failed"
        steps = {s["name"]: s for s in json.loads(
            run_cli(["steps", wf_id, "--json"], home, tmp_path).stdout)}
        assert steps["b"]["phase"] == "Failed" and steps["c"]["phase"] == "Omitted"
        assert "final" not in steps
        too_early = run_cli(["retry", "no-such-wf"], home, tmp_path)
        assert too_early.returncode == 1 and "no workflow 'no-such-wf'" in too_early.stderr

        fix.touch()
        fixed = run_cli(["retry", wf_id], home, tmp_path)
        assert fixed.returncode == 0 and f"retry requested for {wf_id}" in fixed.stdout
        deadline = time.time() + 60
        while _status(home, tmp_path, wf_id)["phase"] in ("Failed", "Pending", "Running"):
            assert time.time() < deadline
            time.sleep(0.1)
        final = _status(home, tmp_path, wf_id)
        assert final["phase"] == "Succeeded", final
        counts = Counter(ledger.read_text().split())
        # prep, c, final and the items that succeeded ran once; b and item 2 ran twice
        assert counts == {"prep": 1, "b": 2, "c": 1, "final": 1, "fan0": 1, "fan1": 1,
                          "fan2": 2, "fan3": 1}, counts
        steps = {s["name"]: s for s in json.loads(
            run_cli(["steps", wf_id, "--json"], home, tmp_path).stdout)}
        assert steps["b"]["attempt"] == 1 and steps["prep"]["attempt"] == 0
        assert steps["c"]["phase"] == "Succeeded" and steps["final"]["phase"] == "Succeeded"
        again = run_cli(["retry", wf_id], home, tmp_path)
        assert again.returncode == 1
        assert again.stderr.strip() == (f"hpcflow: workflow {wf_id} is Succeeded: only a "
                                        "Failed, Error or Terminated workflow can be retried")
        assert integrity_ok(home)
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)


SLOW_CHAIN = '''
from hpcflow import Step, Workflow
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def slow(x: int) -> {"y": int}:
    import os, time
    deadline = time.time() + 600
    while x == 0 and not os.path.exists("GATE") and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # long enough for status --watch to see the others run
    return {"y": x + 1}

wf = Workflow("slow")
prev = None
for i in range(4):
    prev = Step(f"s{i}", PythonOPTemplate(slow),
                parameters={"x": prev.outputs.parameters["y"] if prev else 0})
    wf.add(prev)
wf.submit()
'''


def test_suspend_stops_new_jobs_and_resume_goes_on(tmp_path):
    """The first step waits for a gate file, so it is the one step running when the workflow
    is suspended, however slowly the machine runs the commands."""
    home = tmp_path / "home"
    gate = tmp_path / "gate"
    wf_id = _submit(tmp_path, home, SLOW_CHAIN.replace("GATE", str(gate)))
    try:
        wait_progressing(lambda: _status(home, tmp_path, wf_id),
                         lambda data: data["steps"].get("Running"), what="s0's start")
        assert run_cli(["suspend", wf_id], home, tmp_path).returncode == 0
        gate.touch()  # s0 finishes; nothing new may start
        wait_progressing(lambda: _status(home, tmp_path, wf_id),
                         lambda data: not data["steps"].get("Running"), what="s0's end")
        time.sleep(2.0)  # a while in which the next step would start if nothing held it
        data = _status(home, tmp_path, wf_id)
        assert data["phase"] == "Running" and data["suspended"] is True
        assert data["steps"].get("Succeeded", 0) == 1 and not data["steps"].get("Running"), data
        assert "(suspended)" in run_cli(["status", wf_id], home, tmp_path).stdout
        twice = run_cli(["suspend", wf_id], home, tmp_path)
        assert twice.returncode == 1 and "already suspended" in twice.stderr
        assert run_cli(["resume", wf_id], home, tmp_path).returncode == 0
        watched = run_cli(["status", wf_id, "--watch", "--interval", "0.2"], home, tmp_path)
        assert watched.returncode == 0, watched.stderr
        assert watched.stdout.strip().endswith(f"{wf_id} Succeeded")
        assert "Running" in watched.stderr  # the progress lines (not a terminal: one per phase)
        data = _status(home, tmp_path, wf_id)
        assert data["suspended"] is False and data["steps"] == {"Succeeded": 4}
        gone = run_cli(["resume", wf_id], home, tmp_path)
        assert gone.returncode == 1 and "is not suspended" in gone.stderr
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)


def test_list_filters_and_gc_keep_the_records(tmp_path):
    home = tmp_path / "home"
    text, _, fix = flaky(tmp_path)
    fix.touch()
    wf_a = _submit(tmp_path, home, text, "--label", "team=a", "--label", "kind=md")
    open_gate = tmp_path / "open-gate"
    open_gate.touch()
    wf_b = _submit(tmp_path, home, SLOW_CHAIN.replace("GATE", str(open_gate)), "--label",
                   "team=b")
    try:
        for wf_id in (wf_a, wf_b):
            _wait_final(home, tmp_path, wf_id)

        def listed(*args: str) -> list[str]:
            out = run_cli(["list", "--json", *args], home, tmp_path)
            assert out.returncode == 0, out.stderr
            return [w["id"] for w in json.loads(out.stdout)]

        assert listed("--label", "team=a") == [wf_a]
        assert listed("--label", "team=a", "--label", "kind=gpu") == []
        assert sorted(listed("--since", "1h")) == sorted([wf_a, wf_b])
        bad = run_cli(["list", "--since", "yesterday"], home, tmp_path)
        assert bad.returncode == 1 and "'yesterday' is not an age" in bad.stderr

        artifacts = home / "artifacts" / "wf" / wf_a
        assert (home / "runs" / wf_a).is_dir() and artifacts.is_dir()
        dry = run_cli(["gc", "--older-than", "0s", "--dry-run"], home, tmp_path)
        assert f"would prune {wf_a}" in dry.stdout and (home / "runs" / wf_a).is_dir()
        assert "no finished workflow" in run_cli(["gc", "--older-than", "1d"], home,
                                                 tmp_path).stdout
        pruned = json.loads(run_cli(["gc", "--older-than", "0s", "--json"], home,
                                    tmp_path).stdout)
        by_id = {w["id"]: w for w in pruned["workflows"]}
        assert set(by_id) == {wf_a, wf_b} and by_id[wf_a]["artifacts"] >= 1
        assert by_id[wf_a]["files"] > 0
        assert not (home / "runs" / wf_a).exists() and not artifacts.exists()
        kept = _status(home, tmp_path, wf_a)  # the records stay
        assert kept["phase"] == "Succeeded" and kept["pruned_at"] and kept["steps"]
        steps = json.loads(run_cli(["steps", wf_a, "--json"], home, tmp_path).stdout)
        assert {s["name"] for s in steps} >= {"prep", "b", "c", "final", "keep"}
        reuse = run_cli(["resubmit", wf_a, "--reuse-succeeded"], home, tmp_path)
        assert reuse.returncode == 1 and "was pruned by 'hpcflow gc'" in reuse.stderr
        again = json.loads(run_cli(["gc", "--older-than", "0s", "--json"], home,
                                   tmp_path).stdout)
        assert again["workflows"] == []
        assert integrity_ok(home)
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)
