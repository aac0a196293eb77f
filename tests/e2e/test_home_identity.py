"""The daemon checks its home once, then keeps using the real path it checked: a symlink
re-pointed while it runs changes nothing, and a home replaced under it stops it loudly
without a write into the new directory."""

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import stop_engine

SCRIPT = '''
from pathlib import Path
from hpcflow import Step, Workflow
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def wait_for(go: str) -> {"y": int}:
    import time
    from pathlib import Path
    deadline = time.time() + 240
    while not Path(go).exists() and time.time() < deadline:
        time.sleep(0.1)
    return {"y": 7}

@OP.function
def add_one(y: int) -> {"z": int}:
    return {"z": y + 1}

wf = Workflow("repointed")
first = Step("first", PythonOPTemplate(wait_for), parameters={"go": GO})
wf.add(first)
wf.add(Step("second", PythonOPTemplate(add_one), parameters={"y": first.outputs.parameters["y"]}))
wf.submit()
print(wf.id)
'''


def _cli(args: list[str], home: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, HPCFLOW_HOME=str(home), HPCFLOW_ENGINE_IDLE_EXIT="120")
    return subprocess.run([sys.executable, "-m", "hpcflow.cli.main", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def _wait_until(check, what: str, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while not check():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_a_symlink_repointed_while_the_daemon_runs_changes_nothing(tmp_path) -> None:
    real, other, link = tmp_path / "real", tmp_path / "other", tmp_path / "link"
    other.mkdir(mode=0o700)
    os.symlink(real, link)
    go = tmp_path / "go"
    script = tmp_path / "wf.py"
    script.write_text(SCRIPT.replace("GO", repr(str(go))))
    try:
        done = _cli(["submit", str(script)], link, tmp_path)
        assert done.returncode == 0, done.stderr
        wf_id = done.stdout.split()[-1]
        _wait_until(lambda: list(real.glob(f"runs/{wf_id}/first-*/claim")), "the first step")
        os.unlink(link)
        os.symlink(other, link)  # re-pointed mid-run
        go.touch()
        done = _cli(["status", wf_id, "--watch"], real, tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        assert list(other.iterdir()) == []  # nothing was written through the new link
        assert list(real.glob(f"runs/{wf_id}/second-*/result.json"))
    finally:
        go.touch()
        stop_engine(real)


def test_a_home_replaced_under_the_daemon_stops_it_without_writing_there(tmp_path) -> None:
    home, moved = tmp_path / "home", tmp_path / "moved"
    done = _cli(["daemon", "start"], home, tmp_path)
    assert done.returncode == 0, done.stderr
    pid = int((home / "daemon.pid").read_text())
    try:
        os.rename(home, moved)
        home.mkdir(mode=0o700)
        (moved / "wake" / "req-test").touch()  # the daemon watches its own wake directory

        def gone() -> bool:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            # a zombie until its parent (none here: it is a session leader of its own) reaps
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] == "Z"

        _wait_until(gone, "the daemon to stop", timeout=120)
        log = (moved / "logs" / "daemon.log").read_text()
        assert f"hpcflow's home {home} was replaced by another directory" in log, log[-2000:]
        assert list(home.iterdir()) == []
    finally:
        stop_engine(moved)
        stop_engine(home)

