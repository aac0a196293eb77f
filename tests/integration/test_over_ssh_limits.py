"""Through the real sshd (as user hpctest, from a "workstation" daemon): Grid Engine jobs
(a workflow with a Python OP, a shell template, artifacts and a loop of 20; a failing step;
a job over its time limit; a job deleted with qdel), and Slurm jobs killed for their time
limit (TIMEOUT) or cancelled with scancel. The same failures as on the login node must reach
the steps with the same reasons."""

import subprocess
import time
from pathlib import Path

from tests.conftest import integrity_ok, run_cli
from tests.integration import test_sge_local as sge
from tests.integration.flows import check_pipeline
from tests.integration.test_slurm_local import _steps, _submit, _wait
from tests.integration.test_slurm_ssh import remote_config


def _running_sge_job(wf_id: str, user: str, timeout: float = 90) -> str:
    """The id of the workflow's running job, as ``qstat -u USER`` lists it."""
    import xml.etree.ElementTree as ET

    deadline = time.time() + timeout
    while True:
        out = subprocess.run(["qstat", "-u", user, "-xml"], capture_output=True, text=True,
                             check=True).stdout
        for job in ET.fromstring(out).iter("job_list"):
            if (job.findtext("JB_name") or "").startswith(f"hpcflow-{wf_id}-") \
                    and job.findtext("state") == "r":
                return job.findtext("JB_job_number") or ""
        assert time.time() < deadline, f"no running job of {wf_id}"
        time.sleep(0.3)


def _over_ssh(script: str, executor: str, machine: str) -> str:
    return script.replace(f"{executor}(", f'{executor}(machine="{machine}", ')


def test_grid_engine_over_ssh(tmp_path: Path, ssh_env: dict, sge_env: dict):
    home = tmp_path / "home"
    remote_config(home, ssh_env, "sge-remote")
    config = home / "config.toml"
    config.write_text(config.read_text().replace('scheduler = "slurm"', 'scheduler = "sge"'))
    wf = _submit(tmp_path, home, _over_ssh(sge.PIPELINE, "SGEExecutor", "sge-remote"))
    failing = _submit(tmp_path, home, _over_ssh(sge.FAILING, "SGEExecutor", "sge-remote"))
    too_long = _submit(tmp_path, home, _over_ssh(
        sge.sleeper("sge-ssh-too-long", 'queue="all.q", time="0:0:5"'), "SGEExecutor",
        "sge-remote"))
    deleted = _submit(tmp_path, home, _over_ssh(sge.sleeper("sge-ssh-deleted", sge.RESOURCES),
                                                "SGEExecutor", "sge-remote"))
    try:
        job_id = _running_sge_job(deleted, ssh_env["HPCFLOW_TEST_SSH_USER"])
        subprocess.run(["qdel", job_id], check=True, capture_output=True)
        assert _wait(home, tmp_path, wf)["phase"] == "Succeeded"
        check_pipeline(home, tmp_path, wf)  # artifacts in and out, the loop, each in a job
        jobs = sge._accounted(wf, 22)
        assert len(jobs) == 22 and set(jobs.values()) == {1}, jobs
        assert _wait(home, tmp_path, failing)["phase"] == "Failed"
        assert _steps(home, tmp_path, failing)["broken"]["reason"] == \
            "ValueError: cannot handle 7"
        assert _wait(home, tmp_path, too_long, timeout=120)["phase"] == "Failed"
        assert "reached its time limit (h_rt=5" in _steps(home, tmp_path, too_long)["nap"][
            "reason"]
        assert _wait(home, tmp_path, deleted, timeout=120)["phase"] == "Failed"
        reason = _steps(home, tmp_path, deleted)["nap"]["reason"]
        assert "outside hpcflow" in reason and "qdel" in reason, reason
        assert not (home / "runs").exists()  # everything ran in hpctest's work root
        assert integrity_ok(home)
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)


TOO_LONG = '''
from hpcflow import Step, Workflow, SlurmExecutor
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def slow(x: int) -> {"y": int}:
    import time
    time.sleep(600)
    return {"y": x}

wf = Workflow("NAME")
wf.add(Step("slow", PythonOPTemplate(slow), parameters={"x": 1},
            executor=SlurmExecutor(machine="remote", partition="debug", time="TIME")))
wf.submit()
'''


def test_slurm_time_limit_and_scancel_over_ssh(tmp_path: Path, ssh_env: dict,
                                               slurm_env: dict):
    """Slurm's limits are whole minutes: the first job is killed about 60-70 s in."""
    home = tmp_path / "home"
    remote_config(home, ssh_env)
    limited = _submit(tmp_path, home, TOO_LONG.replace("NAME", "ssh-timeout")
                      .replace("TIME", "1"))
    cancelled = _submit(tmp_path, home, TOO_LONG.replace("NAME", "ssh-cancel")
                        .replace("TIME", "0:10:00"))
    try:
        deadline = time.time() + 60
        job_id = None
        while job_id is None:
            assert time.time() < deadline
            out = subprocess.run(["squeue", "-h", "-t", "R", "-o", "%i %j"], capture_output=True,
                                 text=True).stdout
            job_id = next((line.split()[0] for line in out.splitlines()
                           if f"hpcflow-{cancelled}-" in line), None)
            time.sleep(0.5)
        subprocess.run(["scancel", job_id], check=True)
        assert _wait(home, tmp_path, cancelled, timeout=120)["phase"] == "Failed"
        assert "cancelled outside hpcflow (Slurm CANCELLED" in \
            _steps(home, tmp_path, cancelled)["slow"]["reason"]
        assert _wait(home, tmp_path, limited, timeout=200)["phase"] == "Failed"
        slow = _steps(home, tmp_path, limited)["slow"]
        assert "time limit (Slurm TIMEOUT)" in slow["reason"], slow
        assert "DUE TO TIME LIMIT" in (slow["log_tail"] or "")  # read back over SSH
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)
