"""Steps through dpdispatcher (``DispatcherExecutor``, dflow's constructor) on the real services
of tests/services: the one-node Slurm with dpdispatcher's LocalContext, the same Slurm through
the real sshd with its SSHContext (a ``[dispatchers.NAME]`` machine of the config file), and
its Shell batch type. Each runs the shared pipeline (a Python OP, a shell template, artifacts
in and out, a loop of 20) and a failing step; the daemon is also killed right after
dpdispatcher's first ``sbatch`` returned, and no task may be submitted twice. The Slurm
job-completion log is the witness of how many jobs each step became (dpdispatcher names a
one-task job after its task, which hpcflow names after the step)."""

from __future__ import annotations

import json
import re
import stat
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import fault_env, integrity_ok, run_cli
from tests.integration.flows import check_pipeline, failing, pipeline
from tests.integration.flows import steps as _steps
from tests.integration.flows import submit as _submit
from tests.integration.flows import wait as _wait

SLURM_LOCAL = ('machine_dict={"batch_type": "Slurm", "context_type": "LocalContext"}, '
               'queue_name="debug", resources_dict={"custom_flags": ["#SBATCH --time=0:10:00"]}')
SHELL_LOCAL = 'machine_dict={"batch_type": "Shell", "context_type": "LocalContext"}'
#: Exported by dpdispatcher's job script, whatever the batch type: the step ran in one.
JOB_ENV = "DPDISPATCHER_NUMBER_NODE"


def _jobcomp_names(jobcomp: str, wf_id: str, expected: int) -> Counter:
    """Slurm jobs per step of the workflow, once the completion log holds ``expected``."""
    deadline = time.time() + 30
    while True:
        found = Counter(re.findall(rf" Name=hpcflow-{re.escape(wf_id)}-(\d+)-\d+ ",
                                   Path(jobcomp).read_text()))
        if len(found) >= expected or time.time() > deadline:
            return found
        time.sleep(0.5)


def _run_pipeline_and_failure(tmp_path: Path, home: Path, executor_args: str,
                              kind: str) -> tuple[str, str]:
    wf_id = _submit(tmp_path, home, pipeline("DispatcherExecutor", executor_args, JOB_ENV, kind))
    failing_id = _submit(tmp_path, home, failing("DispatcherExecutor", executor_args, kind))
    final = _wait(home, tmp_path, wf_id, timeout=300)
    assert final["phase"] == "Succeeded", (final, _steps(home, tmp_path, wf_id))
    check_pipeline(home, tmp_path, wf_id)
    assert _wait(home, tmp_path, failing_id, timeout=300)["phase"] == "Failed"
    broken = _steps(home, tmp_path, failing_id)["broken"]
    # the same outcome, reason and log as with hpcflow's own executors
    assert broken["reason"] == "ValueError: cannot handle 7", broken
    assert "ValueError: cannot handle 7" in (broken["log_tail"] or "")
    logs = run_cli(["logs", failing_id, "broken"], home, tmp_path)
    assert logs.returncode == 0 and "ValueError: cannot handle 7" in logs.stdout
    return wf_id, failing_id


def _no_dpdispatcher_files_outside(home: Path, tmp_path: Path) -> None:
    """dpdispatcher's log, records and state stay under $HPCFLOW_HOME."""
    assert (home / "logs" / "dpdispatcher.log").exists()
    assert not list(tmp_path.glob("dpdispatcher.log"))
    assert not (Path.home() / ".dpdispatcher" / "submission").exists() or not any(
        (Path.home() / ".dpdispatcher" / "submission").iterdir())


def test_slurm_with_local_context(tmp_path: Path, slurm_env: dict):
    home = tmp_path / "home"
    try:
        wf_id, _ = _run_pipeline_and_failure(tmp_path, home, SLURM_LOCAL, "dp-slurm")
        jobs = _jobcomp_names(slurm_env["HPCFLOW_TEST_SLURM_JOBCOMP"], wf_id, 22)
        assert len(jobs) == 22 and set(jobs.values()) == {1}, jobs  # one Slurm job per step
        _no_dpdispatcher_files_outside(home, tmp_path)
        assert integrity_ok(home)
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)


def test_shell_batch_type(tmp_path: Path):
    home = tmp_path / "home"
    try:
        _run_pipeline_and_failure(tmp_path, home, SHELL_LOCAL, "dp-shell")
        assert integrity_ok(home)
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)


