"""``hpcflow doctor`` on this machine, with no service running: what it checks without a
config file (the local executor, and only the schedulers whose commands are on PATH), the
real cause of a scheduler's failure (LSF and PBS clients without their configuration or
server, a Torque ``qstat`` where PBS's is expected), ``[dispatchers.*]`` machines, a host
where no SSH server answers (one line, no traceback) and a misspelt resources key (refused
when the config file is loaded).

The schedulers' client tools here are small scripts on a PATH of the test's own (``sh``,
``rm``, ``timeout`` and ``grep`` linked in), so that what this machine has installed does not leak
in; the real Grid Engine and Slurm clients are the subject of
``tests/integration/test_doctor.py``.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_cli

#: What each stand-in tool says. Slurm's answers as a working client's; LSF's as a client
#: whose lsf.conf cannot be found; PBS's as a client whose server does not answer; Torque's
#: ``qstat --version`` (Torque is not PBS: hpcflow needs OpenPBS's ``qstat -F json``).
TOOLS = {
    "slurm": {
        "sbatch": 'echo "slurm 23.02.7"',
        "squeue": 'case "$1" in --version) echo "slurm 23.02.7";; esac',
    },
    "lsf": {
        "bjobs": 'if [ "$1" = -V ]; then echo "IBM Spectrum LSF 10.1.0.13, Mar 16 2022" >&2; '
                 "exit 0; fi\n"
                 'echo "lsb_init: initenv_:fopen(/etc/lsf.conf) failed, No such file or '
                 'directory." >&2; echo "Failed in an LSF library call: Unable to open file '
                 'lsf.conf." >&2; exit 255',
    },
    "pbs": {
        "qstat": 'if [ "$1" = --version ]; then echo "pbs_version = 22.05.11"; exit 0; fi; '
                 "exit 2",
        "qselect": 'echo "qselect: cannot connect to server pbs-head (errno=15010)" >&2; '
                   "exit 1",
    },
    "torque": {
        "qstat": 'if [ "$1" = --version ]; then printf "Version: 6.1.3\\nCommit: 1a2b3c\\n"; '
                 "exit 0; fi; exit 2",
    },
}


def tools_path(root: Path, *kinds: str) -> str:
    """A PATH with the system's ``sh``, ``rm``, ``timeout`` and ``grep`` and the stand-ins of
    ``kinds``, nothing else."""
    bin_dir = root / ("bin-" + "-".join(kinds) if kinds else "bin-none")
    bin_dir.mkdir(parents=True, exist_ok=True)
    for tool in ("sh", "rm", "timeout", "grep"):
        found = shutil.which(tool)
        assert found, f"{tool} is needed on this machine's PATH"
        if not (bin_dir / tool).exists():
            (bin_dir / tool).symlink_to(found)
    for kind in kinds:
        for name, body in TOOLS[kind].items():
            script = bin_dir / name
            script.write_text(f"#!/bin/sh\n{body}\n")
            script.chmod(0o755)
    return str(bin_dir)


def write_config(home: Path, text: str) -> Path:
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    config = home / "config.toml"
    config.write_text(text)
    config.chmod(0o600)
    return config


def lines_of(stdout: str, section: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith(f"{section}:")]


def test_without_a_config_file_only_what_is_on_path_is_checked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("PATH", tools_path(tmp_path, "slurm"))
    done = run_cli(["doctor"], home, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert f"config: ok  no config file ({home / 'config.toml'}): the defaults" in out
    mine = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert lines_of(out, "local")[1:] == [
        f"local: ok  work root {home / 'runs'} writable",
        f"local: ok  {sys.executable} is Python {mine}", "local: ok  hpcflow runner imports"]
    sbatch = tmp_path / "bin-slurm" / "sbatch"
    assert lines_of(out, "schedulers") == [
        f"schedulers: found on PATH slurm ({sbatch}); not looked at: lsf (no bjobs on PATH), "
        "pbs (no qstat on PATH), sge (no qstat on PATH)"]
    assert lines_of(out, "slurm")[:2] == ["slurm: ok  slurm commands (slurm 23.02.7)",
                                          "slurm: ok  slurmctld answers (a query for jobs)"]
    # the schedulers this machine does not have are not failures, nor "install" advice
    assert not lines_of(out, "lsf") and not lines_of(out, "pbs") and "FAIL" not in out

    monkeypatch.setenv("PATH", tools_path(tmp_path))
    bare = run_cli(["doctor"], home, tmp_path)
    assert bare.returncode == 0, bare.stdout + bare.stderr
    assert lines_of(bare.stdout, "schedulers") == [
        "schedulers: none found on PATH; not looked at: lsf (no bjobs on PATH), pbs (no qstat "
        "on PATH), sge (no qstat on PATH), slurm (no sbatch on PATH)"]
    # a machine that is not there, with no config file: says there is none, and where
    missing = run_cli(["doctor", "nope"], home, tmp_path)
    assert missing.returncode == 1 and missing.stderr == (
        f"hpcflow: no machine 'nope' (there is no config file: {home / 'config.toml'}); "
        "known: local, lsf, pbs, sge, slurm\n"), missing.stderr


def test_lsf_and_pbs_failures_name_their_cause(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    write_config(home, '[machines.lsf-hpc]\nscheduler = "lsf"\n'
                       '[machines.pbs-hpc]\nscheduler = "pbs"\n')
    monkeypatch.setenv("PATH", tools_path(tmp_path, "lsf", "pbs"))
    done = run_cli(["doctor"], home, tmp_path)
    assert done.returncode == 1
    assert lines_of(done.stdout, "lsf-hpc") == [
        "lsf-hpc: ok  lsf commands (IBM Spectrum LSF 10.1.0.13, Mar 16 2022)",
        "lsf-hpc: FAIL LSF's client on lsf-hpc (this machine) has no configuration ('bjobs "
        "-noheader -o jobid -J hpcflow-doctor-probe': lsb_init: initenv_:fopen(/etc/lsf.conf) "
        "failed, No such file or directory.): source the cluster's profile.lsf (it sets "
        "LSF_ENVDIR), for non-interactive shells too (e.g. in ~/.bashrc before its "
        "interactive-only part)"]
    assert lines_of(done.stdout, "pbs-hpc") == [
        "pbs-hpc: ok  pbs commands (pbs_version = 22.05.11)",
        "pbs-hpc: FAIL pbs-hpc (this machine) gets no answer from the PBS server ('qselect -N "
        "hpcflow-doctor-probe': qselect: cannot connect to server pbs-head (errno=15010)): is "
        "pbs_server running, and reachable from there?"]
    # a machine's scheduler is checked wherever its commands are: none of the others
    assert "schedulers:" not in done.stdout

    monkeypatch.setenv("PATH", tools_path(tmp_path, "torque"))
    torque = run_cli(["doctor", "pbs-hpc"], home, tmp_path)
    assert torque.returncode == 1
    assert lines_of(torque.stdout, "pbs-hpc") == [
        "pbs-hpc: FAIL the qstat on pbs-hpc (this machine) is Torque's (Version: 6.1.3), not "
        "PBS's: hpcflow does not drive Torque"]
    missing = run_cli(["doctor", "lsf-hpc"], home, tmp_path)
    assert lines_of(missing.stdout, "lsf-hpc") == [
        "lsf-hpc: FAIL 'bjobs' is not on the PATH on lsf-hpc (this machine): install or load "
        "the LSF client tools, for non-interactive shells too (e.g. in ~/.bashrc before its "
        "interactive-only part)"]


@pytest.fixture
def not_ssh() -> Iterator[int]:
    """The port of a TCP server that answers every connection like a web server would."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    stop = threading.Event()

    def answer() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    port = server.getsockname()[1]
    yield port
    stop.set()
    socket.create_connection(("127.0.0.1", port), timeout=30).close()  # wakes its accept()
    thread.join(timeout=30)
    server.close()


