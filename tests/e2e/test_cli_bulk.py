"""Bulk and fine control through the real CLI: ``terminate``, ``suspend``, ``resume``,
``retry``, ``resubmit`` and ``delete`` take several workflows and selectors (``--label``,
``--phase``, ``--older-than``); a Terminated workflow can be retried; ``delete`` removes
records, step directories and stored OPs, refusing live workflows unless ``--force``; phase
filters ignore case, and an unknown phase or a ``--limit`` below 1 is a one-line error."""

import json
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import run_cli, wait_until
from tests.e2e.scripts import WAIT_FOR_GO

SCRIPT = WAIT_FOR_GO + '''
wf = Workflow(sys.argv[1])
wf.add(Step("wait", PythonOPTemplate(wait_for), parameters={"go": sys.argv[2]}))
wf.submit()
print(wf.id)
'''


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    home = tmp_path / "home"
    # steps that wait hold their slots: room for every workflow of a test at once
    monkeypatch.setenv("HPCFLOW_LOCAL_PARALLELISM", "8")
    (tmp_path / "wf.py").write_text(SCRIPT)
    yield home
    run_cli(["daemon", "stop"], home, tmp_path)


def _submit(home: Path, cwd: Path, name: str, go: Path, label: str) -> str:
    done = run_cli(["submit", "-q", "wf.py", "--label", label, "--", name, str(go)], home, cwd)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _phase(home: Path, cwd: Path, wf_id: str) -> str:
    data = json.loads(run_cli(["status", wf_id, "--json"], home, cwd).stdout)
    return data["phase"] + (" suspended" if data["suspended"] else "")


def test_selectors_terminate_suspend_resume_retry_and_resubmit(home, tmp_path):
    go, never = tmp_path / "go", tmp_path / "never"
    done_go = tmp_path / "done"
    done_go.touch()
    a1 = _submit(home, tmp_path, "a1", never, "campaign=a")
    a2 = _submit(home, tmp_path, "a2", never, "campaign=a")
    a3 = _submit(home, tmp_path, "a3", done_go, "campaign=a")
    b1 = _submit(home, tmp_path, "b1", go, "campaign=b")
    wait_until(lambda: _phase(home, tmp_path, a3) == "Succeeded", "a3 to succeed")

    nothing = run_cli(["terminate"], home, tmp_path)
    assert nothing.returncode == 1 and nothing.stderr == (
        "hpcflow: 'hpcflow terminate' needs WORKFLOW ids or a selector: --label KEY=VALUE, "
        "--phase PHASE, --older-than AGE\n")
    stopped = run_cli(["terminate", "--label", "campaign=a"], home, tmp_path)
    assert stopped.returncode == 0, stopped.stderr
    assert sorted(stopped.stdout.splitlines()) == sorted(
        [f"terminate requested for {a1}", f"terminate requested for {a2}"])
    assert "1 matched workflow skipped (nothing to terminate)" in stopped.stderr
    wait_until(lambda: {_phase(home, tmp_path, w) for w in (a1, a2)} == {"Terminated"},
               "a1 and a2 to be terminated")
    assert _phase(home, tmp_path, b1) == "Running"

    assert run_cli(["suspend", b1, a3], home, tmp_path).returncode == 1  # a3 has ended
    wait_until(lambda: _phase(home, tmp_path, b1) == "Running suspended", "b1 suspended")
    assert run_cli(["resume", "--label", "campaign=b"], home, tmp_path).returncode == 0
    wait_until(lambda: _phase(home, tmp_path, b1) == "Running", "b1 resumed")

    # a Terminated workflow runs again: its cancelled step with it
    again = run_cli(["retry", "--phase", "terminated", "--label", "campaign=a"], home,
                    tmp_path)
    assert again.returncode == 0, again.stderr
    assert len(again.stdout.splitlines()) == 2
    wait_until(lambda: {_phase(home, tmp_path, w) for w in (a1, a2)} == {"Running"},
               "a1 and a2 running again")
    never.touch()
    go.touch()
    wait_until(lambda: {_phase(home, tmp_path, w) for w in (a1, a2, b1)} == {"Succeeded"},
               "every workflow to succeed")
    steps = json.loads(run_cli(["steps", a1, "--json"], home, tmp_path).stdout)
    assert [s["attempt"] for s in steps if s["name"] == "wait"] == [1]  # the second attempt

    fresh = run_cli(["resubmit", "--label", "campaign=a", "--phase", "SUCCEEDED"], home,
                    tmp_path)
    assert fresh.returncode == 0, fresh.stderr
    assert len(fresh.stdout.split()) == 3 and not set(fresh.stdout.split()) & {a1, a2, a3}


