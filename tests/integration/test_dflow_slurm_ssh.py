"""dflow's ``SlurmRemoteExecutor`` and ``RemoteExecutor``, written as dflow's own example
(examples/test_slurm.py) writes them, against the real sshd of tests/services (user hpctest)
and the real Slurm behind it. The machine comes from the executor's arguments, not the config
file; its host key is checked against the daemon user's ~/.ssh/known_hosts (HOME here is a
directory of the test's holding the test sshd's key)."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import run_cli
from tests.integration.flows import steps as _steps
from tests.integration.flows import submit as _submit
from tests.integration.flows import wait as _wait

# dflow's examples/test_slurm.py, with the test sshd's coordinates
SLURM_SLICES = '''
from typing import List

from hpcflow import SlurmRemoteExecutor, RemoteExecutor, ShellOPTemplate, Step, Workflow, \\
    argo_range, OutputParameter
from hpcflow.python import OP, OPIO, Artifact, OPIOSign, PythonOPTemplate, Slices


class Hello(OP):
    def __init__(self):
        pass

    @classmethod
    def get_input_sign(cls):
        return OPIOSign({'filename': str})

    @classmethod
    def get_output_sign(cls):
        return OPIOSign({'foo': Artifact(str)})

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        import os
        open(op_in["filename"], "w").write("foo from " + os.environ.get("SLURM_JOB_ID", "?"))
        return OPIO({'foo': op_in["filename"]})


class Check(OP):
    def __init__(self):
        pass

    @classmethod
    def get_input_sign(cls):
        return OPIOSign({'foo': Artifact(List[str])})

    @classmethod
    def get_output_sign(cls):
        return OPIOSign({'texts': List[str]})

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        texts = []
        for filename in op_in["foo"]:
            with open(filename, "r") as f:
                texts.append(f.read())
        return OPIO({'texts': texts})


slurm_remote_executor = SlurmRemoteExecutor(
    host="HOST",
    port=PORT,
    username="USER",
    private_key_file="KEY",
    header="#!/bin/bash\\n#SBATCH -N 1\\n#SBATCH -n 1\\nexport GREETING=hello-from-header\\n",
    workdir="/home/USER/dflow/workflows/{{workflow.name}}/{{pod.name}}",
)
remote = RemoteExecutor(host="HOST", port=PORT, username="USER", private_key_file="KEY")
whoami = ShellOPTemplate(name="whoami", image="alpine:3.19",
                         script="echo $(whoami) ${SLURM_JOB_ID:-no-slurm} $GREETING "
                                "> /tmp/who.txt; pwd > /tmp/where.txt")
whoami.outputs.parameters = {"who": OutputParameter(value_from_path="/tmp/who.txt"),
                             "where": OutputParameter(value_from_path="/tmp/where.txt")}

wf = Workflow("slurm-slices")
hello = Step("hello",
             PythonOPTemplate(Hello,
                              slices=Slices("{{item}}",
                                            input_parameter=["filename"],
                                            output_artifact=["foo"]
                                            )
                              ),
             parameters={"filename": ["f1.txt", "f2.txt"]},
             with_param=argo_range(2),
             key="hello-{{item}}",
             executor=slurm_remote_executor)
wf.add(hello)
check = Step("check",
             PythonOPTemplate(Check, image="python:3.8"),
             artifacts={"foo": hello.outputs.artifacts["foo"]})
wf.add(check)
wf.add([Step("in-job", whoami, executor=slurm_remote_executor),
        Step("as-process", whoami, executor=remote)])
wf.submit()
'''


def _script(text: str, ssh_env: dict) -> str:
    for word, key in (("HOST", "HOST"), ("PORT", "PORT"), ("USER", "USER"), ("KEY", "KEY")):
        text = text.replace(word, ssh_env[f"HPCFLOW_TEST_SSH_{key}"])
    return text


def _daemon_home(tmp_path: Path, ssh_env: dict) -> dict:
    """HOME for the daemon: its ~/.ssh/known_hosts holds the test sshd's key."""
    user_home = tmp_path / "user"
    (user_home / ".ssh").mkdir(parents=True, mode=0o700, exist_ok=True)
    shutil.copy(ssh_env["HPCFLOW_TEST_SSH_KNOWN_HOSTS"], user_home / ".ssh" / "known_hosts")
    return {"HOME": str(user_home)}


