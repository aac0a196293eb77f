"""Steps as jobs of the real one-node Grid Engine of tests/services, submitted on this machine
(the daemon on the login node, with no config file: the machine ``sge`` exists with every
default): a Python OP, a shell template, artifacts in and out, a loop of 20, a failing step, a
job deleted with ``qdel`` behind hpcflow's back, a job killed for its time limit (h_rt), and a
daemon killed right after ``qsub`` returned. Grid Engine's accounting (``qacct``, flushed every
second on the test cluster) is the witness of how many jobs each step became."""

import json
import os
import re
import subprocess
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

from tests.conftest import fault_env, integrity_ok, run_cli, wait_progressing
from tests.integration.flows import (
    await_fault_kill,
    check_job_ids_shown,
    check_pipeline,
    failing,
    pipeline,
)
from tests.integration.flows import steps as _steps
from tests.integration.flows import submit as _submit
from tests.integration.flows import wait as _wait

RESOURCES = 'queue="all.q", time="0:10:00"'

PIPELINE = pipeline("SGEExecutor", RESOURCES, "JOB_ID", "sge")
FAILING = failing("SGEExecutor", RESOURCES, "sge")


#: How long the sleeper's step naps: far longer than anything the tests wait for, so that a
#: job ended by qdel or by its time limit cannot be mistaken for one that ran out on a busy
#: machine (both tests delete what is left, see _delete_jobs).
NAP = 600


def sleeper(name: str, resources: str) -> str:
    return f'''
from hpcflow import Step, Workflow, SGEExecutor
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def nap(x: int) -> {{"y": int}}:
    import time
    time.sleep({NAP})
    return {{"y": x}}

wf = Workflow("{name}")
wf.add(Step("nap", PythonOPTemplate(nap), parameters={{"x": 1}},
            executor=SGEExecutor({resources})))
wf.submit()
'''


def chain(gate: Path) -> str:
    """Three steps; the first waits for ``gate`` (at most 10 minutes), so that it is still
    running when the next daemon looks for it, however slow the machine."""
    return f'''
from hpcflow import Step, Workflow, SGEExecutor
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def inc(x: int) -> {{"y": int}}:
    import os, time
    deadline = time.time() + 600
    while x == 0 and not os.path.exists({str(gate)!r}) and time.time() < deadline:
        time.sleep(0.2)
    return {{"y": x + 1}}

wf = Workflow("sge-chain")
prev = None
for i in range(3):
    prev = Step(f"s{{i}}", PythonOPTemplate(inc),
                parameters={{"x": prev.outputs.parameters["y"] if prev else 0}},
                executor=SGEExecutor({RESOURCES}))
    wf.add(prev)
wf.submit()
'''


def _qacct(wf_id: str) -> str:
    """Grid Engine's accounting records of the workflow's jobs."""
    return subprocess.run(["qacct", "-j", f"hpcflow-{wf_id}-*"], capture_output=True,
                          text=True).stdout


def _accounted(wf_id: str, expected: int) -> Counter:
    """How many Grid Engine jobs ran for each step of the workflow (job names encode the step
    id), once the accounting file holds ``expected`` steps (a record is written when a job has
    fully ended, which can be a moment after its step's result; waited for while records keep
    coming)."""
    def found() -> Counter:
        return Counter(re.findall(rf"^jobname\s+hpcflow-{re.escape(wf_id)}-(\d+)-\d+\s*$",
                                  _qacct(wf_id), flags=re.M))

    return wait_progressing(found, lambda seen: len(seen) >= expected, len, stall=60,
                            what=f"accounting records of {wf_id}")


def _wallclock(wf_id: str) -> float:
    """How long the workflow's one job ran, as Grid Engine accounted it (``ru_wallclock``)."""
    record = wait_progressing(lambda: _qacct(wf_id), lambda out: "ru_wallclock" in out,
                              stall=60, what=f"the accounting record of {wf_id}")
    return float(re.findall(r"^ru_wallclock\s+([0-9.]+)", record, flags=re.M)[0])


def _jobs(wf_id: str) -> dict[str, str]:
    """The workflow's jobs that ``qstat`` shows: id -> state."""
    root = ET.fromstring(subprocess.run(["qstat", "-xml"], capture_output=True, text=True,
                                        check=True).stdout)
    return {job.findtext("JB_job_number") or "": job.findtext("state") or ""
            for job in root.iter("job_list")
            if (job.findtext("JB_name") or "").startswith(f"hpcflow-{wf_id}-")}


def _live_job(wf_id: str, state: str, timeout: float = 180) -> str:
    """The id of the workflow's job once ``qstat`` shows it in ``state``."""
    deadline = time.time() + timeout
    while True:
        found = [job for job, now in _jobs(wf_id).items() if now == state]
        if found:
            return found[0]
        assert time.time() < deadline, f"no job of {wf_id} in state {state}"
        time.sleep(0.3)


def _delete_jobs(wf_id: str) -> None:
    """qdel what is left of the workflow's jobs (a failed test leaves no napping job)."""
    left = sorted(_jobs(wf_id))
    if left:
        subprocess.run(["qdel", *left], capture_output=True)