def closed_port() -> int:
    """A port where nothing listens (it was bound, then let go)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_host_that_is_no_ssh_server_is_one_line(tmp_path: Path, not_ssh: int) -> None:
    """Machines and dispatcher machines at a port where a web server answers, and at one
    where nothing listens: one FAIL line each that says so, and no traceback."""
    home = tmp_path / "home"
    closed = closed_port()
    config = ""
    for name, port in (("web", not_ssh), ("closed", closed)):
        config += (f'[machines.{name}]\nscheduler = "slurm"\nhost = "127.0.0.1"\n'
                   f'port = {port}\nwork_root = "/tmp/hpcflow-runs"\n')
        config += (f'[dispatchers.dp-{name}.machine]\nbatch_type = "Slurm"\n'
                   f'context_type = "SSHContext"\nremote_root = "/tmp/hpcflow-dp"\n'
                   f'[dispatchers.dp-{name}.machine.remote_profile]\nhostname = "127.0.0.1"\n'
                   f'port = {port}\nusername = "nobody"\n')
    write_config(home, config)
    done = run_cli(["doctor"], home, tmp_path)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "SSHException" not in done.stderr, done.stderr
    answered = (f"127.0.0.1:{not_ssh} is not an SSH server (it answered 'HTTP/1.0 400 Bad "
                "Request'; an SSH server greets with 'SSH-2.0-...')")
    refused = f"nothing listens on 127.0.0.1:{closed} (connection refused)"
    assert lines_of(done.stdout, "web") == [
        f"web: FAIL cannot reach web (127.0.0.1): {answered}: check machines.web.host and "
        "port (and HostName, Port in ~/.ssh/config)"]
    assert lines_of(done.stdout, "closed") == [
        f"closed: FAIL cannot reach closed (127.0.0.1): {refused}: check machines.closed.host "
        "and port (and HostName, Port in ~/.ssh/config), and that sshd runs there"]
    web = lines_of(done.stdout, "dp-web")
    assert web[0].startswith("dp-web: ok  dpdispatcher ") and len(web) == 2
    assert web[1] == (f"dp-web: FAIL cannot reach dp-web (127.0.0.1): {answered}: check "
                      "dispatchers.dp-web.machine.remote_profile's hostname and port (and "
                      "HostName, Port in ~/.ssh/config)")
    dp_closed = lines_of(done.stdout, "dp-closed")
    assert len(dp_closed) == 2 and f": {refused}: " in dp_closed[1]
    # one machine alone: the same line
    alone = run_cli(["doctor", "web"], home, tmp_path)
    assert alone.returncode == 1 and alone.stdout.splitlines() == lines_of(done.stdout, "web")
    assert "Traceback" not in alone.stderr


def test_a_dispatcher_machine_on_this_machine_is_checked(tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_config(home, '[dispatchers.dp-shell.machine]\nbatch_type = "Shell"\n'
                       'context_type = "LocalContext"\n')
    done = run_cli(["doctor", "dp-shell"], home, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    remote_root = home / "dispatcher" / "dp-shell" / "remote"
    mine = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert done.stdout.splitlines()[1:] == [
        "dp-shell: ok  batch_type Shell: no scheduler (jobs run as processes)",
        f"dp-shell: ok  work root {remote_root} writable",
        f"dp-shell: ok  {sys.executable} is Python {mine}",
        "dp-shell: ok  hpcflow runner imports"]
    assert os.listdir(remote_root) == []  # the check's own files are gone again
    # and the full doctor checks it too (its name is known beside the machines)
    assert "dp-shell: ok  hpcflow runner imports" in run_cli(["doctor"], home, tmp_path).stdout


def test_a_misspelt_resources_key_is_refused_when_the_config_loads(tmp_path: Path) -> None:
    home = tmp_path / "home"
    config = write_config(home, '[machines.hpc]\nscheduler = "slurm"\n'
                                '[machines.hpc.resources]\npartiton = "debug"\n')
    error = (f"{config}: unknown key partiton in [machines.hpc.resources] (did you mean "
             "partition? slurm takes partition, ")
    done = run_cli(["doctor"], home, tmp_path)
    assert done.returncode == 1
    # what does not need the config file is still checked; the config's line says why not
    # the rest
    assert lines_of(done.stdout, "store") and lines_of(done.stdout, "home")
    [line] = lines_of(done.stdout, "config")
    assert line.startswith(f"config: FAIL {error}") and line.endswith(
        "(the storage and the executors are not checked until it loads)")
    alone = run_cli(["doctor", "hpc"], home, tmp_path)
    assert alone.returncode == 1 and alone.stderr.startswith(f"hpcflow: {error}")
    # a workflow is refused at its submission, not at its first step
    (tmp_path / "wf.py").write_text('from hpcflow import Workflow\nWorkflow("w").submit()\n')
    submitted = run_cli(["submit", "wf.py"], home, tmp_path)
    assert submitted.returncode == 1 and error in submitted.stderr
    assert len(submitted.stderr.strip().splitlines()) == 1, submitted.stderr
