"""Final states from Slurm's accounting (slurmdbd + MariaDB of tests/services), on the real
one-node Slurm: a job that ended while the daemon was stopped, and that ``squeue`` has
forgotten since (``MinJobAge=10``), gets its final state from ``sacct`` when the daemon comes
back: who cancelled it, or that Slurm killed it for its time limit."""

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_cli, wait_until
from tests.integration.flows import steps, submit, wait

SLOW = '''
from hpcflow import Step, Workflow, SlurmExecutor
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def slow(x: int) -> {"y": int}:
    import time
    time.sleep(600)
    return {"y": x}

wf = Workflow("accounted")
wf.add(Step("slow", PythonOPTemplate(slow), parameters={"x": 1},
            executor=SlurmExecutor(partition="debug"RESOURCES)))
wf.submit()
'''


def _squeue_state(job_id: str) -> str:
    """What ``squeue`` still knows of the job ('' once it has forgotten it)."""
    done = subprocess.run(["squeue", "--noheader", "--states=all", f"--jobs={job_id}",
                           "--format=%T"], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else ""


def _sacct_state(job_id: str) -> str:
    done = subprocess.run(["sacct", "--noheader", "--parsable2", "--allocations",
                           f"--jobs={job_id}", "--format=state"],
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _running_job(home: Path, cwd: Path, wf_id: str) -> str:
    """The Slurm job id of the workflow's ``slow`` step once its job runs."""
    def running() -> str | None:
        job_id = steps(home, cwd, wf_id).get("slow", {}).get("job_id")
        return job_id if job_id and _squeue_state(job_id) == "RUNNING" else None
    return wait_until(running, f"the job of {wf_id} to run")


def _ends_unseen(home: Path, cwd: Path, wf_id: str, end, final: str) -> str:
    """Stop the daemon while the step's job runs, end the job with ``end(job_id)``, wait
    until squeue has forgotten the job and sacct has its final state, start the daemon
    again, and return the step's reason once the workflow has ended."""
    job_id = _running_job(home, cwd, wf_id)
    assert run_cli(["daemon", "stop"], home, cwd).returncode == 0
    end(job_id)
    wait_until(lambda: _sacct_state(job_id).startswith(final) and not _squeue_state(job_id),
               f"job {job_id} to leave squeue with {final} in sacct", timeout=240)
    started = run_cli(["daemon", "start"], home, cwd)
    assert started.returncode == 0, started.stderr
    data = wait(home, cwd, wf_id)
    assert data["phase"] == "Failed", data
    return steps(home, cwd, wf_id)["slow"]["reason"] or ""


def test_a_job_cancelled_while_the_daemon_was_away_says_who(tmp_path: Path,
                                                             slurm_accounting_env: dict):
    """Cancelled outside hpcflow: sacct says by whom (``CANCELLED by 0``: root, who runs the
    tests), the completion log does not."""
    home = tmp_path / "home"
    wf_id = submit(tmp_path, home, SLOW.replace("RESOURCES", ""))
    try:
        reason = _ends_unseen(home, tmp_path, wf_id,
                              lambda job_id: subprocess.run(["scancel", job_id], check=True),
                              "CANCELLED by 0")
        assert "cancelled outside hpcflow by uid 0" in reason, reason
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)


@pytest.mark.timeout(600)
def test_a_job_killed_for_its_time_limit_while_the_daemon_was_away(
        tmp_path: Path, slurm_accounting_env: dict):
    """Slurm's limits are whole minutes: the job is killed 60-70 s after it starts, and
    leaves squeue 10 s later."""
    home = tmp_path / "home"
    wf_id = submit(tmp_path, home, SLOW.replace("RESOURCES", ', time="1"'))
    try:
        reason = _ends_unseen(home, tmp_path, wf_id, lambda job_id: None, "TIMEOUT")
        assert "time limit (Slurm TIMEOUT)" in reason, reason
        status = json.loads(run_cli(["status", wf_id, "--json"], home, tmp_path).stdout)
        assert status["phase"] == "Failed"
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)
