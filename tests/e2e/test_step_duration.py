"""A retried step's duration counts its attempts, not the time between them: a step fails,
its workflow sits Failed for ``GAP`` seconds (a user retrying later), is retried and
succeeds; ``steps``/``get`` give a running time that leaves the gap out."""

import json
import time
from pathlib import Path

import pytest

from tests.conftest import run_cli, wait_until

GAP = 10.0
SCRIPT = '''
import sys, time
from pathlib import Path
from hpcflow import Step, Workflow
from hpcflow.python import OP, PythonOPTemplate

MARKS = sys.argv[1]

@OP.function
def flaky(x: int) -> {"y": int}:
    marks = Path(MARKS)
    with open(marks, "a") as f:
        f.write(f"{time.time()}\\n")
    if len(marks.read_text().split()) == 1:
        raise ValueError("first attempt fails")
    return {"y": x}

wf = Workflow("flaky")
wf.add(Step("flaky", PythonOPTemplate(flaky), parameters={"x": 1}))
wf.submit()
print(wf.id)
'''


def _status(home: Path, cwd: Path, wf_id: str) -> str:
    return json.loads(run_cli(["status", wf_id, "--json"], home, cwd).stdout)["phase"]


def test_a_retried_steps_duration_leaves_out_the_gap_between_attempts(tmp_path: Path):
    home, marks = tmp_path / "home", tmp_path / "marks"
    (tmp_path / "wf.py").write_text(SCRIPT)
    wf_id = run_cli(["submit", "-q", "wf.py", str(marks)], home, tmp_path).stdout.strip()
    try:
        wait_until(lambda: _status(home, tmp_path, wf_id) == "Failed", "the first failure")
        time.sleep(GAP)  # the scenario itself: the workflow sits failed for a while
        assert run_cli(["retry", wf_id], home, tmp_path).returncode == 0
        wait_until(lambda: _status(home, tmp_path, wf_id) == "Succeeded", "the retry")
        (step,) = [s for s in json.loads(run_cli(["steps", wf_id, "--json"], home,
                                                 tmp_path).stdout) if s["name"] == "flaky"]
        first_op_start = float(marks.read_text().split()[0])
        span = step["finished_at"] - first_op_start  # at most the step's whole span
        assert step["attempt"] == 1
        # the gap (at least GAP seconds) is left out; whatever the machine's speed, the two
        # attempts' own time is what is left, less than the span the OP saw minus most of it
        assert 0 < step["run_seconds"] < span - GAP / 2, (step["run_seconds"], span)
        assert step["started_at"] > first_op_start + GAP  # the latest attempt's start
        tree = json.loads(run_cli(["get", wf_id, "-o", "json"], home, tmp_path).stdout)
        shown = tree["tree"][0]["children"][0]["run_seconds"]
        assert shown == pytest.approx(step["run_seconds"], abs=0.01)
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)
