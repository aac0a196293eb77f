"""One home seen from several login nodes (``$HOME`` on NFS/GPFS/Lustre): one leader host
runs the engine, the others do not, and a leader that loses its lease writes nothing more.

Each "login node" is a process with a hostname of its own (``unshare --uts``, root only)
against the same home, on a local disk and on a FUSE mount (bindfs), where hpcflow uses the
rollback journal. A chain of steps, each appending its name to a ledger, runs across a
takeover: the leader is stopped (SIGSTOP), the standby on the other node takes over when
the lease expires, the old leader is resumed (SIGCONT) and finds itself fenced; every step
ran once."""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

LEASE = 4.0
STEPS = 16

CHAIN = '''
from hpcflow import Step, Workflow
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def step(x: int, ledger: str, name: str) -> {{"y": int}}:
    import os, time
    fd = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.write(fd, (name + "\\n").encode())
    os.close(fd)
    time.sleep(0.4)
    return {{"y": x + 1}}

wf = Workflow("across-nodes")
prev = None
for i in range({steps}):
    prev = Step(f"s{{i}}", PythonOPTemplate(step),
                parameters={{"x": prev.outputs.parameters["y"] if prev else 0,
                             "ledger": {ledger!r}, "name": f"s{{i}}"}})
    wf.add(prev)
wf.submit()
print(wf.id)
'''


def _need_unshare() -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare: each login node is a UTS namespace")


def _on(node: str, argv: list[str]) -> list[str]:
    return ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', node, *argv]


def _env(home: Path) -> dict[str, str]:
    return dict(os.environ, HPCFLOW_HOME=str(home), HPCFLOW_ENGINE_IDLE_EXIT="300")


def _hpcflow(node: str, home: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(_on(node, [sys.executable, "-m", "hpcflow.cli.main", *args]),
                          env=_env(home), cwd=cwd, capture_output=True, text=True, timeout=300)


def _daemon(node: str, home: Path, log: Path) -> subprocess.Popen:
    with open(log.with_suffix(".out"), "ab") as out:
        return subprocess.Popen(
            _on(node, [sys.executable, "-m", "hpcflow.daemon.process", "--home", str(home),
                       "--log-file", str(log)]),
            env=_env(home), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _wait(check, what: str, timeout: float = 180.0) -> None:
    deadline = time.time() + timeout
    while not check():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _lease(home: Path) -> dict:
    epochs = sorted((int(p.name[6:]) for p in (home / "leader").glob("epoch-*")), reverse=True)
    for epoch in epochs:
        try:
            return {"epoch": epoch, **json.loads((home / "leader" / f"epoch-{epoch}").read_text())}
        except ValueError:
            continue
    return {}


@pytest.fixture(params=["local-disk", "fuse"])
def shared_home(request, tmp_path):
    """A home on the local disk, or on a bindfs (FUSE) mount of it."""
    _need_unshare()
    if request.param == "local-disk":
        yield tmp_path / "home", False
        return
    if shutil.which("bindfs") is None:
        pytest.fail("bindfs is missing: tests/services/up.sh installs it (apt-get install "
                    "bindfs)", pytrace=False)
    source, mount = tmp_path / "source", tmp_path / "mount"
    source.mkdir()
    mount.mkdir()
    subprocess.run(["bindfs", "--no-allow-other", str(source), str(mount)], check=True)
    try:
        yield mount / "home", True
    finally:
        subprocess.run(["fusermount", "-u", "-z", str(mount)], capture_output=True)


def test_one_leader_across_login_nodes_and_a_takeover(shared_home, tmp_path) -> None:
    home, on_fuse = shared_home
    home.mkdir(mode=0o700)
    (home / "config.toml").write_text(f"[daemon]\nlease_seconds = {LEASE}\n")
    os.chmod(home / "config.toml", 0o600)
    ledger = tmp_path / "ledger"
    script = tmp_path / "chain.py"
    script.write_text(CHAIN.format(steps=STEPS, ledger=str(ledger)))
    first = _daemon("login1", home, tmp_path / "login1.log")
    second = None
    try:
        _wait(lambda: _lease(home).get("host") == "login1", "login1 to lead")
        # a tick on login2 does nothing while login1's lease is fresh, and says who leads
        done = _hpcflow("login2", home, ["daemon", "tick"], tmp_path)
        assert done.returncode == 0, done.stderr
        assert "tick does nothing" in done.stdout and "host login1" in done.stdout, done.stdout
        # a submission on login2 goes through the inbox; login1's engine takes and runs it
        done = _hpcflow("login2", home, ["submit", str(script)], tmp_path)
        assert done.returncode == 0, done.stderr
        wf_id = done.stdout.split()[-1]
        journal = sqlite3.connect(home / "store.db").execute("PRAGMA journal_mode").fetchone()
        assert journal[0].lower() == ("delete" if on_fuse else "wal")
        second = _daemon("login2", home, tmp_path / "login2.log")
        _wait(lambda: "standby" in _text(tmp_path / "login2.log"), "login2's standby")
        _wait(lambda: len(_lines(ledger)) >= 3, "three steps to run on login1")
        os.kill(first.pid, signal.SIGSTOP)  # login1 freezes (a hung node, a frozen VM)
        stopped_at = time.time()
        _wait(lambda: _lease(home).get("host") == "login2", "login2 to take over",
              timeout=LEASE * 20 + 60)
        assert time.time() - stopped_at >= LEASE * 0.9  # not before the lease expired
        os.kill(first.pid, signal.SIGCONT)  # it wakes up, no longer the leader
        assert first.wait(timeout=120) == 3
        log1 = _text(tmp_path / "login1.log")
        assert "taken over" in log1 or "belongs to epoch" in log1, log1[-2000:]
        done = _hpcflow("login2", home, ["status", wf_id, "--watch"], tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        runs = Counter(_lines(ledger))
        assert runs == Counter(f"s{i}" for i in range(STEPS)), runs  # each step ran once
        assert "the lease expired: this host (login2) leads now" in _text(
            tmp_path / "login2.log")
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                with_cont = [signal.SIGCONT, signal.SIGTERM]
                for sig in with_cont:
                    os.kill(proc.pid, sig)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def _lines(path: Path) -> list[str]:
    return _text(path).split()
