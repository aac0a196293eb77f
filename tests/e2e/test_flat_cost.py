"""The engine's work per step does not grow with the workflow: a real daemon runs a chain
and a fan-out at sizes 1, 40 and 400, and the SQLite work it does (virtual-machine
instructions) and the function calls its main thread makes, both counted through the hook in
tests/sqltrace (what was done, not how long it took, so a busy machine does not change it),
are about the same per step at 40 and 400 (beyond the one-step workflow's).

Measured against the code before this work: planning re-read every finished sibling each
time a step ended and finding the executors with Ready steps walked every Pending step, so
the SQL work per step grew 3.6x (chain, 30 -> 240) and 2.1x (fan-out, 40 -> 400); then the
parallelism limit of a chain's template was worked out again each cycle from its every
step: 1650 -> 2370 calls per step (chain, 40 -> 400). Now both stay within a few percent.
"""

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


def _daemon_work(tmp_path: Path, kind: str, n: int) -> tuple[float, float]:
    """Hundreds of SQLite instructions the daemon ran for a workflow of ``n`` steps, and the
    function calls its main thread made, per step."""
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
    return daemon[0]["steps_100"] / n, daemon[0]["calls"] / n


@pytest.mark.parametrize(("kind", "small", "large"), [("chain", 40, 400),
                                                       ("fanout", 40, 400)])
def test_per_step_work_does_not_grow_with_the_workflow(tmp_path: Path, kind: str,
                                                       small: int, large: int) -> None:
    """Per step beyond a one-step workflow of the same shape (the daemon's start, imports
    and first cycles are the same for all sizes)."""
    base_sql, base_calls = _daemon_work(tmp_path, kind, 1)
    (sql_small, calls_small), (sql_large, calls_large) = (
        _daemon_work(tmp_path, kind, small), _daemon_work(tmp_path, kind, large))

    def per_step(total: float, base: float, n: int) -> float:
        return (total * n - base) / (n - 1)

    sql = per_step(sql_small, base_sql, small), per_step(sql_large, base_sql, large)
    calls = per_step(calls_small, base_calls, small), per_step(calls_large, base_calls, large)
    # the same work per step, give or take the idle cycles of a slow machine
    assert sql[1] <= 1.2 * sql[0], sql
    assert calls[1] <= 1.2 * calls[0], calls