def _ssh_dispatcher_config(home: Path, ssh_env: dict, known_hosts: str,
                           clean: bool = True) -> None:
    user = ssh_env["HPCFLOW_TEST_SSH_USER"]
    home.mkdir(mode=0o700, exist_ok=True)
    (home / "config.toml").write_text(f"""
[dispatchers.cluster]
clean = {str(clean).lower()}
python = "/usr/bin/python3"
known_hosts = "{known_hosts}"
min_poll_interval = 0.5
max_poll_interval = 2

[dispatchers.cluster.machine]
batch_type = "Slurm"
context_type = "SSHContext"
remote_root = "/home/{user}/hpcflow-dispatcher"

[dispatchers.cluster.machine.remote_profile]
hostname = "{ssh_env['HPCFLOW_TEST_SSH_HOST']}"
port = {ssh_env['HPCFLOW_TEST_SSH_PORT']}
username = "{user}"
key_filename = "{ssh_env['HPCFLOW_TEST_SSH_KEY']}"
look_for_keys = false
timeout = 10

[dispatchers.cluster.resources]
custom_flags = ["#SBATCH --time=0:07:00"]
""")


def test_slurm_with_ssh_context(tmp_path: Path, ssh_env: dict, slurm_env: dict):
    home = tmp_path / "home"
    _ssh_dispatcher_config(home, ssh_env, ssh_env["HPCFLOW_TEST_SSH_KNOWN_HOSTS"])
    try:
        wf_id, _ = _run_pipeline_and_failure(tmp_path, home,
                                             'machine="cluster", queue_name="debug"', "dp-ssh")
        text = Path(slurm_env["HPCFLOW_TEST_SLURM_JOBCOMP"]).read_text()
        users = set(re.findall(rf"UserId=(\w+)\(\d+\) GroupId=\S+ Name=hpcflow-{wf_id}-", text))
        assert users == {"hpctest"}, users  # the jobs ran as the SSH user
        # the machine's default resources from the config file reached Slurm
        limits = set(re.findall(rf"Name=hpcflow-{wf_id}-\S+ JobState=\S+ Partition=debug "
                                r"TimeLimit=(\d+)", text))
        assert limits == {"7"}, limits
        assert integrity_ok(home)
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)


def test_the_submission_folder_on_the_cluster_is_the_users_only(tmp_path: Path, ssh_env: dict,
                                                                 slurm_env: dict):
    """dpdispatcher makes a submission's folder with the remote umask (0755 under the test
    sshd's 022) and writes in it the job scripts, whose variables hold the steps' result
    keys, its state and the steps' files: hpcflow makes it 0700 before anything is written
    (kept here with ``clean = false`` to be looked at)."""
    home = tmp_path / "home"
    _ssh_dispatcher_config(home, ssh_env, ssh_env["HPCFLOW_TEST_SSH_KNOWN_HOSTS"], clean=False)
    try:
        wf_id = _submit(tmp_path, home, pipeline(
            "DispatcherExecutor", 'machine="cluster", queue_name="debug"', JOB_ENV, "dp-priv"))
        final = _wait(home, tmp_path, wf_id, timeout=300)
        assert final["phase"] == "Succeeded", (final, _steps(home, tmp_path, wf_id))
        remote = Path(f"/home/{ssh_env['HPCFLOW_TEST_SSH_USER']}/hpcflow-dispatcher")
        folders = {p.parent for p in remote.glob(f"*/{wf_id}")}
        assert folders, sorted(remote.iterdir())
        for folder in folders:
            assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
            scripts = list(folder.glob(".*.sub"))
            assert scripts and all("HPCFLOW_RESULT_KEYS" in p.read_text() for p in scripts)
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)


