"""hpcflow's batch jobs on a shared machine, with real accounts (``tests/accounts.py``) and
the real one-node Slurm: a Slurm job of ``hfalice``'s, submitted with umask 000 and
credentials in the daemon's environment (sbatch's default ``--export=ALL`` hands the job
the submitter's environment), leaves only private files in its work root, sees no
credential, and shows ``hfmallory``'s ``ps`` no workflow id or parameter value. Also:
dpdispatcher's own SSH session checks the host key before it authenticates."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.accounts import USERS_VENV, loose_entries, shared_machine

SECRETS = {"BOHRIUM_PASSWORD": "bohr-secret-1", "AWS_SECRET_ACCESS_KEY": "aws-secret-1",
           "AWS_SESSION_TOKEN": "aws-token-1"}


def test_a_slurm_job_of_one_account_as_another_sees_it(slurm_env) -> None:
    with shared_machine() as (alice, mallory, _):
        home, work = alice.home / ".hpcflow", alice.home / "work"
        work_root = alice.home / "slurm-work"
        assert alice.run(["mkdir", str(work)]).returncode == 0
        go = work / "go"
        value = f"pv{os.getpid()}"
        (alice.home / "config.toml").write_text(
            f'[machines.slurm]\nscheduler = "slurm"\npython = "{USERS_VENV}/bin/python"\n'
            f'work_root = "{work_root}"\n')
        os.chown(alice.home / "config.toml", alice.uid, alice.gid)
        os.chmod(alice.home / "config.toml", 0o600)
        script = work / "job.py"
        script.write_text(
            "from hpcflow import SlurmExecutor, Step, Workflow\n"
            "from hpcflow.python import OP, PythonOPTemplate\n"
            "@OP.function\n"
            "def probe(value: str, go: str) -> {'names': list, 'values': str}:\n"
            "    import os, time, pathlib\n"
            "    pathlib.Path(go + '.started').touch()\n"
            "    deadline = time.time() + 300\n"
            "    while not pathlib.Path(go).exists() and time.time() < deadline:\n"
            "        time.sleep(0.2)\n"
            "    return {'names': sorted(os.environ), 'values': '\\n'.join(os.environ.values())}\n"
            "wf = Workflow(name='shared-slurm')\n"
            "wf.add(Step('probe', PythonOPTemplate(probe), parameters={'value': "
            f"'{value}', 'go': '{go}'}}, executor=SlurmExecutor(partition='debug', "
            "time='0:10:00')))\n"
            "wf.submit()\n"
            "print(wf.id)\n")
        os.chmod(script, 0o644)
        env = alice.env(HPCFLOW_HOME=str(home), HPCFLOW_CONFIG=str(alice.home / "config.toml"),
                        **SECRETS)
        done = alice.run([str(USERS_VENV / "bin" / "python"), str(script)], env=env, cwd=work,
                         umask=0)
        assert done.returncode == 0, done.stdout + done.stderr
        wf_id = done.stdout.strip().splitlines()[-1]
        try:
            deadline = time.time() + 240
            while not Path(f"{go}.started").exists():
                assert time.time() < deadline, "the Slurm job never started"
                time.sleep(0.3)
            seen = mallory.run(["ps", "-eo", "args"]).stdout
            assert "hpcflow.daemon.runner" in seen, seen  # the job's runner is listed...
            assert wf_id not in seen and value not in seen, seen  # ...not what it runs
            go.touch()
            done = alice.hpcflow(["status", wf_id, "--watch"], env=env, timeout=300)
            assert done.returncode == 0, done.stdout + done.stderr
            shown = alice.hpcflow(["steps", wf_id, "--json"], env=env)
            assert shown.returncode == 0, shown.stderr
            probe = next(s for s in json.loads(shown.stdout) if s["name"] == "probe")
            names = probe["outputs"]["parameters"]["names"]
            values = probe["outputs"]["parameters"]["values"]
            assert "SLURM_JOB_ID" in names  # it ran as a Slurm job
            for name, secret in SECRETS.items():
                assert name not in names and secret not in values
            assert loose_entries(work_root) == [] and loose_entries(home) == []
        finally:
            go.touch()
            alice.hpcflow(["daemon", "stop"], env=env)


def test_dpdispatchers_own_ssh_session_checks_the_host_key(ssh_env, tmp_path) -> None:
    """dpdispatcher's SSHSession authenticates on a Transport it makes itself; hpcflow's
    install() makes that connection compare the offered key with known_hosts first."""
    from hpcflow.connectors.executors import dispatcher_ssh
    from hpcflow.connectors.executors.dispatcher import import_dpdispatcher
    from hpcflow.connectors.transports.ssh import HostKeyError

    import_dpdispatcher(tmp_path)  # installs the check
    from dpdispatcher.contexts import ssh_context

    host, port = ssh_env["HPCFLOW_TEST_SSH_HOST"], int(ssh_env["HPCFLOW_TEST_SSH_PORT"])
    profile = {"hostname": host, "port": port, "username": ssh_env["HPCFLOW_TEST_SSH_USER"],
               "key_filename": ssh_env["HPCFLOW_TEST_SSH_KEY"], "timeout": 10}
    real = Path(ssh_env["HPCFLOW_TEST_SSH_KNOWN_HOSTS"]).read_text()
    unknown, changed = tmp_path / "unknown", tmp_path / "changed"
    unknown.write_text("")
    # the same host with another key of the same type (made up: a man in the middle)
    line = next(x for x in real.splitlines() if x.strip())
    name, kind, _ = line.split()[:3]
    import paramiko

    other = paramiko.Ed25519Key.from_private_key_file(str(_new_key(tmp_path)))
    changed.write_text(f"{name} {kind} {other.get_base64()}\n")
    for known, words in ((unknown, "is not in"), (changed, "has CHANGED")):
        dispatcher_ssh.register_host(host, port, str(known), False)
        with pytest.raises(HostKeyError, match=words):
            ssh_context.SSHSession(**profile)
    assert unknown.read_text() == ""  # nothing trusted behind the user's back
    dispatcher_ssh.register_host(host, port, ssh_env["HPCFLOW_TEST_SSH_KNOWN_HOSTS"], False)
    session = ssh_context.SSHSession(**profile)
    assert session.ssh is not None and session.ssh.get_transport().is_active()
    session.ssh.close()


def _new_key(folder: Path) -> Path:
    import subprocess

    path = folder / "other_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
                   check=True)
    return path
