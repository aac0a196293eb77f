"""Smoke checks of the real services started by ``tests/services/up.sh``."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import paramiko
import pytest


def _ssh_client(ssh_env: dict[str, str], known_hosts: str) -> paramiko.SSHClient:
    """Connect with the test key, trusting only the host keys in ``known_hosts``."""
    client = paramiko.SSHClient()
    client.load_host_keys(known_hosts)  # only this file: no system or user known_hosts
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(
            ssh_env["HPCFLOW_TEST_SSH_HOST"],
            port=int(ssh_env["HPCFLOW_TEST_SSH_PORT"]),
            username=ssh_env["HPCFLOW_TEST_SSH_USER"],
            key_filename=ssh_env["HPCFLOW_TEST_SSH_KEY"],
            allow_agent=False,
            look_for_keys=False,
            timeout=10,
            banner_timeout=10,
            auth_timeout=10,
        )
    except BaseException:
        client.close()
        raise
    return client


def test_slurm_runs_a_job(slurm_env: dict[str, str], tmp_path: Path) -> None:
    env = dict(os.environ, SLURM_CONF=slurm_env["SLURM_CONF"])
    out = subprocess.run(
        ["sbatch", "--parsable", "-o", str(tmp_path / "out-%j.txt"), "--wrap", "echo hi"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30, check=True,
    ).stdout
    job_id = out.strip().split(";")[0]
    deadline = time.monotonic() + 60
    state = ""
    while time.monotonic() < deadline:
        state = subprocess.run(
            ["squeue", "-h", "-t", "all", "-j", job_id, "-o", "%T"],
            env=env, capture_output=True, text=True, timeout=30,
        ).stdout.strip()
        if state in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"):
            break
        time.sleep(0.2)
    assert state == "COMPLETED", f"job {job_id} ended as {state!r} (or did not finish in 60 s)"
    assert (tmp_path / f"out-{job_id}.txt").read_text().strip() == "hi"


def test_ssh_login_node(ssh_env: dict[str, str], slurm_env: dict[str, str]) -> None:
    client = _ssh_client(ssh_env, ssh_env["HPCFLOW_TEST_SSH_KNOWN_HOSTS"])
    try:
        # Slurm commands, even `sbatch --version`, fail without a config: SLURM_CONF must come
        # from sshd's SetEnv, like on a real login node.
        _, stdout, stderr = client.exec_command('sbatch --version && echo "$SLURM_CONF"',
                                                timeout=30)
        rc = stdout.channel.recv_exit_status()
        out, err = stdout.read().decode(), stderr.read().decode()
    finally:
        client.close()
    assert rc == 0, f"remote sbatch --version failed ({rc}): {err}"
    version, conf = out.strip().splitlines()
    assert version.startswith("slurm"), out
    assert conf == slurm_env["SLURM_CONF"], f"SLURM_CONF in ssh sessions: {conf!r}"


def test_ssh_rejects_unknown_host(ssh_env: dict[str, str], tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(paramiko.SSHException):
        _ssh_client(ssh_env, str(empty))
