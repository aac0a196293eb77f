"""Slurm at scale and at its limits, on the real one-node Slurm of tests/services:
500 live jobs cost one ``squeue`` per poll (counted through a wrapper on the daemon's PATH),
and a job Slurm kills for its time limit fails its step with that reason."""

import json
import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import fault_env, run_cli, wait_progressing
from tests.integration.flows import await_fault_kill, wait

HELD = '''
from hpcflow import Step, Workflow, SlurmExecutor, argo_range
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def never(x: int) -> {"y": int}:
    return {"y": x}

wf = Workflow("held-500")
wf.add(Step("held", PythonOPTemplate(never), parameters={"x": "{{item}}"},
            with_param=argo_range(500),
            executor=SlurmExecutor(partition="debug", extra_directives=["--hold"])))
wf.submit()
'''

SLOW = '''
from hpcflow import Step, Workflow, SlurmExecutor
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def slow(x: int) -> {"y": int}:
    import time
    time.sleep(600)
    return {"y": x}

wf = Workflow("too-slow")
wf.add(Step("slow", PythonOPTemplate(slow), parameters={"x": 1},
            executor=SlurmExecutor(partition="debug", time="1")))
wf.submit()
'''


def _wrapper_dir(tmp_path: Path) -> tuple[Path, Path]:
    """A ``squeue`` on PATH that logs each call, then runs the real one."""
    real = subprocess.run(["which", "squeue"], capture_output=True, text=True,
                          check=True).stdout.strip()
    calls = tmp_path / "squeue-calls.txt"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "squeue"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> {calls}\nexec {real} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    return bin_dir, calls


def _env(home: Path, **extra: str) -> dict:
    return dict(os.environ, HPCFLOW_HOME=str(home), **extra)


def test_five_hundred_live_jobs_one_squeue_per_poll(tmp_path: Path, slurm_env: dict):
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    (home / "config.toml").write_text("[daemon]\nlog_level = 'debug'\n"
                                      "[machines.slurm]\nscheduler = 'slurm'\n"
                                      "min_poll_interval = 0.5\nmax_poll_interval = 1\n")
    bin_dir, calls = _wrapper_dir(tmp_path)
    env = _env(home, PATH=f"{bin_dir}:{os.environ['PATH']}")
    cli = [sys.executable, "-m", "hpcflow.cli.main"]
    assert subprocess.run([*cli, "daemon", "start"], env=env, capture_output=True).returncode == 0
    script = tmp_path / "held.py"
    script.write_text(HELD)
    wf_id = subprocess.run([*cli, "submit", str(script)], env=env, capture_output=True,
                           text=True, check=True).stdout.strip()
    try:
        # wait for all 500 to be submitted (held: they stay in the queue, and their steps
        # Pending), as long as the submissions go on
        def queued() -> int:
            out = subprocess.run(["squeue", "--me", "-h", "-o", "%j"], capture_output=True,
                                 text=True).stdout
            return sum(1 for line in out.splitlines() if f"hpcflow-{wf_id}-" in line)

        wait_progressing(queued, lambda n: n == 500, what="500 submissions", interval=1)
        log = home / "logs" / "daemon.log"

        def polls() -> int:
            return log.read_text().count("polled slurm: 500 live jobs")

        polls_before = polls()
        calls_before = len(calls.read_text().splitlines())
        # three polls, however long a busy machine takes for them (no budget in seconds)
        wait_progressing(lambda: polls() - polls_before, lambda n: n >= 3,
                         what="three polls of the 500 jobs")
        polled = polls() - polls_before
        squeues = len(calls.read_text().splitlines()) - calls_before
        assert squeues == polled, (squeues, polled)  # one squeue for all 500 jobs, per poll
        mine = subprocess.run(["squeue", "--me", "-h", "-o", "%j"], capture_output=True,
                              text=True).stdout
        assert sum(1 for line in mine.splitlines() if f"hpcflow-{wf_id}-" in line) == 500
    finally:
        run_cli(["terminate", wf_id], home, tmp_path)
        deadline = time.time() + 60
        while time.time() < deadline:  # terminate cancels the 500 jobs (scancel)
            mine = subprocess.run(["squeue", "--me", "-h", "-t", "PD,R", "-o", "%j"],
                                  capture_output=True, text=True).stdout
            if f"hpcflow-{wf_id}-" not in mine:
                break
            time.sleep(1)
        subprocess.run([*cli, "daemon", "stop"], env=env, capture_output=True)
    assert f"hpcflow-{wf_id}-" not in mine