def test_qsub_is_grid_engines(sge_env: dict):
    """Slurm and Grid Engine side by side: Slurm's qsub wrapper (slurm-wlm-torque) is not
    installed, so ``qsub`` is Grid Engine's."""
    path = os.path.realpath(subprocess.run(["sh", "-c", "command -v qsub"], capture_output=True,
                                           text=True, check=True).stdout.strip())
    assert path in ("/usr/share/gridengine/gridengine-wrapper", "/usr/lib/gridengine/qsub"), path
    assert "all.q" in subprocess.run(["qconf", "-sql"], capture_output=True, text=True,
                                     check=True).stdout.split()


def test_a_workflow_of_sge_jobs(tmp_path: Path, sge_env: dict):
    home = tmp_path / "home"
    wf_id = _submit(tmp_path, home, PIPELINE)
    try:
        final = _wait(home, tmp_path, wf_id)
        assert final["phase"] == "Succeeded", final
        steps = _steps(home, tmp_path, wf_id)
        assert steps["write"]["outputs"]["parameters"]["job"].isdigit()  # ran inside a job
        check_pipeline(home, tmp_path, wf_id)
        check_job_ids_shown(home, tmp_path, wf_id)
        jobs = _accounted(wf_id, 22)
        assert len(jobs) == 22 and set(jobs.values()) == {1}, jobs  # one SGE job per step
        script = next((home / "runs" / wf_id).glob("write-*/job.sh")).read_text()
        assert "#$ -q all.q" in script and "#$ -l h_rt=0:10:00" in script
        assert integrity_ok(home)
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)


def test_a_failing_step_and_a_job_deleted_outside(tmp_path: Path, sge_env: dict):
    home = tmp_path / "home"
    failing = _submit(tmp_path, home, FAILING)
    sleeping = _submit(tmp_path, home, sleeper("sge-sleeps", RESOURCES))
    try:
        assert _wait(home, tmp_path, failing)["phase"] == "Failed"
        broken = _steps(home, tmp_path, failing)["broken"]
        assert broken["phase"] == "Failed"
        assert broken["reason"] == "ValueError: cannot handle 7"
        logs = run_cli(["logs", failing, "broken"], home, tmp_path)
        assert "ValueError: cannot handle 7" in logs.stdout  # the job's own output file
        # delete the sleeping step's running job with qdel, as an administrator might
        job_id = _live_job(sleeping, "r")
        subprocess.run(["qdel", job_id], check=True, capture_output=True)
        assert _wait(home, tmp_path, sleeping, timeout=90)["phase"] == "Failed"
        # Grid Engine's own record of the deletion is the reason: found by a poll, neither
        # the nap's end nor the grace for a job that vanished without a trace
        nap = _steps(home, tmp_path, sleeping)["nap"]
        assert "outside hpcflow" in nap["reason"] and "qdel" in nap["reason"], nap
        assert _wallclock(sleeping) < NAP  # the job did not run out
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)
        _delete_jobs(sleeping)


def test_a_job_over_its_time_limit(tmp_path: Path, sge_env: dict):
    """``time="0:0:5"`` is ``-l h_rt=0:0:5``: Grid Engine kills the long nap once its execution
    daemon sees the limit passed (its load reports come every 40 s here)."""
    home = tmp_path / "home"
    wf_id = _submit(tmp_path, home, sleeper("sge-too-long", 'queue="all.q", time="0:0:5"'))
    try:
        assert _wait(home, tmp_path, wf_id)["phase"] == "Failed"
        assert _wallclock(wf_id) < NAP  # killed at its limit, not after its nap
        nap = _steps(home, tmp_path, wf_id)["nap"]
        assert nap["phase"] == "Failed"
        assert "reached its time limit (h_rt=5" in nap["reason"], nap
        assert "ask for more with time=" in nap["reason"], nap
        script = next((home / "runs" / wf_id).glob("nap-*/job.sh")).read_text()
        assert "#$ -l h_rt=0:0:5" in script
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)
        _delete_jobs(wf_id)


def test_sigkill_right_after_qsub_submits_nothing_twice(tmp_path: Path, sge_env: dict):
    """The ``kill-after-submit`` fault (tests/faults) makes the daemon SIGKILL itself the
    moment the first qsub returns, before the job id is written: the next daemon must find
    that job by its name (``qstat -j NAME -xml``), or by the runner's traces, instead of
    submitting it again."""
    home = tmp_path / "home"
    gate = tmp_path / "gate"
    wf_id = _submit(tmp_path, home, chain(gate), env=fault_env("kill-after-submit"))
    try:
        await_fault_kill(home)
        jobs = json.loads(run_cli(["steps", wf_id, "--json"], home, tmp_path).stdout)
        assert any(s["phase"] == "Pending" for s in jobs)  # the step never became Running
        assert run_cli(["daemon", "start"], home, tmp_path).returncode == 0
        log = home / "logs" / "daemon.log"
        wait_progressing(log.read_text, lambda text: "found in sge as" in text,
                         what="the next daemon finding the job")
        gate.touch()
        assert _wait(home, tmp_path, wf_id)["phase"] == "Succeeded"
        assert _steps(home, tmp_path, wf_id)["s2"]["outputs"]["parameters"]["y"] == 3
        jobs = _accounted(wf_id, 3)
        assert len(jobs) == 3 and set(jobs.values()) == {1}, jobs
    finally:
        gate.touch()  # a failed test leaves no job waiting
        run_cli(["daemon", "stop"], home, tmp_path)
