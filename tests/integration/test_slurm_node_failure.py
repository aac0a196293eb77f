"""A node failure and a preemption for real.

A node failure: the node under a running step's job is set down
(``scontrol update nodename=localhost state=down``). Slurm ends the job NODE_FAIL (hpcflow's jobs
say ``--no-requeue``: Slurm's own requeue would start the job again only minutes later, with a
begin time, unseen by hpcflow); hpcflow retries the step at once as the infrastructure's failure,
not the user's (the step allows no retry of its own), and the workflow succeeds.

A preemption: the private cluster has a partition ``urgent`` of a higher priority tier
(``PreemptType=preempt/partition_prio``, ``PreemptMode=CANCEL``); a job there that needs the
whole node preempts the step's job, Slurm ends it PREEMPTED, and hpcflow retries the step as the
infrastructure's failure once the node is free again.

Setting the shared test cluster's only node down (or preempting on it) would kill every other
test's jobs, so these tests start a private one-node cluster of their own with
tests/services/start-slurm.sh (other ports, its own munged, MariaDB and slurmdbd; ~5 s once
the packages are installed)."""

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli, wait_until
from tests.integration.flows import steps, submit, wait

PORTS = {"SLURM_CTLD_PORT": "6847", "SLURM_D_PORT": "6848", "SLURM_DBD_PORT": "6849",
         "SLURM_DB_PORT": "3327"}
PREEMPTION = ("PreemptType=preempt/partition_prio\nPreemptMode=CANCEL\n"
              "PartitionName=urgent Nodes=ALL PriorityTier=10 MaxTime=INFINITE State=UP")

WORK = '''
from hpcflow import Step, Workflow, SlurmExecutor
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def work(x: int) -> {"y": int}:
    import time
    time.sleep(15)
    return {"y": x + 1}

wf = Workflow("node-fail")
wf.add(Step("work", PythonOPTemplate(work), parameters={"x": 1},
            executor=SlurmExecutor(partition="debug"RESOURCES)))
wf.submit()
'''


@pytest.fixture(scope="module")
def private_slurm(tmp_path_factory, slurm_accounting_env: dict) -> Iterator[str]:
    """SLURM_CONF of a private one-node cluster (the shared one's services must run: this
    one reuses their installed packages only)."""
    # not under pytest's tmp directory (mode 700): MariaDB runs as the user mysql
    top = Path(tempfile.mkdtemp(prefix="hpcflow-private-slurm-"))
    top.chmod(0o755)
    state = top / "slurm"
    env = dict(os.environ, **PORTS, SLURM_EXTRA_CONF=PREEMPTION)
    env.pop("SLURM_CONF", None)
    scripts = REPO / "tests" / "services"
    started = subprocess.run(["bash", str(scripts / "start-slurm.sh"), str(state)], env=env,
                             capture_output=True, text=True, timeout=300)
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        yield str(state / "etc" / "slurm.conf")
    finally:
        subprocess.run(["bash", str(scripts / "stop-slurm.sh"), str(state), "--purge"],
                       env=env, capture_output=True, timeout=300)
        shutil.rmtree(top, ignore_errors=True)


def _slurm(conf: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True,
                          env=dict(os.environ, SLURM_CONF=conf))


def test_a_step_whose_node_fails_is_retried_as_the_infrastructures_failure(
        tmp_path: Path, private_slurm: str, monkeypatch):
    monkeypatch.setenv("SLURM_CONF", private_slurm)  # the daemon and every CLI call
    home = tmp_path / "home"
    wf_id = submit(tmp_path, home, WORK.replace("RESOURCES", ""))
    try:
        def running() -> str | None:
            job_id = steps(home, tmp_path, wf_id)["work"].get("job_id")
            state = _slurm(private_slurm, "squeue", "-h", "-j", str(job_id), "-o", "%T")
            return job_id if job_id and state.stdout.strip() == "RUNNING" else None
        first = wait_until(running, "the step's job to run")
        down = _slurm(private_slurm, "scontrol", "update", "nodename=localhost", "state=down",
                      "reason=hpcflow-test")
        assert down.returncode == 0, down.stderr
        # what Slurm really did to the job: NODE_FAIL, and no requeue of its own
        wait_until(lambda: _slurm(private_slurm, "sacct", "-n", "-P", "-X", "-D", "-j", first,
                                  "-o", "state").stdout.split() == ["NODE_FAIL"],
                   f"sacct to say NODE_FAIL (once) for job {first}")
        # back to service (ReturnToService=2 may already have done it when slurmd re-registered)
        _slurm(private_slurm, "scontrol", "update", "nodename=localhost", "state=resume")
        data = wait(home, tmp_path, wf_id)
        assert data["phase"] == "Succeeded", data
        step = steps(home, tmp_path, wf_id)["work"]
        assert step["outputs"]["parameters"]["y"] == 2
        assert step["attempt"] == 1, step  # one retry, though the step allows none of its own
        assert step["job_id"] != first
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)
        _slurm(private_slurm, "scontrol", "update", "nodename=localhost", "state=resume")


def test_a_preempted_step_is_retried_as_the_infrastructures_failure(
        tmp_path: Path, private_slurm: str, monkeypatch):
    monkeypatch.setenv("SLURM_CONF", private_slurm)
    home = tmp_path / "home"
    # the step's job takes the whole node (4 CPUs): the urgent job must preempt it
    wf_id = submit(tmp_path, home, WORK.replace("RESOURCES", ", cpus_per_task=4"))
    try:
        def running() -> str | None:
            job_id = steps(home, tmp_path, wf_id)["work"].get("job_id")
            state = _slurm(private_slurm, "squeue", "-h", "-j", str(job_id), "-o", "%T")
            return job_id if job_id and state.stdout.strip() == "RUNNING" else None
        first = wait_until(running, "the step's job to run")
        urgent = _slurm(private_slurm, "sbatch", "--parsable", "--partition=urgent",
                        "--cpus-per-task=4", "--output=/dev/null", "--wrap=sleep 5")
        assert urgent.returncode == 0, urgent.stderr
        wait_until(lambda: _slurm(private_slurm, "sacct", "-n", "-P", "-X", "-j", first,
                                  "-o", "state").stdout.split() == ["PREEMPTED"],
                   f"sacct to say PREEMPTED for job {first}")
        data = wait(home, tmp_path, wf_id)
        assert data["phase"] == "Succeeded", data
        step = steps(home, tmp_path, wf_id)["work"]
        assert step["outputs"]["parameters"]["y"] == 2
        assert step["attempt"] == 1, step  # one retry, though the step allows none of its own
        assert step["job_id"] != first
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)
