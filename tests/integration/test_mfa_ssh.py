"""A machine behind two-factor SSH (a key, then a TOTP code) through the real sshd of
tests/services/start-sshd-totp.sh (127.0.0.1:2223, user hpctest): ``hpcflow ssh login``
answered in a pseudo-terminal with ``oathtool``'s code, Slurm steps run through that one
master connection, the master ended mid-workflow (steps wait, nothing fails, status says
to log in again), the next login resumes the workflow without restarting the daemon; no
login at all is one line naming the command; unknown and changed host keys are refused."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hpcflow.connectors.executors.registry import openssh_target
from hpcflow.connectors.transports.openssh import (
    NoLoginError,
    OpenSSHTransport,
    control_argv,
    master_alive,
)
from tests.conftest import integrity_ok, run_cli, wait_until
from tests.integration.flows import steps as _steps
from tests.integration.flows import submit as _submit
from tests.integration.flows import wait as _wait

MACHINE = "mfa"


def config(home: Path, env: dict, known_hosts: str | None = None) -> None:
    home.mkdir(mode=0o700, exist_ok=True)
    (home / "config.toml").write_text(f"""
[machines.{MACHINE}]
scheduler = "slurm"
transport = "openssh"
host = "{env['HPCFLOW_TEST_SSH_TOTP_HOST']}"
port = {env['HPCFLOW_TEST_SSH_TOTP_PORT']}
user = "{env['HPCFLOW_TEST_SSH_TOTP_USER']}"
key_filename = "{env['HPCFLOW_TEST_SSH_TOTP_KEY']}"
known_hosts = "{known_hosts or env['HPCFLOW_TEST_SSH_TOTP_KNOWN_HOSTS']}"
work_root = "/home/{env['HPCFLOW_TEST_SSH_TOTP_USER']}/hpcflow-mfa-runs"
python = "/usr/bin/python3"
min_poll_interval = 0.5
max_poll_interval = 2
""")


def totp(env: dict) -> str:
    secret = Path(env["HPCFLOW_TEST_SSH_TOTP_SECRET"]).read_text().strip()
    return subprocess.run(["oathtool", "--totp", "-b", secret], capture_output=True,
                          text=True, check=True).stdout.strip()


def login(home: Path, cwd: Path, env: dict, timeout: float = 60) -> tuple[int, str]:
    """``hpcflow ssh login mfa`` in a pseudo-terminal, as a user types it: the code is
    answered when asked. (exit status, everything it printed)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the command on the terminal
        os.chdir(cwd)
        os.environ["HPCFLOW_HOME"] = str(home)
        os.execv(sys.executable, [sys.executable, "-m", "hpcflow.cli.main", "ssh", "login",
                                  MACHINE])
    said, answered, status = b"", False, None
    deadline = time.monotonic() + timeout
    try:
        # the master stays in the background on the terminal: wait for the command, not EOF
        while status is None:
            assert time.monotonic() < deadline, f"ssh login hangs; it said: {said!r}"
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                with contextlib.suppress(OSError):  # the terminal closed
                    said += os.read(fd, 4096)
            if not answered and b"Verification code:" in said:
                os.write(fd, (totp(env) + "\n").encode())
                answered = True
            done, code = os.waitpid(pid, os.WNOHANG)
            if done:
                status = os.waitstatus_to_exitcode(code)
        while select.select([fd], [], [], 0.2)[0]:  # the last lines
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            said += chunk
    finally:
        os.close(fd)
    return status, said.decode(errors="replace")


def logout_raw(home: Path, env: dict) -> None:
    """End the master as ``ssh -O exit`` does (the user, a reboot, a site's time limit)."""
    from hpcflow.config_file import load_config

    target = openssh_target(load_config(home).machines[MACHINE], home)
    subprocess.run(control_argv(target, "exit"), capture_output=True, check=True, timeout=30)


def transport(home: Path) -> OpenSSHTransport:
    from hpcflow.config_file import load_config

    return OpenSSHTransport(openssh_target(load_config(home).machines[MACHINE], home))


