"""Job arrays on the real one-node Slurm and Grid Engine of tests/services: Ready steps of
one template go out as ONE array job (``array_size``), each element a step with its own
job id, state, log and retry; a failing element is retried alone, as a job of its own,
while the others keep theirs; terminating the workflow cancels its elements.

The element ids the steps record (``steps --json`` ``job_id``: ``1234_7`` for Slurm,
``123.7`` for Grid Engine) show which array each step ran in; the submission commands are
counted through a wrapper on the daemon's PATH."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import fault_env, run_cli, wait_until
from tests.integration.flows import await_fault_kill, steps, wait

FAN = '''
import sys
from pathlib import Path
from hpcflow import Step, Workflow, {executor}, argo_range
from hpcflow.python import OP, PythonOPTemplate, TransientError

@OP.function
def tiny(x: int, marks: str) -> {{"y": int}}:
    mark = Path(marks) / f"fail-{{x}}"
    if mark.exists():  # this element fails once, then succeeds when retried
        mark.unlink()
        print(f"element {{x}} fails this time")
        raise TransientError(f"element {{x}} failed on purpose")
    return {{"y": 2 * x}}

@OP.function
def total(ys: list) -> {{"s": int}}:
    return {{"s": sum(ys)}}

wf = Workflow("arrays-{kind}")
fan = Step("tiny", PythonOPTemplate(tiny, retry_on_transient_error=1),
           parameters={{"x": "{{{{item}}}}", "marks": sys.argv[1]}},
           with_param=argo_range(int(sys.argv[2])),
           executor={executor}({resources}, array_size=int(sys.argv[2]), array_throttle=4))
wf.add(fan)
wf.add(Step("total", PythonOPTemplate(total), parameters={{"ys": fan.outputs.parameters["y"]}},
            executor={executor}({resources})))
wf.submit()
print(wf.id)
'''

WAITING = '''
import sys, time
from pathlib import Path
from hpcflow import Step, Workflow, {executor}, argo_range
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def wait_for(x: int, go: str) -> {{"y": int}}:
    while not Path(go).exists():
        time.sleep(0.5)
    return {{"y": x}}

wf = Workflow("array-cancel-{kind}")
wf.add(Step("wait", PythonOPTemplate(wait_for),
            parameters={{"x": "{{{{item}}}}", "go": sys.argv[1]}},
            with_param=argo_range(6), executor={executor}({resources}, array_size=6)))
wf.submit()
print(wf.id)
'''

SCHEDULERS = {
    "slurm": {"executor": "SlurmExecutor", "resources": 'partition="debug", time="0:10:00"',
              "submit": "sbatch", "element": r"(\d+)_(\d+)", "fixture": "slurm_env"},
    "sge": {"executor": "SGEExecutor", "resources": 'queue="all.q", time="0:10:00"',
            "submit": "qsub", "element": r"(\d+)\.(\d+)", "fixture": "sge_env"},
}


@pytest.fixture(params=sorted(SCHEDULERS))
def kind(request: pytest.FixtureRequest) -> str:
    request.getfixturevalue(SCHEDULERS[request.param]["fixture"])  # the service must be up
    return str(request.param)


def _counting_path(tmp_path: Path, tool: str) -> tuple[str, Path]:
    """A PATH whose ``tool`` logs each call to a file, then runs the real one."""
    real = subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True, text=True,
                          check=True).stdout.strip()
    calls = tmp_path / f"{tool}-calls.txt"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    wrapper = bin_dir / tool
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> {calls}\nexec {real} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    return f"{bin_dir}{os.pathsep}{os.environ['PATH']}", calls


def _submit(tmp_path: Path, home: Path, text: str, *args: str, path: str | None = None,
            **extra: str) -> str:
    script = tmp_path / f"wf{len(list(tmp_path.glob('wf*.py')))}.py"
    script.write_text(text)
    env = dict(os.environ, HPCFLOW_HOME=str(home), HPCFLOW_ENGINE_IDLE_EXIT="120",
               **({"PATH": path} if path else {}), **extra)
    done = subprocess.run([sys.executable, "-m", "hpcflow.cli.main", "submit", "-q",
                           str(script), "--", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.timeout(1200)  # 500 jobs through a one-node Grid Engine: minutes on a busy machine
def test_five_hundred_steps_are_one_array_job_and_a_failing_element_retries_alone(
        tmp_path: Path, kind: str) -> None:
    setup = SCHEDULERS[kind]
    home, marks = tmp_path / "home", tmp_path / "marks"
    marks.mkdir()
    (marks / "fail-7").touch()  # element 8 (item 7) fails once
    path, calls = _counting_path(tmp_path, setup["submit"])
    wf_id = _submit(tmp_path, home, FAN.format(kind=kind, executor=setup["executor"],
                                               resources=setup["resources"]),
                    str(marks), "500", path=path)
    try:
        final = wait(home, tmp_path, wf_id, timeout=600)
        assert final["phase"] == "Succeeded", final
        found = steps(home, tmp_path, wf_id)
        assert found["total"]["outputs"]["parameters"]["s"] == 2 * sum(range(500))
        items = {name: s for name, s in found.items() if name.startswith("tiny(")}
        assert len(items) == 500
        elements = {name: re.fullmatch(setup["element"], s["job_id"] or "")
                    for name, s in items.items()}
        retried = items["tiny(7:7)"]
        assert retried["attempt"] == 1  # failed once, then ran again
        # its retry is a job of its own; every other step is an element of ONE array
        assert elements.pop("tiny(7:7)") is None, retried["job_id"]
        arrays = {m.group(1) for m in elements.values() if m}
        assert len(arrays) == 1 and all(elements.values()), sorted(
            s["job_id"] for s in items.values())[:5]
        indices = sorted(int(m.group(2)) for m in elements.values() if m)
        assert indices == [i for i in range(1, 501) if i != 8]
        assert all(s["attempt"] == 0 for n, s in items.items() if n != "tiny(7:7)")
        # sbatch/qsub: the array, the retried element, the total
        assert len(calls.read_text().splitlines()) == 3, calls.read_text()
        # each element has its own log, in its own step directory
        log = run_cli(["logs", wf_id, "tiny(7:7)"], home, tmp_path).stdout
        assert "element 7 fails this time" not in log  # the retry's log: a new attempt
        assert retried["step_dir"].endswith("-1")  # the first attempt's: the same without
        first = Path(retried["step_dir"][:-2]) / "log.txt"
        assert "element 7 fails this time" in first.read_text()
        script = next((home / "runs" / wf_id / "arrays").glob("*-array/job.sh")).read_text()
        assert ("#SBATCH --array=1-500%4" if kind == "slurm" else "#$ -tc 4") in script
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)


def _live_elements(kind: str, array: str) -> set[str]:
    if kind == "slurm":
        out = subprocess.run(["squeue", "--me", "--array", "--noheader", "--format=%i"],
                             capture_output=True, text=True, check=True).stdout
        return {line.strip() for line in out.splitlines() if line.startswith(f"{array}_")}
    out = subprocess.run(["qstat", "-g", "d"], capture_output=True, text=True,
                         check=True).stdout
    return {f"{line.split()[0]}.{line.split()[-1]}" for line in out.splitlines()
            if line.split() and line.split()[0] == array}


def test_terminating_a_workflow_cancels_its_elements(tmp_path: Path, kind: str) -> None:
    setup = SCHEDULERS[kind]
    home, go = tmp_path / "home", tmp_path / "go"
    wf_id = _submit(tmp_path, home, WAITING.format(kind=kind, executor=setup["executor"],
                                                   resources=setup["resources"]), str(go))
    try:
        def ids() -> list[str]:
            return [s["job_id"] for s in steps(home, tmp_path, wf_id).values()
                    if s["type"] == "Pod" and s["job_id"]]

        recorded = wait_until(lambda: len(ids()) == 6 and ids(), "the array's six elements")
        array = re.fullmatch(setup["element"], recorded[0]).group(1)  # type: ignore[union-attr]
        assert _live_elements(kind, array), "the elements are in the queue"
        # the one submission shows in daemon status, against the machine's rate limit
        def sent() -> dict:
            out = run_cli(["daemon", "status", "--json"], home, tmp_path).stdout
            return dict(json.loads(out).get("submissions", {}).get(kind) or {})

        assert wait_until(lambda: sent().get("live") == 6 and sent(), "daemon status") == {
            "last_minute": 1, "per_minute_limit": None, "live": 6}
        text = run_cli(["daemon", "status"], home, tmp_path).stdout
        assert f"submissions to {kind}: 1 in the last minute (no limit), 6 jobs in its queue" \
            in text, text
        assert run_cli(["terminate", wf_id], home, tmp_path).returncode == 0
        wait_until(lambda: not _live_elements(kind, array), "the elements to leave the queue",
                   timeout=120)
        final = wait(home, tmp_path, wf_id)
        assert final["phase"] == "Terminated", final
    finally:
        go.touch()
        run_cli(["daemon", "stop"], home, tmp_path)


def test_sigkill_right_after_an_array_was_submitted_submits_nothing_twice(
        tmp_path: Path, slurm_env: dict) -> None:
    """The ``kill-after-submit`` fault (tests/faults) kills the daemon the moment sbatch
    returns the array's id, before any element's id is recorded: the next daemon finds the
    array by its name and gives each step its element, submitting nothing again."""
    setup = SCHEDULERS["slurm"]
    home, marks = tmp_path / "home", tmp_path / "marks"
    marks.mkdir()
    path, calls = _counting_path(tmp_path, "sbatch")
    wf_id = _submit(tmp_path, home, FAN.format(kind="slurm", executor=setup["executor"],
                                               resources=setup["resources"]),
                    str(marks), "12", path=path, **fault_env("kill-after-submit"))
    try:
        await_fault_kill(home)
        env = dict(os.environ, HPCFLOW_HOME=str(home), PATH=path)
        started = subprocess.run([sys.executable, "-m", "hpcflow.cli.main", "daemon", "start"],
                                 cwd=tmp_path, env=env, capture_output=True, text=True,
                                 timeout=120)
        assert started.returncode == 0, started.stderr
        final = wait(home, tmp_path, wf_id)
        assert final["phase"] == "Succeeded", final
        assert "found in slurm as" in (home / "logs" / "daemon.log").read_text()
        found = steps(home, tmp_path, wf_id)
        elements = sorted(s["job_id"] for n, s in found.items() if n.startswith("tiny("))
        array = elements[0].split("_")[0]
        assert sorted(elements, key=lambda i: int(i.split("_")[1])) == [
            f"{array}_{i}" for i in range(1, 13)]
        # the array once, then the total: nothing submitted twice
        assert len(calls.read_text().splitlines()) == 2, calls.read_text()
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)
