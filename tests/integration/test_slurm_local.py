"""Steps as jobs of the real one-node Slurm of tests/services, submitted on this machine
(the daemon on the login node): a Python OP, a shell template, artifacts in and out, a loop of
20, a failing step, a job cancelled behind hpcflow's back, and a daemon killed right after
``sbatch`` returned. The Slurm job-completion log (jobcomp/filetxt) is the witness of how
many jobs each step became."""

import json
import re
import subprocess
import time
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

RESOURCES = 'partition="debug", time="0:10:00"'

PIPELINE = pipeline("SlurmExecutor", RESOURCES, "SLURM_JOB_ID", "slurm")
FAILING = failing("SlurmExecutor", RESOURCES, "slurm")

SLEEPER = f'''
from hpcflow import Step, Workflow, SlurmExecutor
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def nap(x: int) -> {{"y": int}}:
    import time
    print("napping now")
    time.sleep(120)
    return {{"y": x}}

wf = Workflow("slurm-sleeps")
wf.add(Step("nap", PythonOPTemplate(nap), parameters={{"x": 1}},
            executor=SlurmExecutor({RESOURCES})))
wf.submit()
'''

CHAIN = f'''
from hpcflow import Step, Workflow, SlurmExecutor
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def inc(x: int) -> {{"y": int}}:
    return {{"y": x + 1}}

wf = Workflow("slurm-chain")
prev = None
for i in range(3):
    prev = Step(f"s{{i}}", PythonOPTemplate(inc),
                parameters={{"x": prev.outputs.parameters["y"] if prev else 0}},
                executor=SlurmExecutor({RESOURCES}))
    wf.add(prev)
wf.submit()
'''


def _jobcomp_names(jobcomp: str, wf_id: str, expected: int) -> Counter:
    """How many Slurm jobs ran for each step of the workflow (job names encode the step id),
    once the completion log holds ``expected`` steps (a job is logged when it has fully
    ended, which can be a moment after its step's result; waited for while jobs keep being
    logged)."""
    def found() -> Counter:
        return Counter(re.findall(rf" Name=hpcflow-{re.escape(wf_id)}-(\d+)-\d+ ",
                                  Path(jobcomp).read_text()))

    return wait_progressing(found, lambda seen: len(seen) >= expected, len, stall=60,
                            what=f"the completion log's jobs of {wf_id}")


def test_a_workflow_of_slurm_jobs(tmp_path: Path, slurm_env: dict):
    home = tmp_path / "home"
    wf_id = _submit(tmp_path, home, PIPELINE)
    try:
        final = _wait(home, tmp_path, wf_id)
        assert final["phase"] == "Succeeded", final
        check_pipeline(home, tmp_path, wf_id)
        check_job_ids_shown(home, tmp_path, wf_id)
        jobs = _jobcomp_names(slurm_env["HPCFLOW_TEST_SLURM_JOBCOMP"], wf_id, 22)
        assert len(jobs) == 22 and set(jobs.values()) == {1}, jobs  # one Slurm job per step
        script = next((home / "runs" / wf_id).glob("write-*/job.sh")).read_text()
        assert "#SBATCH --partition=debug" in script and "#SBATCH --time=0:10:00" in script
        assert integrity_ok(home)
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)


def test_a_failing_step_and_a_job_cancelled_outside(tmp_path: Path, slurm_env: dict):
    home = tmp_path / "home"
    failing = _submit(tmp_path, home, FAILING)
    sleeping = _submit(tmp_path, home, SLEEPER)
    try:
        assert _wait(home, tmp_path, failing)["phase"] == "Failed"
        broken = _steps(home, tmp_path, failing)["broken"]
        assert broken["phase"] == "Failed"
        assert broken["reason"] == "ValueError: cannot handle 7"
        logs = run_cli(["logs", failing, "broken"], home, tmp_path)
        assert "ValueError: cannot handle 7" in logs.stdout  # the job's own output file
        # cancel the sleeping step's job with scancel, as an administrator might
        deadline = time.time() + 180
        job_id = None
        while job_id is None:
            assert time.time() < deadline
            out = subprocess.run(["squeue", "--me", "-h", "-o", "%i %j"], capture_output=True,
                                 text=True).stdout
            job_id = next((line.split()[0] for line in out.splitlines()
                           if f"hpcflow-{sleeping}-" in line), None)
            time.sleep(0.3)
        deadline = time.time() + 120  # the job's output is visible while it runs
        while "napping now" not in run_cli(["logs", sleeping, "nap"], home, tmp_path).stdout:
            assert time.time() < deadline, "no output from the running job"
            time.sleep(0.5)
        subprocess.run(["scancel", job_id], check=True)
        assert _wait(home, tmp_path, sleeping)["phase"] == "Failed"
        nap = _steps(home, tmp_path, sleeping)["nap"]
        assert "cancelled outside hpcflow (Slurm CANCELLED" in nap["reason"], nap
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)


def test_sigkill_right_after_sbatch_submits_nothing_twice(tmp_path: Path, slurm_env: dict):
    """The ``kill-after-submit`` fault (tests/faults) makes the daemon SIGKILL itself the
    moment the first sbatch returns, before the job id is written: the next daemon must
    find that job by its name instead of submitting it again."""
    home = tmp_path / "home"
    wf_id = _submit(tmp_path, home, CHAIN, env=fault_env("kill-after-submit"))
    try:
        await_fault_kill(home)
        jobs = json.loads(run_cli(["steps", wf_id, "--json"], home, tmp_path).stdout)
        assert any(s["phase"] == "Pending" for s in jobs)  # the step never became Running
        assert run_cli(["daemon", "start"], home, tmp_path).returncode == 0
        assert _wait(home, tmp_path, wf_id)["phase"] == "Succeeded"
        assert _steps(home, tmp_path, wf_id)["s2"]["outputs"]["parameters"]["y"] == 3
        assert "found in slurm as" in (home / "logs" / "daemon.log").read_text()
        jobs = _jobcomp_names(slurm_env["HPCFLOW_TEST_SLURM_JOBCOMP"], wf_id, 3)
        assert len(jobs) == 3 and set(jobs.values()) == {1}, jobs
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)