def test_dflow_slurm_example_runs_as_slurm_jobs_over_ssh(tmp_path: Path, ssh_env: dict,
                                                        slurm_env: dict):
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    wf_id = _submit(tmp_path, home, _script(SLURM_SLICES, ssh_env),
                    env=_daemon_home(tmp_path, ssh_env))
    try:
        final = _wait(home, tmp_path, wf_id)
        assert final["phase"] == "Succeeded", final
        steps = _steps(home, tmp_path, wf_id)
        texts = steps["check"]["outputs"]["parameters"]["texts"]
        assert len(texts) == 2 and all(re.fullmatch(r"foo from \d+", t) for t in texts), texts
        who, job, greeting = steps["in-job"]["outputs"]["parameters"]["who"].split()
        assert (who, greeting) == ("hpctest", "hello-from-header") and job.isdigit()
        where = steps["in-job"]["outputs"]["parameters"]["where"].strip()
        assert where.startswith(f"/home/hpctest/dflow/workflows/{wf_id}/"), where
        # RemoteExecutor: a plain process over SSH, no Slurm job; dflow's default workdir
        # (~/dflow/workflows/...) found under the remote user's home
        assert steps["as-process"]["outputs"]["parameters"]["who"].split() == \
            ["hpctest", "no-slurm"]
        where = steps["as-process"]["outputs"]["parameters"]["where"].strip()
        assert where.startswith(f"/home/hpctest/dflow/workflows/{wf_id}/"), where
        # every SlurmRemoteExecutor step was a Slurm job of hpctest, with the header's -n 1
        text = Path(slurm_env["HPCFLOW_TEST_SLURM_JOBCOMP"]).read_text()
        jobs = re.findall(rf"UserId=(\w+)\(\d+\) GroupId=\S+ Name=hpcflow-{wf_id}-", text)
        assert jobs == ["hpctest"] * 3, jobs
        # `hpcflow logs` reads the job's output over SSH, from the machine the script described
        done = subprocess.run([sys.executable, "-m", "hpcflow.cli.main", "logs", wf_id,
                               "in-job", "--json"], cwd=tmp_path, capture_output=True,
                              text=True, env=dict(os.environ, HPCFLOW_HOME=str(home),
                                                  **_daemon_home(tmp_path, ssh_env)))
        assert done.returncode == 0, done.stderr
        logs = json.loads(done.stdout)
        assert re.fullmatch(rf"ssh-slurm-[0-9a-f]{{12}}:/home/hpctest/dflow/workflows/{wf_id}/"
                            r"\S+/log\.txt", logs["path"]), logs["path"]
        assert "running in image" not in logs["log"]  # no container: the image is dflow's pod's
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)


PASSWORD_ONLY = '''
from hpcflow import SlurmRemoteExecutor, ShellOPTemplate, Step, Workflow

wf = Workflow("by-password")
wf.add(Step("hello", ShellOPTemplate(name="hello", script="echo hi"),
            executor=SlurmRemoteExecutor(host="HOST", port=PORT, username="USER",
                                         password="pw-never-in-the-store-7Qx")))
wf.submit()
'''


def test_a_password_is_kept_out_of_the_store_and_a_refusal_is_one_line(tmp_path: Path,
                                                                      ssh_env: dict):
    """The test sshd takes keys only: the password goes to sshd (and is refused), and the
    step fails saying so; the store and the job files never hold the password."""
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    wf_id = _submit(tmp_path, home, _script(PASSWORD_ONLY, ssh_env),
                    env=_daemon_home(tmp_path, ssh_env))
    try:
        assert _wait(home, tmp_path, wf_id, timeout=60)["phase"] == "Failed"
        reason = _steps(home, tmp_path, wf_id)["hello"]["reason"]
        assert "ssh to hpctest@127.0.0.1:2222 refused the credentials" in reason, reason
        secret = b"pw-never-in-the-store-7Qx"
        for path in home.rglob("*"):
            if path.is_file() and path.parent.name != "secrets":
                assert secret not in path.read_bytes(), path
        stashed = [p for p in (home / "secrets").glob("*.json")]
        assert len(stashed) == 1 and oct(stashed[0].stat().st_mode & 0o777) == "0o600"
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)


def test_an_unknown_host_key_is_refused_in_one_line(tmp_path: Path, ssh_env: dict):
    """No known_hosts entry for the host: nothing is trusted on first use."""
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    empty = tmp_path / "user"
    (empty / ".ssh").mkdir(parents=True)
    wf_id = _submit(tmp_path, home, _script(PASSWORD_ONLY, ssh_env).replace(
        'password="pw-never-in-the-store-7Qx"', 'private_key_file="KEY"').replace(
        "KEY", ssh_env["HPCFLOW_TEST_SSH_KEY"]), env={"HOME": str(empty)})
    try:
        assert _wait(home, tmp_path, wf_id, timeout=60)["phase"] == "Failed"
        reason = _steps(home, tmp_path, wf_id)["hello"]["reason"]
        assert "is not in" in reason and "ssh-keyscan -p 2222 127.0.0.1 >>" in reason, reason
        assert not (empty / ".ssh" / "known_hosts").exists()
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)
