"""Every registered executor kind keeps the ``Executor`` contract, run against the real thing
where there is one: this machine's processes (``local``), the real Slurm and Grid Engine
(``batch``), dpdispatcher's Shell batch type (``dispatcher``), and a machine a workflow
describes, reached over the real sshd as another user (``step_machine``, dflow's
``RemoteExecutor``).

For each: a job is submitted and polled to its end (a result comes back, a failure keeps
its reason and its log's tail); a running job is cancelled by ``terminate`` (its process is
gone); and a daemon SIGKILLed right after a submission, before the job id is recorded,
leads to one run of the step, not two (the job is found by name, or its traces adopted).
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import fault_env, wait_progressing
from tests.integration.flows import await_fault_kill
from tests.integration.flows import steps as _steps
from tests.integration.flows import submit as _submit
from tests.integration.flows import wait as _wait

#: kind -> (the step's executor as Python, what it needs, the fixture of its service)
KINDS = {
    "local": ("None", "", None),
    "batch-slurm": ('SlurmExecutor(partition="debug", time="0:10:00")', "SlurmExecutor",
                    "slurm_env"),
    "batch-sge": ('SGEExecutor(queue="all.q", time="0:10:00")', "SGEExecutor", "sge_env"),
    "dispatcher": ('DispatcherExecutor(machine_dict={"batch_type": "Shell", '
                   '"context_type": "LocalContext"})', "DispatcherExecutor", None),
    "step_machine": ('RemoteExecutor(host="HOST", port=PORT, username="USER", '
                     'private_key_file="KEY")', "RemoteExecutor", "ssh_env"),
}

WORKFLOW = '''
from hpcflow import Step, Workflow{imports}
from hpcflow.python import OP, PythonOPTemplate

SHARED = {shared!r}

@OP.function
def ok(x: int) -> {{"y": int}}:
    with open(SHARED + "/runs-" + str(x), "a") as f:
        f.write("ran\\n")
    return {{"y": x + 1}}

@OP.function
def broken(x: int) -> {{"y": int}}:
    print("broken says hello", flush=True)
    raise ValueError(f"conformance {{x}}")

@OP.function
def nap(x: int) -> {{"y": int}}:
    import os, time
    with open(SHARED + "/nap.pid", "w") as f:
        f.write(str(os.getpid()))
    time.sleep(600)
    return {{"y": x}}

wf = Workflow({name!r})
for name, op in {ops}:
    wf.add(Step(name, PythonOPTemplate(op), parameters={{"x": 7}}, executor={executor}))
wf.submit()
'''


def _case(kind: str, request, tmp_path: Path) -> tuple[dict, dict]:
    """(format fields for WORKFLOW, the daemon's extra environment)."""
    executor, imported, fixture = KINDS[kind]
    env: dict[str, str] = {}
    if fixture:
        service = request.getfixturevalue(fixture)
        if fixture == "ssh_env":
            for word, key in (("HOST", "HOST"), ("PORT", "PORT"), ("USER", "USER"),
                              ("KEY", "KEY")):
                executor = executor.replace(word, service[f"HPCFLOW_TEST_SSH_{key}"])
            # the daemon's ~/.ssh/known_hosts holds the test sshd's key
            user_home = tmp_path / "user"
            (user_home / ".ssh").mkdir(parents=True, mode=0o700, exist_ok=True)
            shutil.copy(service["HPCFLOW_TEST_SSH_KNOWN_HOSTS"],
                        user_home / ".ssh" / "known_hosts")
            env["HOME"] = str(user_home)
    # a folder every job can write, whichever account it runs as (step_machine: hpctest)
    shared = Path(f"/tmp/hpcflow-conformance-{os.getpid()}-{kind}-{tmp_path.name}")
    shared.mkdir(mode=0o777, exist_ok=True)
    shared.chmod(0o777)
    fields = {"imports": f", {imported}" if imported else "", "executor": executor,
              "shared": str(shared)}
    return fields, env


def _cli(args: list[str], home: Path, cwd: Path, env: dict[str, str]
         ) -> subprocess.CompletedProcess:
    """``hpcflow ARGS`` as the daemon's user (``env``: its HOME for step_machine)."""
    return subprocess.run([sys.executable, "-m", "hpcflow.cli.main", *args], cwd=cwd,
                          env={**os.environ, "HPCFLOW_HOME": str(home), **env},
                          capture_output=True, text=True, timeout=240)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.timeout(900)
def test_submit_poll_fail_cancel_and_survive_a_crash(kind: str, request, tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    fields, env = _case(kind, request, tmp_path)
    shared = Path(fields["shared"])
    try:
        # submitted and polled to the end: a result back, a failure with reason and log
        ran = _submit(tmp_path, home, WORKFLOW.format(
            name="conf-run", ops='[("ok", ok), ("broken", broken)]', **fields), env=env)
        final = _wait(home, tmp_path, ran, timeout=240)
        assert final["phase"] == "Failed", final
        steps = _steps(home, tmp_path, ran)
        assert steps["ok"]["phase"] == "Succeeded"
        assert steps["ok"]["outputs"]["parameters"]["y"] == 8
        assert steps["broken"]["phase"] == "Failed"
        assert steps["broken"]["reason"] == "ValueError: conformance 7"
        assert "broken says hello" in (steps["broken"]["log_tail"] or "")
        logs = _cli(["logs", ran, "broken"], home, tmp_path, env)
        assert "broken says hello" in logs.stdout, logs.stderr

        # a running job cancelled by terminate: its process goes away
        napping = _submit(tmp_path, home, WORKFLOW.format(
            name="conf-nap", ops='[("nap", nap)]', **fields), env=env)
        pid_file = shared / "nap.pid"
        wait_progressing(lambda: pid_file.exists() and pid_file.read_text().strip(),
                         bool, what="the napping job to start", stall=240)
        pid = int(pid_file.read_text())
        assert _alive(pid)
        assert _cli(["terminate", napping], home, tmp_path, env).returncode == 0
        deadline = time.time() + 120
        while _alive(pid):
            assert time.time() < deadline, f"{kind}: the cancelled job's process {pid} lives on"
            time.sleep(0.5)
        status = json.loads(_cli(["status", napping, "--json"], home, tmp_path, env).stdout)
        assert status["phase"] == "Terminated", status
        _cli(["daemon", "stop"], home, tmp_path, env)

        # SIGKILL right after a submission, before its id is recorded: one run, not two
        crashed = _submit(tmp_path, home, WORKFLOW.format(
            name="conf-crash", ops='[("ok", ok)]', **fields).replace(
                '"x": 7', '"x": 9'), env={**env, **fault_env("kill-after-submit")})
        await_fault_kill(home, timeout=240)
        assert _cli(["daemon", "start"], home, tmp_path, env).returncode == 0
        final = _wait(home, tmp_path, crashed, timeout=240)
        assert final["phase"] == "Succeeded", final
        assert (shared / "runs-9").read_text() == "ran\n"
    finally:
        _cli(["daemon", "stop"], home, tmp_path, env)
        shutil.rmtree(shared, ignore_errors=True)
