"""The engine's work per step does not grow with the workflow: a real daemon runs a chain
and a fan-out at two sizes, and the SQLite work it does (virtual-machine instructions,
counted through the hook in tests/sqltrace: rows visited, not seconds, so a busy machine
does not change it) per step is about the same at both sizes.

Planning used to re-read every finished sibling each time a step ended, and finding the
executors with Ready steps walked every Pending step each cycle: per-step work grew with
the size: with that code this test measured 21.7 -> 78.4 (chain) and 18.5 -> 38.4
(fan-out) hundred instructions per step; now about 15 -> 14 for both."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli

WORKFLOW = '''
import sys
from hpcflow import Step, Workflow, argo_range
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def plus(x: int) -> {"y": int}:
    return {"y": x + 1}

kind, n = sys.argv[1], int(sys.argv[2])
wf = Workflow(kind)
if kind == "chain":
    prev = None
    for i in range(n):
        prev = Step(f"s{i}", PythonOPTemplate(plus),
                    parameters={"x": prev.outputs.parameters["y"] if prev else 0})
        wf.add(prev)
else:
    wf.add(Step("fan", PythonOPTemplate(plus), parameters={"x": "{{item}}"},
                with_param=argo_range(n)))
wf.submit()
wf.wait()
print(wf.query_status())
'''


def _daemon_work(tmp_path: Path, kind: str, n: int) -> float:
    """Hundreds of SQLite instructions the daemon ran for a workflow of ``n`` steps, per
    step."""
    home, work = tmp_path / f"{kind}-{n}", tmp_path / f"{kind}-{n}.jsonl"
    script = tmp_path / "wf.py"
    script.write_text(WORKFLOW)
    env = dict(os.environ, HPCFLOW_HOME=str(home), HPCFLOW_TEST_SQL_WORK=str(work),
               PYTHONPATH=os.pathsep.join([str(REPO / "tests" / "sqltrace"), str(REPO)]))
    cli = [sys.executable, "-m", "hpcflow.cli.main"]
    assert subprocess.run([*cli, "daemon", "start"], env=env, capture_output=True,
                          timeout=120).returncode == 0
    try:
        done = subprocess.run([*cli, "run", str(script), kind, str(n)], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=900)
        assert done.returncode == 0 and "Succeeded" in done.stdout, done.stdout + done.stderr
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)
    reports = [json.loads(line) for line in work.read_text().splitlines()]
    daemon = [r for r in reports if r["argv"][0].endswith(os.path.join("daemon", "process.py"))]
    assert len(daemon) == 1, reports
    return daemon[0]["steps_100"] / n


@pytest.mark.parametrize(("kind", "small", "large"), [("chain", 30, 240),
                                                       ("fanout", 40, 400)])
def test_per_step_store_work_does_not_grow_with_the_workflow(tmp_path: Path, kind: str,
                                                              small: int, large: int) -> None:
    at_small = _daemon_work(tmp_path, kind, small)
    at_large = _daemon_work(tmp_path, kind, large)
    # the same work per step, give or take the fixed cost of starting spread over fewer
    # steps and the idle cycles of a slow machine
    assert at_large <= 1.3 * at_small, (at_small, at_large)