def test_phase_filters_ignore_case_and_unknown_ones_are_errors(home, tmp_path):
    done_go = tmp_path / "done"
    done_go.touch()
    wf_id = _submit(home, tmp_path, "quick", done_go, "k=v")
    wait_until(lambda: _phase(home, tmp_path, wf_id) == "Succeeded", "the workflow to end")
    assert wf_id in run_cli(["list", "--phase", "succeeded"], home, tmp_path).stdout
    assert "wait" in run_cli(["steps", wf_id, "--phase", "SUCCEEDED"], home, tmp_path).stdout
    for args in (["list", "--phase", "Done"], ["steps", wf_id, "--phase", "Done"],
                 ["terminate", "--phase", "Done"], ["list", "--limit", "0"]):
        bad = run_cli(args, home, tmp_path)
        assert bad.returncode == 2 and "Traceback" not in bad.stderr, (args, bad.stderr)
        assert "Invalid value for '--phase'" in bad.stderr or \
            "Invalid value for '--limit': 0 is not in the range x>=1" in bad.stderr
    assert "unknown phase 'Done': use one of Pending, Running, Succeeded, Failed, Error, " \
           "Terminated" in run_cli(["list", "--phase", "Done"], home, tmp_path).stderr


def test_delete_removes_records_files_and_stored_ops_but_refuses_live_ones(home, tmp_path):
    go, done_go = tmp_path / "go", tmp_path / "done"
    done_go.touch()
    finished = _submit(home, tmp_path, "finished", done_go, "batch=1")
    live = _submit(home, tmp_path, "live", go, "batch=1")
    wait_until(lambda: _phase(home, tmp_path, finished) == "Succeeded", "one to finish")
    wait_until(lambda: _phase(home, tmp_path, live) == "Running", "the other to run")
    assert (home / "runs" / finished).is_dir()

    refused = run_cli(["delete", "--label", "batch=1"], home, tmp_path)
    assert refused.returncode == 1 and refused.stderr == (
        f"hpcflow: {live} is live: 'hpcflow terminate' first, or delete --force (which "
        "does)\n")
    assert _phase(home, tmp_path, finished) == "Succeeded"  # nothing deleted
    dry = run_cli(["delete", finished, "--dry-run"], home, tmp_path)
    assert dry.stdout.splitlines() == [f"would delete {finished} (Succeeded)",
                                       "1 workflow would be deleted"]
    gone = run_cli(["delete", finished], home, tmp_path)
    assert gone.returncode == 0 and gone.stdout == f"deleted {finished} (Succeeded)\n"
    assert not (home / "runs" / finished).exists()
    missing = run_cli(["status", finished], home, tmp_path)
    assert missing.returncode == 1 and "no workflow" in missing.stderr

    forced = run_cli(["delete", "--force", live], home, tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout == f"deleted {live} (Terminated)\n"
    assert json.loads(run_cli(["list", "--json"], home, tmp_path).stdout) == []
    with sqlite3.connect(home / "store.db") as conn:
        counts = [conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                  for t in ("steps", "jobs", "events", "blobs")]
    assert counts == [0, 0, 0, 0], counts  # the OP went with the last workflow using it


RETRY_SCRIPT = '''
import sys
from pathlib import Path
from hpcflow import Step, Workflow, argo_range
from hpcflow.python import OP, PythonOPTemplate

FIXED = sys.argv[1]

@OP.function
def odd_fails(x: int) -> {"y": int}:
    if x % 2 and not Path(FIXED).exists():
        raise ValueError(f"odd {x}")
    return {"y": x}

@OP.function
def fine() -> {"y": int}:
    return {"y": 0}

wf = Workflow("partly")
wf.add([Step("first", PythonOPTemplate(fine)),
        Step("fan", PythonOPTemplate(odd_fails), parameters={"x": "{{item}}"},
             with_param=argo_range(4))])
wf.submit()
print(wf.id)
'''


def test_retry_chosen_steps_by_name(home, tmp_path):
    fixed = tmp_path / "fixed"
    (tmp_path / "retry.py").write_text(RETRY_SCRIPT)
    wf_id = run_cli(["submit", "-q", "retry.py", str(fixed)], home, tmp_path).stdout.strip()
    wait_until(lambda: _phase(home, tmp_path, wf_id) == "Failed", "the loop to fail")
    ok = run_cli(["retry", wf_id, "--step", "first"], home, tmp_path)
    assert ok.returncode == 1 and ok.stderr == (
        f"hpcflow: step 'first' of {wf_id} has no failed step to run again (Succeeded); "
        "--restart-successful runs succeeded steps again\n")
    nope = run_cli(["retry", wf_id, "--step", "nope"], home, tmp_path)
    assert nope.returncode == 1 and "has no step 'nope'" in nope.stderr
    fixed.touch()
    again = run_cli(["retry", wf_id, "--step", "fan"], home, tmp_path)
    assert again.returncode == 0 and again.stdout == f"retry of 2 steps requested for {wf_id}\n"
    wait_until(lambda: _phase(home, tmp_path, wf_id) == "Succeeded", "the retried items")
    steps = {s["name"]: s for s in json.loads(run_cli(["steps", wf_id, "--json"], home,
                                                      tmp_path).stdout)}
    assert [steps[f"fan({i}:{i})"]["attempt"] for i in range(4)] == [0, 1, 0, 1]
    assert steps["first"]["attempt"] == 0