CHAIN = '''
from hpcflow import Step, Workflow, SlurmExecutor
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def add(x: int, nap: float) -> {"y": int}:
    import time
    time.sleep(nap)
    return {"y": x + 1}

run = SlurmExecutor(machine="mfa", partition="debug", time="0:10:00")
wf = Workflow("mfa-chain")
a = Step("a", PythonOPTemplate(add), parameters={"x": 1, "nap": 0}, executor=run)
wf.add(a)
b = Step("b", PythonOPTemplate(add), parameters={"x": a.outputs.parameters["y"], "nap": 25},
         executor=run)
wf.add(b)
c = Step("c", PythonOPTemplate(add), parameters={"x": b.outputs.parameters["y"], "nap": 0},
         executor=run)
wf.add(c)
wf.submit()
'''


#: The Slurm of the tests is shared: others' jobs may hold ours in its queue for minutes.
QUEUE_WAIT = 900


@pytest.mark.timeout(4 * QUEUE_WAIT)
def test_login_with_a_code_then_the_daemon_rides_on_it(tmp_path: Path, totp_env: dict):
    home = tmp_path / "home"
    config(home, totp_env)
    try:  # the master is ended whatever happens
        code, said = login(home, tmp_path, totp_env)
        assert code == 0, said
        assert "Verification code:" in said and f"logged in to {MACHINE}" in said, said
        assert oct((home / "ssh").stat().st_mode & 0o777) == "0o700"
        ssh = transport(home)
        # commands and files through the master: arguments reach the remote shell quoted
        done = ssh.run(["sh", "-c", 'echo "$0 $1"; echo oops >&2; exit 3', "a b", "$HOME;x"])
        assert (done.returncode, done.stdout, done.stderr) == (3, "a b $HOME;x\n", "oops\n")
        assert ssh.run(["sh", "-c", "exit 255"]).returncode == 255  # a command's own 255
        assert ssh.run(["sbatch", "--version"]).ok  # SLURM_CONF reaches the sessions
        folder = f"/home/{totp_env['HPCFLOW_TEST_SSH_TOTP_USER']}/hpcflow-mfa-test/a b/c"
        ssh.write_files(folder, {"x.txt": b"hello\n" * 1000, "sub/y.bin": bytes(range(256))})
        assert ssh.read_file(f"{folder}/sub/y.bin") == bytes(range(256))
        assert ssh.read_file(f"{folder}/x.txt", max_bytes=6) == b"hello\n"
        assert ssh.read_file(f"{folder}/missing") is None
        assert ssh.list_files(folder) == [f"{folder}/sub/y.bin", f"{folder}/x.txt"]
        assert ssh.list_files(f"{folder}/nothing") == []
        mode = ssh.run(["stat", "-c", "%a", f"{folder}/x.txt"]).stdout.strip()
        assert mode == "600"
        ssh.run(["rm", "-rf", os.path.dirname(os.path.dirname(folder))])

        wf = _submit(tmp_path, home, CHAIN)

        def phases() -> dict[str, str]:
            return {name: s["phase"] for name, s in _steps(home, tmp_path, wf).items()}

        # a ran through the master; b's job is in Slurm (queued or running)
        wait_until(lambda: phases().get("b") in ("Pending", "Running")
                   and not _no_live_slurm_job(wf), "step b's job", timeout=QUEUE_WAIT)
        logout_raw(home, totp_env)  # the master ends mid-workflow
        hint = f"log in again with `hpcflow ssh login {MACHINE}`"

        def told() -> bool:
            status = run_cli(["status"], home, tmp_path)
            daemon = run_cli(["daemon", "status"], home, tmp_path)
            return hint in status.stderr and hint in daemon.stdout
        wait_until(told, "status and daemon status to say how to log in again", timeout=120)
        status = run_cli(["status"], home, tmp_path)
        assert f"hpcflow: machine {MACHINE} unreachable since " in status.stderr, status.stderr
        as_json = json.loads(run_cli(["daemon", "status", "--json"], home, tmp_path).stdout)
        assert hint in as_json["unreachable"][MACHINE]["reason"]
        # steps wait: b's job runs on in Slurm, c waits for it; nothing failed
        now = phases()
        assert now["a"] == "Succeeded" and now.get("b") in ("Running", "Pending"), now
        assert json.loads(run_cli(["status", wf, "--json"], home, tmp_path).stdout)[
            "phase"] == "Running"
        # b's job ends while nobody is logged in: still no failure, c is not started
        wait_until(lambda: _no_live_slurm_job(wf), "b's job to end in Slurm",
                   timeout=QUEUE_WAIT)
        assert "c" not in phases() or phases()["c"] == "Pending", phases()
        assert hint in run_cli(["status"], home, tmp_path).stderr

        code, said = login(home, tmp_path, totp_env)  # the daemon goes on by itself
        assert code == 0, said
        final = _wait(home, tmp_path, wf, timeout=QUEUE_WAIT)
        assert final["phase"] == "Succeeded", final
        done_steps = _steps(home, tmp_path, wf)
        assert done_steps["c"]["outputs"]["parameters"]["y"] == 4
        assert {s["attempt"] for s in done_steps.values() if s["name"] in "abc"} == {0}
        wait_until(lambda: hint not in run_cli(["status"], home, tmp_path).stderr,
                   "the unreachable line to go", timeout=60)
        assert not (home / "runs").exists()  # everything ran in hpctest's work root
        assert integrity_ok(home)
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)
        run_cli(["ssh", "logout", MACHINE], home, tmp_path)