@pytest.mark.parametrize("known", ["unknown", "changed"])
def test_ssh_context_refuses_an_untrusted_host_key(tmp_path: Path, ssh_env: dict, known: str):
    """dpdispatcher's SSHContext would connect to any host: hpcflow checks the key first,
    against a known_hosts without the host, then against one with another key for it."""
    import paramiko

    home = tmp_path / "home"
    known_hosts = tmp_path / "known_hosts"
    entry = ""
    if known == "changed":
        other = paramiko.Ed25519Key.from_private_key_file(ssh_env["HPCFLOW_TEST_SSH_KEY"])
        entry = (f"[{ssh_env['HPCFLOW_TEST_SSH_HOST']}]:{ssh_env['HPCFLOW_TEST_SSH_PORT']} "
                 f"ssh-ed25519 {other.get_base64()}\n")  # a key, but not the host's
    known_hosts.write_text(entry)
    _ssh_dispatcher_config(home, ssh_env, str(known_hosts))
    try:
        wf_id = _submit(tmp_path, home, failing("DispatcherExecutor",
                                                'machine="cluster"', f"dp-{known}"))
        assert _wait(home, tmp_path, wf_id, timeout=120)["phase"] == "Failed"
        reason = _steps(home, tmp_path, wf_id)["broken"]["reason"]
        if known == "unknown":
            assert f"is not in {known_hosts}" in reason and "ssh-keyscan" in reason, reason
        else:
            assert "has CHANGED" in reason and "ssh-keygen -R" in reason, reason
        assert known_hosts.read_text() == entry  # nothing trusted behind the user's back
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)


CHAIN = f'''
from hpcflow import Step, Workflow, DispatcherExecutor
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def inc(x: int) -> {{"y": int}}:
    return {{"y": x + 1}}

cluster = DispatcherExecutor({SLURM_LOCAL})
wf = Workflow("dp-chain")
prev = None
for i in range(3):
    prev = Step(f"s{{i}}", PythonOPTemplate(inc),
                parameters={{"x": prev.outputs.parameters["y"] if prev else 0}},
                executor=cluster)
    wf.add(prev)
wf.submit()
'''


def test_daemon_killed_during_a_dispatcher_submission(tmp_path: Path, slurm_env: dict):
    """The ``kill-in-dispatcher-submit`` fault (tests/faults) SIGKILLs the daemon right after
    dpdispatcher's first sbatch returned, before dpdispatcher saved its state: the next
    daemon must adopt that job (from the job id file) instead of submitting the task
    again."""
    home = tmp_path / "home"
    wf_id = _submit(tmp_path, home, CHAIN, env=fault_env("kill-in-dispatcher-submit"))
    try:
        from hpcflow.daemon.engine import engine_pid

        log = home / "logs" / "daemon.log"
        deadline = time.time() + 60
        while "fault injection: SIGKILL after dpdispatcher submitted" not in (
                log.read_text() if log.exists() else "") or engine_pid(home) is not None:
            assert time.time() < deadline, "the faulty daemon never submitted and died"
            time.sleep(0.1)
        assert run_cli(["daemon", "start"], home, tmp_path).returncode == 0
        final = _wait(home, tmp_path, wf_id, timeout=300)
        assert final["phase"] == "Succeeded", final
        assert _steps(home, tmp_path, wf_id)["s2"]["outputs"]["parameters"]["y"] == 3
        assert "before a crash: adopted" in log.read_text()
        jobs = _jobcomp_names(slurm_env["HPCFLOW_TEST_SLURM_JOBCOMP"], wf_id, 3)
        assert len(jobs) == 3 and set(jobs.values()) == {1}, jobs
        assert integrity_ok(home)
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)


def test_a_config_machine_must_be_declared(tmp_path: Path):
    home = tmp_path / "home"
    script = tmp_path / "wf.py"
    script.write_text(failing("DispatcherExecutor", 'machine="nowhere"', "dp-undeclared"))
    done = run_cli(["submit", str(script)], home, tmp_path)
    assert done.returncode != 0
    assert "dispatcher machine 'nowhere'" in done.stderr and "[dispatchers.nowhere]" in \
        done.stderr
    assert "Traceback" not in done.stderr
    assert json.loads(run_cli(["list", "--json"], home, tmp_path).stdout or "[]") == []


PACKED = f'''
from hpcflow import Step, Workflow, DispatcherExecutor, argo_range
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def where(x: int) -> {{"job": str}}:
    import os
    return {{"job": os.environ["SLURM_JOB_ID"]}}

packed = DispatcherExecutor({SLURM_LOCAL.replace('{"custom', '{"group_size": 5, "custom')})
wf = Workflow("dp-packed")
wf.add(Step("where", PythonOPTemplate(where), parameters={{"x": "{{{{item}}}}"}},
            with_param=argo_range(10), executor=packed))
wf.submit()
'''


