"""``hpcflow doctor`` against the real sshd and Slurm: a good machine passes every check,
and each broken one fails at its first problem with what to do about it."""

import sys
from pathlib import Path

from tests.conftest import run_cli
from tests.integration.test_slurm_ssh import remote_config


def test_doctor_says_what_is_wrong_and_how_to_fix_it(tmp_path: Path, ssh_env: dict,
                                                     slurm_env: dict):
    home = tmp_path / "home"
    remote_config(home, ssh_env, "good")
    config = home / "config.toml"
    good = config.read_text()
    config.write_text(
        good
        + good.replace("[machines.good]", "[machines.stranger]").replace(
            ssh_env["HPCFLOW_TEST_SSH_KNOWN_HOSTS"], str(tmp_path / "empty_known_hosts"))
        + good.replace("[machines.good]", "[machines.noroot]").replace(
            "/home/hpctest/hpcflow-runs", "/root/not-for-hpctest")
        + good.replace("[machines.good]", "[machines.oldpy]").replace(
            'python = "/usr/bin/python3"', 'python = "/usr/bin/no-such-python"'))
    done = run_cli(["doctor"], home, tmp_path)
    lines = done.stdout.splitlines()
    assert done.returncode == 1
    assert [line for line in lines if line.startswith("good:")] == [
        "good: ok  connection (host key verified)", "good: ok  slurm commands",
        "good: ok  work root /home/hpctest/hpcflow-runs writable",
        f"good: ok  /usr/bin/python3 is Python {sys.version_info[0]}.{sys.version_info[1]}",
        "good: ok  hpcflow runner imports (shipped)"]
    stranger = next(line for line in lines if line.startswith("stranger:"))
    assert "FAIL" in stranger and "ssh-keyscan -p 2222 127.0.0.1 >>" in stranger
    noroot = next(line for line in lines if line.startswith("noroot:"))
    assert "FAIL cannot write in work_root /root/not-for-hpctest" in noroot
    oldpy = next(line for line in lines if line.startswith("oldpy:"))
    assert "FAIL '/usr/bin/no-such-python' does not run" in oldpy
    assert run_cli(["doctor", "good"], home, tmp_path).returncode == 0
    missing = run_cli(["doctor", "nope"], home, tmp_path)
    assert missing.returncode == 1 and missing.stderr.startswith("hpcflow: no machine 'nope'")