def test_a_job_killed_for_its_time_limit(tmp_path: Path, slurm_env: dict):
    """Slurm's limits are whole minutes: the job is killed about 60-70 s after it starts."""
    home = tmp_path / "home"
    script = tmp_path / "slow.py"
    script.write_text(SLOW)
    done = run_cli(["submit", str(script)], home, tmp_path)
    assert done.returncode == 0, done.stderr
    wf_id = done.stdout.strip()
    try:
        data = wait(home, tmp_path, wf_id, timeout=200)
        assert data["phase"] == "Failed"
        step = next(s for s in json.loads(run_cli(["steps", wf_id, "--json"], home,
                                                  tmp_path).stdout) if s["name"] == "slow")
        assert "time limit (Slurm TIMEOUT)" in step["reason"], step
        assert "DUE TO TIME LIMIT" in (step["log_tail"] or "")  # slurmstepd's own line
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)


PACKED = '''
from hpcflow import Step, Workflow, SlurmExecutor, argo_range
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def tiny(x: int) -> {"y": int}:
    return {"y": 2 * x}

@OP.function
def total(ys: list) -> {"s": int}:
    return {"s": sum(ys)}

wf = Workflow("packed")
fan = Step("tiny", PythonOPTemplate(tiny), parameters={"x": "{{item}}"},
           with_param=argo_range(NITEMS),
           executor=SlurmExecutor(partition="debug", time="0:10:00", group_size=GROUP))
wf.add(fan)
wf.add(Step("total", PythonOPTemplate(total), parameters={"ys": fan.outputs.parameters["y"]}))
wf.submit()
'''


def _packed_jobs(jobcomp: str, wf_id: str, expected: int) -> list[str]:
    """The pack jobs in Slurm's completion log, once it holds ``expected`` (waited for while
    jobs keep being logged)."""
    def names() -> list[str]:
        return re.findall(rf" Name=(hpcflow-{wf_id}-\d+-\d+-pack) ", Path(jobcomp).read_text())

    return wait_progressing(names, lambda found: len(found) >= expected, len, stall=60,
                            what=f"the completion log's pack jobs of {wf_id}")


def test_a_thousand_tiny_steps_in_ten_jobs(tmp_path: Path, slurm_env: dict):
    home = tmp_path / "home"
    script = tmp_path / "packed.py"
    script.write_text(PACKED.replace("NITEMS", "1000").replace("GROUP", "100"))
    done = run_cli(["submit", str(script)], home, tmp_path)
    assert done.returncode == 0, done.stderr
    wf_id = done.stdout.strip()
    try:
        data = wait(home, tmp_path, wf_id, timeout=400)
        assert data["phase"] == "Succeeded", data
        assert data["steps"] == {"Succeeded": 1001}
        steps = json.loads(run_cli(["steps", wf_id, "--json"], home, tmp_path).stdout)
        total = next(s for s in steps if s["name"] == "total")
        assert total["outputs"]["parameters"]["s"] == 2 * sum(range(1000))
        names = _packed_jobs(slurm_env["HPCFLOW_TEST_SLURM_JOBCOMP"], wf_id, 10)
        assert len(names) == 10 and len(set(names)) == 10, names  # 10 jobs, none twice
        text = Path(slurm_env["HPCFLOW_TEST_SLURM_JOBCOMP"]).read_text()
        singles = re.findall(rf" Name=hpcflow-{wf_id}-\d+-\d+ ", text)
        assert singles == []  # no step had a job of its own
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)


def test_sigkill_right_after_a_pack_was_submitted(tmp_path: Path, slurm_env: dict):
    home = tmp_path / "home"
    script = tmp_path / "packed.py"
    script.write_text(PACKED.replace("NITEMS", "30").replace("GROUP", "10"))
    cli = [sys.executable, "-m", "hpcflow.cli.main"]
    done = subprocess.run([*cli, "submit", str(script)], cwd=tmp_path, capture_output=True,
                          text=True, env=_env(home, **fault_env("kill-after-submit")))
    assert done.returncode == 0, done.stderr
    wf_id = done.stdout.strip()
    try:
        await_fault_kill(home)
        log = home / "logs" / "daemon.log"
        assert run_cli(["daemon", "start"], home, tmp_path).returncode == 0
        data = wait(home, tmp_path, wf_id, timeout=200)
        assert data["phase"] == "Succeeded", data
        assert "found in slurm as" in log.read_text()
        names = _packed_jobs(slurm_env["HPCFLOW_TEST_SLURM_JOBCOMP"], wf_id, 3)
        assert len(names) == 3 and len(set(names)) == 3, names
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)