def _no_live_slurm_job(wf: str) -> bool:
    out = subprocess.run(["squeue", "-h", "-o", "%j"], capture_output=True, text=True).stdout
    return not any(name.startswith(f"hpcflow-{wf}-") for name in out.split())


def test_without_a_login_one_line_names_the_command(tmp_path: Path, totp_env: dict):
    home = tmp_path / "home"
    config(home, totp_env)
    hint = f"log in again with `hpcflow ssh login {MACHINE}`"
    with pytest.raises(NoLoginError) as caught:
        transport(home).run(["true"])
    assert str(caught.value) == (f"no SSH login to {MACHINE} "
                                 f"({totp_env['HPCFLOW_TEST_SSH_TOTP_HOST']}): {hint}")
    # a socket left by a master that died: no fresh connection behind the user's back
    (home / "ssh").mkdir(mode=0o700)
    (home / "ssh" / MACHINE).write_text("")
    with pytest.raises(NoLoginError):
        transport(home).run(["true"])
    doctor = run_cli(["doctor", MACHINE], home, tmp_path)
    assert doctor.returncode == 1 and hint in doctor.stdout + doctor.stderr, doctor
    assert "Traceback" not in doctor.stdout + doctor.stderr
    # a machine reached with paramiko has no login to make
    (home / "config.toml").write_text((home / "config.toml").read_text().replace(
        'transport = "openssh"', 'transport = "paramiko"'))
    refused = run_cli(["ssh", "login", MACHINE], home, tmp_path)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1, refused.stderr
    assert 'transport = "openssh"' in refused.stderr


@pytest.mark.parametrize("kind", ["unknown", "changed"])
def test_a_wrong_host_key_is_refused(tmp_path: Path, totp_env: dict, kind: str):
    known = tmp_path / "known_hosts"
    if kind == "unknown":
        known.write_text("")
    else:  # another server's key under this server's name
        other = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                                str(tmp_path / "other")], check=True)
        assert other.returncode == 0
        key = (tmp_path / "other.pub").read_text().split()[:2]
        port = totp_env["HPCFLOW_TEST_SSH_TOTP_PORT"]
        known.write_text(f"[127.0.0.1]:{port} {' '.join(key)}\n")
    before = known.read_text()
    home = tmp_path / "home"
    config(home, totp_env, known_hosts=str(known))
    code, said = login(home, tmp_path, totp_env)
    assert code == 1, said
    assert "Verification code:" not in said  # refused before any credential went out
    assert "Host key verification failed" in said, said
    if kind == "changed":
        assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in said, said
    assert f"hpcflow: login to {MACHINE} (127.0.0.1) failed" in said, said
    assert known.read_text() == before  # nothing trusted on first use
    from hpcflow.config_file import load_config

    assert not master_alive(openssh_target(load_config(home).machines[MACHINE], home))