def test_ready_steps_share_a_submission_by_group_size(tmp_path: Path, slurm_env: dict):
    """resources_dict's group_size: ten Ready steps that agree on resources become two
    dpdispatcher Submissions of five tasks, each one Slurm job."""
    home = tmp_path / "home"
    wf_id = _submit(tmp_path, home, PACKED)
    try:
        assert _wait(home, tmp_path, wf_id, timeout=300)["phase"] == "Succeeded"
        jobs = _steps(home, tmp_path, wf_id)["where"]["outputs"]["parameters"]["job"]
        assert len(jobs) == 10 and sorted(Counter(jobs).values()) == [5, 5], jobs
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)


SLEEPER = f'''
from hpcflow import Step, Workflow, DispatcherExecutor
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def nap(x: int) -> {{"y": int}}:
    import time
    time.sleep(300)
    return {{"y": x}}

wf = Workflow("dp-sleeps")
wf.add(Step("nap", PythonOPTemplate(nap), parameters={{"x": 1}},
            executor=DispatcherExecutor({SLURM_LOCAL})))
wf.submit()
'''


def _squeue_names() -> str:
    import subprocess

    return subprocess.run(["squeue", "-h", "-o", "%j"], capture_output=True, text=True).stdout


def _squeue_rpcs() -> int:
    """squeue -j calls slurmctld has answered so far (sdiag's REQUEST_JOB_INFO_SINGLE)."""
    import subprocess

    out = subprocess.run(["sdiag"], capture_output=True, text=True).stdout
    found = re.search(r"REQUEST_JOB_INFO_SINGLE\s+\(\s*\d+\)\s+count:(\d+)", out)
    return int(found.group(1)) if found else 0


def test_terminate_cancels_the_dispatcher_job(tmp_path: Path, slurm_env: dict):
    home = tmp_path / "home"
    wf_id = _submit(tmp_path, home, SLEEPER)
    try:
        deadline = time.time() + 60
        while f"hpcflow-{wf_id}-" not in _squeue_names():
            assert time.time() < deadline, "the job never reached the queue"
            time.sleep(0.3)
        # While the job runs the daemon polls on its backed-off schedule (1 s doubling to
        # 30 s), not in a loop: Slurm's own RPC counter says how many squeue -j it got.
        before = _squeue_rpcs()
        time.sleep(8)
        polls = _squeue_rpcs() - before
        assert polls <= 8, f"{polls} squeue calls in 8 s while one job ran"
        assert run_cli(["terminate", wf_id], home, tmp_path).returncode == 0
        deadline = time.time() + 60
        while f"hpcflow-{wf_id}-" in _squeue_names():
            assert time.time() < deadline, "the job was not cancelled"
            time.sleep(0.3)
        assert _wait(home, tmp_path, wf_id)["phase"] == "Terminated"
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)


# dpdispatcher asks for the parallel environment "mpi" by default; the test cell has "smp".
SGE_LOCAL = ('machine_dict={"batch_type": "SGE", "context_type": "LocalContext"}, '
             'queue_name="all.q", resources_dict={"kwargs": {"pe_name": "smp"}}')


def test_grid_engine_job_that_never_ran_the_task_fails_the_step(tmp_path: Path, sge_env: dict):
    """dpdispatcher 1.1's SGE script starts with an empty line before ``#!/bin/bash``. The
    test cell's queue has ``shell_start_mode unix_behavior`` (the shebang decides), so the job
    runs under /bin/sh, its ``source`` line fails and no task runs, while dpdispatcher still
    sees its finish tag and calls the job finished. hpcflow must not believe it: the step
    fails with the reason, promptly, instead of succeeding or hanging. (On a queue with
    SGE's default, posix_compliant, ``-S /bin/bash`` applies and the script works.)"""
    home = tmp_path / "home"
    try:
        wf_id = _submit(tmp_path, home, failing("DispatcherExecutor", SGE_LOCAL, "dp-sge"))
        assert _wait(home, tmp_path, wf_id, timeout=120)["phase"] == "Failed"
        reason = _steps(home, tmp_path, wf_id)["broken"]["reason"]
        assert "ended without hpcflow's result" in reason, reason
        assert integrity_ok(home)
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)
