"""Slurm at scale and at its limits, on the real one-node Slurm of tests/services:
500 live jobs cost one ``squeue`` per poll (counted through a wrapper on the daemon's PATH),
jobs finishing within seconds never make ``squeue`` run more than once per
``min_poll_interval``, and a job Slurm kills for its time limit fails its step with that
reason."""

import itertools
import json
import os
import re
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

from hpcflow.connectors.schedulers.slurm import SlurmScheduler
from tests.conftest import fault_env, run_cli, wait_progressing, wait_until
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
    """A ``squeue`` on PATH that logs each call (``SECONDS ARGS``, one line written at once,
    before the real one runs), then runs the real one."""
    real = subprocess.run(["which", "squeue"], capture_output=True, text=True,
                          check=True).stdout.strip()
    calls = tmp_path / "squeue-calls.txt"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "squeue"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s %s\\n" "$(date +%s.%N)" "$*" >> {calls}\n'
                       f'exec {real} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    return bin_dir, calls


#: The daemon's poll of a Slurm machine as the wrapper logs it (not the by-name look-up of a
#: job after a crash, ``find_argv``, which also says ``--states=all``).
POLL_ARGS = " ".join(SlurmScheduler().poll_argv([])[1:])


def _poll_times(calls: Path) -> list[float]:
    """When the daemon polled Slurm, as the wrapper logged it."""
    text = calls.read_text() if calls.exists() else ""
    return [float(line.split(" ", 1)[0]) for line in text.splitlines()
            if line.split(" ", 1)[1:] == [POLL_ARGS]]


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
        # four polls, however long a busy machine takes for them (no budget in seconds)
        wait_progressing(lambda: polls() - polls_before, lambda n: n >= 4,
                         what="four polls of the 500 jobs")
        polled = polls() - polls_before
        squeues = len(calls.read_text().splitlines()) - calls_before
        # One squeue for all 500 jobs, per poll. The wrapper records a call before the poll's
        # line reaches the log, so at each edge of the window one squeue may be in flight
        # (counted on one side, not the other): one either way, never two squeues per poll.
        assert polled - 1 <= squeues <= polled + 1, (squeues, polled)
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


# 100 jobs: 99 end as soon as their runner starts, the last waits until the test opens its gate.
QUICK = '''
from hpcflow import Step, Workflow, SlurmExecutor, argo_range
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def quick(x: int, gate: str) -> {"y": int}:
    if x == 99:
        import os, time
        deadline = time.time() + 900
        while not os.path.exists(gate) and time.time() < deadline:
            time.sleep(0.1)
    return {"y": x}

wf = Workflow("quick-100")
wf.add(Step("quick", PythonOPTemplate(quick), parameters={"x": "{{item}}", "gate": "GATE"},
            with_param=argo_range(100), executor=SlurmExecutor(partition="debug")))
wf.submit()
'''


def _quick_progress(home: Path, cwd: Path, wf_id: str) -> tuple[int, int]:
    """(steps whose runner left its result, steps the daemon saw succeed): the first moves
    on while the jobs run, whether or not the daemon polls meanwhile."""
    results = len(list((home / "runs" / wf_id).glob("*/result.json")))
    done = run_cli(["steps", wf_id, "--json", "--phase", "Succeeded"], home, cwd)
    return results, sum(1 for s in json.loads(done.stdout or "[]") if s["type"] == "Pod")


def test_finishing_jobs_never_make_squeue_run_more_than_once_per_interval(
        tmp_path: Path, slurm_env: dict):
    """100 jobs finishing within seconds: each runner's finished marker wakes the daemon,
    yet squeue runs at most once per min_poll_interval (no polling storm).

    However fast or busy the machine, the daemon polls at least twice: once to see the 99
    quick jobs end (the test waits for that), then again after the test lets the last job
    end. The gaps between polls are measured from the wrapper's time stamps, which a busy
    machine can only widen: a poll is stamped before the real squeue runs, and the next one
    is due ``min_poll_interval`` after that poll returned."""
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    interval = 1.0
    (home / "config.toml").write_text("[machines.slurm]\nscheduler = 'slurm'\n"
                                      f"min_poll_interval = {interval}\n"
                                      "max_poll_interval = 5\n")
    bin_dir, calls = _wrapper_dir(tmp_path)
    env = _env(home, PATH=f"{bin_dir}:{os.environ['PATH']}")
    cli = [sys.executable, "-m", "hpcflow.cli.main"]
    gate = tmp_path / "gate"
    script = tmp_path / "quick.py"
    script.write_text(QUICK.replace("GATE", str(gate)))
    # the daemon is started here, by the submission, with the wrapper first on its PATH
    wf_id = subprocess.run([*cli, "submit", str(script)], env=env, capture_output=True,
                           text=True, check=True).stdout.strip()
    try:
        wait_progressing(lambda: _quick_progress(home, tmp_path, wf_id),
                         lambda progress: progress[1] >= 99,
                         what=f"the 99 quick steps of {wf_id}")
        assert _poll_times(calls), f"the daemon's polls did not go through {bin_dir}/squeue"
        gate.touch()
        assert wait(home, tmp_path, wf_id, timeout=300)["phase"] == "Succeeded"
    finally:
        gate.touch()
        subprocess.run([*cli, "daemon", "stop"], env=env, capture_output=True)
    stamps = _poll_times(calls)
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert len(stamps) >= 2, stamps  # the poll that saw the 99, and one after the gate opened
    assert min(gaps) >= interval * 0.9, (len(stamps), sorted(gaps)[:5])


ONE_JOB = '''
from hpcflow import Step, Workflow, SlurmExecutor
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def one(x: int) -> {"y": int}:
    return {"y": x}

wf = Workflow("one-job")
wf.add(Step("one", PythonOPTemplate(one), parameters={"x": 1},
            executor=SlurmExecutor(partition="debug")))
wf.submit()
'''


def test_finished_markers_arriving_steadily_never_postpone_the_poll(tmp_path: Path,
                                                                     slurm_env: dict):
    """Runners of other jobs keep leaving finished markers (here: the test, every 0.2 s,
    from before the submission on): the daemon still polls every min_poll_interval and
    sees this workflow's job end."""
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    interval = 3.0
    (home / "config.toml").write_text("[machines.slurm]\nscheduler = 'slurm'\n"
                                      f"min_poll_interval = {interval}\n"
                                      "max_poll_interval = 10\n")
    wake = home / "wake"
    wake.mkdir(mode=0o700)
    stop = threading.Event()

    def markers() -> None:
        n = 0
        while not stop.wait(0.2):
            (wake / f"done-test-{n}").touch()
            n += 1

    stream = threading.Thread(target=markers, daemon=True)
    stream.start()
    script = tmp_path / "one.py"
    script.write_text(ONE_JOB)
    try:
        done = run_cli(["submit", str(script)], home, tmp_path)
        assert done.returncode == 0, done.stderr
        wf_id = done.stdout.strip()
        wait_until(lambda: list((home / "runs" / wf_id).glob("*/result.json")),
                   f"the result of the job of {wf_id}")
        # the job is over: a few polls later (markers still arriving) the workflow is too
        wait_until(lambda: json.loads(run_cli(["status", wf_id, "--json"], home,
                                              tmp_path).stdout)["phase"] == "Succeeded",
                   f"{wf_id} to be seen Succeeded while markers arrive", timeout=10 * interval)
    finally:
        stop.set()
        stream.join()
        run_cli(["daemon", "stop"], home, tmp_path)


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
