"""Shared fixtures: a private ``$HPCFLOW_HOME`` per test, and an engine stopped afterwards."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

T = TypeVar("T")

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


def stop_engine(home: Path) -> None:
    from hpcflow.daemon.engine import engine_pid

    pid = engine_pid(home) if home.exists() else None
    if pid is None or pid < 0:
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.time() + 10
    while time.time() < deadline and engine_pid(home) is not None:
        time.sleep(0.05)


@pytest.fixture
def hpc_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh HPCFLOW_HOME for this test (its engine is stopped at teardown)."""
    from hpcflow import settings
    from hpcflow.daemon import client

    home = tmp_path / "hpcflow-home"
    monkeypatch.setenv("HPCFLOW_HOME", str(home))
    monkeypatch.setenv("HPCFLOW_ENGINE_IDLE_EXIT", "120")
    monkeypatch.setitem(settings.config, "home", None)
    monkeypatch.setitem(settings.config, "engine_idle_exit", 120.0)
    monkeypatch.chdir(tmp_path)
    yield home
    stop_engine(home)
    store = client._stores.pop(home, None)
    if store is not None:
        store.close()


#: Each test folder is a kind of test: ``pytest -m unit`` runs the pure ones only.
KINDS = ("unit", "e2e", "integration")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).relative_to(REPO).parts
        if len(parts) > 1 and parts[0] == "tests" and parts[1] in KINDS:
            item.add_marker(getattr(pytest.mark, parts[1]))


def fault_env(fault: str) -> dict[str, str]:
    """The environment that makes a daemon started with it crash at a fault point
    (``tests/faults/sitecustomize.py``): the fault's name, and that folder first on its
    ``PYTHONPATH``."""
    path = os.pathsep.join(p for p in (str(REPO / "tests" / "faults"), str(REPO),
                                       os.environ.get("PYTHONPATH", "")) if p)
    return {"HPCFLOW_TEST_FAULT": fault, "PYTHONPATH": path}


def run_cli(args: list[str], home: Path, cwd: Path,
            timeout: float = 240) -> subprocess.CompletedProcess:
    """Run the ``hpcflow`` command as a user would (a separate process)."""
    env = dict(os.environ, HPCFLOW_HOME=str(home), HPCFLOW_ENGINE_IDLE_EXIT="120")
    return subprocess.run([sys.executable, "-m", "hpcflow.cli.main", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def cli_peak_rss(args: list[str], home: Path, cwd: Path, stdout: Path,
                 timeout: float = 240) -> tuple[int, int, str]:
    """(exit code, peak RSS in KiB, stderr) of the ``hpcflow`` command, its output written
    to ``stdout``. Started through ``benchmarks/peak_rss.py``: forked from pytest itself,
    the command's peak would count pytest's image (hundreds of MB late in a run)."""
    import json

    report = cwd / ".peak-rss.json"
    env = dict(os.environ, HPCFLOW_HOME=str(home))
    with stdout.open("wb") as out:
        done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "peak_rss.py"),
                               str(report),
                               sys.executable, "-m", "hpcflow.cli.main", *args], cwd=cwd,
                              env=env, stdout=out, stderr=subprocess.PIPE, timeout=timeout,
                              check=True)
    found = json.loads(report.read_text())
    return int(found["exit"]), int(found["peak_rss_kib"]), done.stderr.decode()


def run_on_terminal(args: list[str], home: Path, cwd: Path,
                    env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """(exit code, what reached the terminal, stderr) of the ``hpcflow`` command with a
    pseudo-terminal as its stdout, as a user at a terminal runs it."""
    import pty

    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "hpcflow.cli.main", *args], cwd=cwd,
                            env=env if env is not None else dict(os.environ,
                                                                 HPCFLOW_HOME=str(home)),
                            stdout=follower, stderr=subprocess.PIPE)
    os.close(follower)
    chunks = []
    deadline = time.time() + 120
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the command closed the terminal
            break
        if not data:
            break
        chunks.append(data)
        assert time.time() < deadline, f"hpcflow {args[0]} did not finish"
    proc.wait(60)
    os.close(leader)
    err = proc.stderr.read().decode().strip() if proc.stderr else ""
    return proc.returncode, b"".join(chunks).decode(), err


def integrity_ok(home: Path) -> bool:
    import sqlite3

    conn = sqlite3.connect(home / "store.db")
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


def wait_until(check: Callable[[], T], what: str, timeout: float = 180,
               interval: float = 0.3, between: Callable[[], Any] | None = None) -> T:
    """Call ``check`` until it returns something true, and return that; fail naming ``what``
    after ``timeout`` seconds (generous: the machine may be busy). ``between`` runs after
    each miss (to wake an idle daemon, say)."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
        if between is not None:
            between()
        time.sleep(interval)


def wait_progressing(probe: Callable[[], T], done: Callable[[T], bool],
                     progress: Callable[[T], Any] = lambda value: value, stall: float = 120,
                     what: str = "the wait", interval: float = 0.5) -> T:
    """Call ``probe`` until ``done`` holds for what it returns, and return that.

    There is no total budget: a wait fails only when ``progress`` of the probed value has not
    changed for ``stall`` seconds, so a long run on a busy machine passes while a stuck one
    fails. Use it where the work waited for is long (many steps, many calls); a short fixed
    amount of work can keep a plain generous deadline.
    """
    value = probe()
    seen, changed_at = progress(value), time.monotonic()
    while not done(value):
        assert time.monotonic() - changed_at < stall, (
            f"{what}: no progress in {stall:.0f} s (last seen: {value!r})")
        time.sleep(interval)
        value = probe()
        if progress(value) != seen:
            seen, changed_at = progress(value), time.monotonic()
    return value
