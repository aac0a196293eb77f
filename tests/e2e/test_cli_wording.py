"""Small wording defects, through the real CLI: counts in the singular when they are 1,
``gc --dry-run --json`` with null counts (nothing was counted), an option error that names
only what was given, no traceback hint when the traceback is already shown, and no
"(suspended)" on a workflow that has ended."""

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import run_cli, wait_until
from tests.e2e.scripts import WAIT_FOR_GO, workflow_phase

SCRIPT = WAIT_FOR_GO + '''
wf = Workflow("words")
wf.add(Step("wait", PythonOPTemplate(wait_for), parameters={"go": sys.argv[1]}))
wf.submit()
print(wf.id)
if len(sys.argv) > 2:
    raise RuntimeError("late")
'''


def test_wording(tmp_path: Path):
    home, go = tmp_path / "home", tmp_path / "go"
    (tmp_path / "wf.py").write_text(SCRIPT)
    wf_id = run_cli(["submit", "-q", "wf.py", str(go)], home, tmp_path).stdout.strip()
    try:
        watch = run_cli(["status", wf_id, "--watch", "--json"], home, tmp_path)
        assert watch.stderr == ("hpcflow: --watch follows one workflow and prints text: drop "
                                "--json\n")
        watch = run_cli(["status", "--watch"], home, tmp_path)
        assert watch.stderr == ("hpcflow: --watch follows one workflow and prints text: give "
                                "WORKFLOW\n")

        assert run_cli(["suspend", wf_id], home, tmp_path).returncode == 0
        wait_until(lambda: json.loads(run_cli(["status", wf_id, "--json"], home,
                                              tmp_path).stdout)["suspended"], "suspended")
        assert run_cli(["terminate", wf_id], home, tmp_path).returncode == 0
        wait_until(lambda: workflow_phase(home, tmp_path, wf_id) == "Terminated", "terminated")
        line = run_cli(["status", wf_id], home, tmp_path).stdout.splitlines()[0]
        assert line.startswith(f"{wf_id}  Terminated  ") and "suspended" not in line
        assert "Phase:    Terminated\n" in run_cli(["get", wf_id], home, tmp_path).stdout

        dry = run_cli(["gc", "--older-than", "0s", "--dry-run"], home, tmp_path)
        assert dry.stdout.splitlines() == [f"would prune {wf_id} (Terminated)",
                                           "1 workflow would be pruned"]
        data = json.loads(run_cli(["gc", "--older-than", "0s", "--dry-run", "--json"], home,
                                  tmp_path).stdout)
        assert data["workflows"][0]["files"] is None and data["workflows"][0]["artifacts"] \
            is None
        done = run_cli(["gc", "--older-than", "0s"], home, tmp_path).stdout.splitlines()
        assert done[-1] == "1 workflow pruned"

        hinted = run_cli(["submit", "wf.py", str(go), "boom"], home, tmp_path)
        assert "(set HPCFLOW_TRACEBACK=1 for the traceback)" in hinted.stderr
        env = dict(os.environ, HPCFLOW_TRACEBACK="1")
        shown = subprocess.run([sys.executable, "-m", "hpcflow.cli.main", "submit", "wf.py",
                                str(go), "boom"], cwd=tmp_path, capture_output=True, text=True,
                               env={**env, "HPCFLOW_HOME": str(home)}, timeout=240)
        assert "Traceback (most recent call last)" in shown.stderr
        assert "HPCFLOW_TRACEBACK=1 for" not in shown.stderr
        go.touch()
    finally:
        go.touch()
        run_cli(["daemon", "stop"], home, tmp_path)
    ticked = run_cli(["daemon", "tick"], tmp_path / "empty", tmp_path)
    assert ticked.stdout.strip() == "hpcflow: tick done (0 passes that changed something)"


FAILING = '''
from hpcflow import Step, Workflow
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def bad(x: int) -> {"y": int}:
    raise ValueError("nope")

wf = Workflow("failing")
wf.add(Step("bad", PythonOPTemplate(bad), parameters={"x": 1}))
wf.submit()
print(wf.id)
'''


def test_a_failing_ops_traceback_names_its_file_not_dynamic_code(tmp_path: Path):
    home = tmp_path / "home"
    script = tmp_path / "failing.py"
    script.write_text(FAILING)
    wf_id = run_cli(["submit", "-q", "failing.py"], home, tmp_path).stdout.strip()
    try:
        wait_until(lambda: workflow_phase(home, tmp_path, wf_id) == "Failed", "the step to fail")
        log = run_cli(["logs", wf_id, "bad"], home, tmp_path).stdout
        assert f'File "{script}", line 7, in bad\n    raise ValueError("nope")' in log, log
        assert "<dynamic-code>" not in log
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)
