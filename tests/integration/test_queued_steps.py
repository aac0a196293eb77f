"""A step whose job waits in the scheduler's queue is Pending, with the scheduler's reason,
and becomes Running when its job starts (Argo's meaning of Pending: created, not running
yet). On the real Slurm and Grid Engine of tests/services: the job is submitted held
(``sbatch --hold``, ``qsub -h``), seen Pending with Slurm's ``JobHeldUser`` / Grid Engine's
``hqw`` through ``hpcflow steps``, released (``scontrol release``, ``qrls``), then seen
Running, and ends Succeeded."""

import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import run_cli, wait_until
from tests.integration.flows import steps as _steps
from tests.integration.flows import submit as _submit
from tests.integration.flows import wait as _wait

WORKFLOW = '''
from hpcflow import Step, Workflow, {executor}
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def wait_for(flag: str) -> {{"y": int}}:
    import os, time
    deadline = time.time() + 600
    while not os.path.exists(flag) and time.time() < deadline:
        time.sleep(0.2)
    return {{"y": 1}}

wf = Workflow("held")
wf.add(Step("held", PythonOPTemplate(wait_for), parameters={{"flag": {flag!r}}},
            executor={executor}({resources}, extra_directives=[{hold!r}])))
wf.submit()
'''

SCHEDULERS = {
    "slurm": dict(executor="SlurmExecutor", resources='partition="debug", time="0:15:00"',
                  hold="--hold", reason="JobHeldUser", env="slurm_env"),
    "sge": dict(executor="SGEExecutor", resources='queue="all.q", time="0:15:00"',
                hold="-h", reason="held (hqw)", env="sge_env"),
}


def _job_id(kind: str, wf_id: str) -> str | None:
    """The scheduler's id of the workflow's job (job names are hpcflow-WF-STEP-ATTEMPT)."""
    prefix = f"hpcflow-{wf_id}-"
    if kind == "slurm":
        out = subprocess.run(["squeue", "--me", "-h", "-o", "%i %j"], capture_output=True,
                             text=True, timeout=60).stdout
        jobs = [line.split() for line in out.splitlines() if line.strip()]
    else:  # qstat's table cuts names short: its XML has them whole
        out = subprocess.run(["qstat", "-xml"], capture_output=True, text=True,
                             timeout=60).stdout
        jobs = [[e.findtext("JB_job_number") or "", e.findtext("JB_name") or ""]
                for e in ET.fromstring(out).iter("job_list")]
    return next((job[0] for job in jobs if len(job) > 1 and job[1].startswith(prefix)), None)


@pytest.mark.parametrize("kind", sorted(SCHEDULERS))
@pytest.mark.timeout(900)
def test_a_held_job_is_pending_with_its_reason_then_running(kind: str, tmp_path: Path,
                                                             request) -> None:
    case = SCHEDULERS[kind]
    request.getfixturevalue(case["env"])
    home, flag = tmp_path / "home", tmp_path / "go"
    wf_id = _submit(tmp_path, home, WORKFLOW.format(flag=str(flag), **case))
    try:
        pending = wait_until(lambda: (
            (s := _steps(home, tmp_path, wf_id).get("held")) and s["phase"] == "Pending"
            and case["reason"] in (s.get("reason") or "") and s),
            "the held step to be Pending with the scheduler's reason", timeout=240)
        assert pending["reason"] == f"waiting in {kind}'s queue: {case['reason']}"
        table = run_cli(["steps", wf_id], home, tmp_path).stdout
        assert case["reason"] in table and "Pending" in table
        # it stays so while held: the next polls change nothing
        time.sleep(3)
        assert _steps(home, tmp_path, wf_id)["held"]["phase"] == "Pending"
        job = wait_until(lambda: _job_id(kind, wf_id), "the job in the queue", timeout=240)
        released = time.time()
        release = ["scontrol", "release", job] if kind == "slurm" else ["qrls", job]
        subprocess.run(release, check=True, capture_output=True, timeout=60)
        running = wait_until(lambda: (
            (s := _steps(home, tmp_path, wf_id)["held"]) and s["phase"] == "Running" and s),
            "the released step to be Running", timeout=240)
        assert not running.get("reason"), running
        flag.write_text("go")
        final = _wait(home, tmp_path, wf_id)
        assert final["phase"] == "Succeeded", final
        step = _steps(home, tmp_path, wf_id)["held"]
        assert step["phase"] == "Succeeded" and not step.get("reason")
        # its time in the queue is not its run time
        assert step["started_at"] >= released - 1, (step["started_at"], released)
    finally:
        run_cli(["terminate", wf_id], home, tmp_path)
        run_cli(["daemon", "stop"], home, tmp_path)
