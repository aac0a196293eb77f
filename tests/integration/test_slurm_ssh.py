"""Steps as Slurm jobs submitted over SSH (the real sshd of tests/services, as user hpctest,
with the real one-node Slurm behind it), as from a workstation: the machine does not share
the daemon's files, so inputs and outputs are relayed and hpcflow's runner is shipped as a
zip (the machine's own /usr/bin/python3 runs it; hpcflow is not installed there)."""

import re
from pathlib import Path

from tests.conftest import integrity_ok, run_cli
from tests.integration.test_slurm_local import FAILING, PIPELINE, _steps, _submit, _wait


def remote_config(home: Path, ssh_env: dict, name: str = "remote") -> None:
    home.mkdir(mode=0o700, exist_ok=True)
    (home / "config.toml").write_text(f"""
[machines.{name}]
scheduler = "slurm"
host = "{ssh_env['HPCFLOW_TEST_SSH_HOST']}"
port = {ssh_env['HPCFLOW_TEST_SSH_PORT']}
user = "{ssh_env['HPCFLOW_TEST_SSH_USER']}"
key_filename = "{ssh_env['HPCFLOW_TEST_SSH_KEY']}"
known_hosts = "{ssh_env['HPCFLOW_TEST_SSH_KNOWN_HOSTS']}"
work_root = "/home/{ssh_env['HPCFLOW_TEST_SSH_USER']}/hpcflow-runs"
python = "/usr/bin/python3"
min_poll_interval = 0.5
max_poll_interval = 2
""")


def over_ssh(script: str) -> str:
    return script.replace("SlurmExecutor(", 'SlurmExecutor(machine="remote", ')


def test_a_workflow_over_ssh(tmp_path: Path, ssh_env: dict, slurm_env: dict):
    home = tmp_path / "home"
    remote_config(home, ssh_env)
    wf_id = _submit(tmp_path, home, over_ssh(PIPELINE))
    failing = _submit(tmp_path, home, over_ssh(FAILING))
    try:
        final = _wait(home, tmp_path, wf_id)
        assert final["phase"] == "Succeeded", final
        steps = _steps(home, tmp_path, wf_id)
        assert steps["count"]["outputs"]["parameters"]["lines"] == 4
        assert steps["square"]["outputs"]["parameters"]["y"] == [i * i for i in range(20)]
        # the jobs ran as hpctest, in its work root, not in the daemon's home
        assert not (home / "runs").exists()
        text = Path(slurm_env["HPCFLOW_TEST_SLURM_JOBCOMP"]).read_text()
        users = set(re.findall(rf"UserId=(\w+)\(\d+\) GroupId=\S+ Name=hpcflow-{wf_id}-", text))
        assert users == {"hpctest"}, users
        # the output artifact came back into the daemon's storage
        assert list((home / "artifacts" / "wf" / wf_id).rglob("*"))
        assert _wait(home, tmp_path, failing)["phase"] == "Failed"
        broken = _steps(home, tmp_path, failing)["broken"]
        assert broken["reason"] == "ValueError: cannot handle 7"
        assert "ValueError: cannot handle 7" in (broken["log_tail"] or "")
        assert integrity_ok(home)
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)


def test_an_unknown_host_key_fails_the_steps_with_how_to_trust_it(tmp_path: Path,
                                                                  ssh_env: dict):
    home = tmp_path / "home"
    remote_config(home, {**ssh_env, "HPCFLOW_TEST_SSH_KNOWN_HOSTS": str(tmp_path / "empty")})
    wf_id = _submit(tmp_path, home, over_ssh(FAILING))
    try:
        assert _wait(home, tmp_path, wf_id, timeout=60)["phase"] == "Failed"
        reason = _steps(home, tmp_path, wf_id)["broken"]["reason"]
        assert "is not in" in reason and "ssh-keyscan -p 2222 127.0.0.1 >>" in reason, reason
        log = (home / "logs" / "daemon.log").read_text()
        assert "engine cycle failed" not in log  # refused cleanly, not through an error
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)
