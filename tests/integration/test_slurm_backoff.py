"""Polls back off while Slurm's controller is slow, on the real one-node Slurm: ``sbatch`` and
the job are real, but the daemon's ``squeue`` is a **stand-in** on its PATH that hangs while a
flag file exists (a controller under load cannot be made to order) and runs the real
``squeue`` otherwise. A hung ``squeue`` is killed at the machine's ``scheduler_timeout`` and
counted as slowness, not a failure: the machine's polls back off, ``hpcflow daemon status``
(text and ``--json``) says so, and once ``squeue`` answers quickly again the back-off shrinks
away and the workflow succeeds."""

import json
import os
import shutil
from pathlib import Path

from tests.conftest import run_cli, wait_until
from tests.integration.flows import submit, wait

WORK = '''
from hpcflow import Step, Workflow, SlurmExecutor
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def work(x: int) -> {"y": int}:
    import time
    time.sleep(60)
    return {"y": x + 1}

wf = Workflow("slow-controller")
wf.add(Step("work", PythonOPTemplate(work), parameters={"x": 1},
            executor=SlurmExecutor(partition="debug")))
wf.submit()
'''


def _status(home: Path, cwd: Path) -> dict:
    return json.loads(run_cli(["daemon", "status", "--json"], home, cwd).stdout)


def test_polls_back_off_while_squeue_hangs_and_recover(tmp_path: Path, slurm_env: dict):
    real = shutil.which("squeue")
    assert real
    flag = tmp_path / "controller-busy"
    flag.touch()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    standin = bin_dir / "squeue"
    standin.write_text(f'#!/bin/sh\n[ -e {flag} ] && exec sleep 30\nexec {real} "$@"\n')
    standin.chmod(0o755)
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text("[machines.slurm]\nscheduler = 'slurm'\n"
                                      "min_poll_interval = 1\nmax_poll_interval = 5\n"
                                      "scheduler_timeout = 2\n")
    wf_id = submit(tmp_path, home, WORK,
                   env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})
    try:
        slow = wait_until(lambda: _status(home, tmp_path)["poll_backoff"].get("slurm"),
                          "the daemon to back off polling the hung squeue", timeout=120)
        assert slow["timed_out"] and slow["backoff"] >= 4, slow  # twice the 2 s timeout
        text = run_cli(["daemon", "status"], home, tmp_path).stdout
        assert "polls of slurm back off" in text and "killed at its timeout" in text, text
        status = json.loads(run_cli(["status", wf_id, "--json"], home, tmp_path).stdout)
        assert status["phase"] == "Running", status  # slowness fails nothing
        flag.unlink()  # the controller answers again: the back-off shrinks away
        wait_until(lambda: not _status(home, tmp_path)["poll_backoff"],
                   "the back-off to go once squeue answers quickly", timeout=120)
        data = wait(home, tmp_path, wf_id)
        assert data["phase"] == "Succeeded", data
        log = (home / "logs" / "daemon.log").read_text()
        assert "slurm's scheduler is slow" in log and "answers quickly again" in log
    finally:
        flag.unlink(missing_ok=True)
        run_cli(["daemon", "stop"], home, tmp_path)
