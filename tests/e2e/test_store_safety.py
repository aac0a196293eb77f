"""A deleted, replaced or damaged store is noticed and said in one line; the daemon's backups
put it back (``hpcflow store restore``)."""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hpcflow.daemon.engine import engine_pid
from tests.conftest import EXAMPLES, integrity_ok, run_cli


def run_example(home: Path, cwd: Path) -> str:
    """Run examples/function_op.py to success; its workflow id."""
    ran = run_cli(["run", str(EXAMPLES / "function_op.py")], home, cwd)
    assert ran.returncode == 0, ran.stderr
    return ran.stdout.strip().splitlines()[-1].split()[0]


def wait_for(condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def one_line_error(done, *needles: str) -> str:
    """The command failed with one ``hpcflow:`` line holding every needle, no traceback."""
    err = done.stderr.strip()
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("hpcflow: "), err
    for needle in needles:
        assert needle in err, err
    return err


def workflow_ids(home: Path, cwd: Path) -> list[str]:
    listed = run_cli(["list", "--json"], home, cwd)
    assert listed.returncode == 0, listed.stderr
    return [w["id"] for w in json.loads(listed.stdout)]


def restart_with(home: Path, cwd: Path, config: str) -> int:
    (home / "config.toml").write_text(config)
    assert run_cli(["daemon", "restart"], home, cwd).returncode == 0
    pid = engine_pid(home)
    assert pid
    return pid


@pytest.mark.parametrize("how", ["deleted", "replaced", "wal deleted"])
def test_daemon_stops_loudly_when_its_store_goes_and_the_rescue_restores(tmp_path, how):
    home = tmp_path / "home"
    wf_id = run_example(home, tmp_path)
    restart_with(home, tmp_path, "[daemon]\nidle_interval = 1\n")
    store = home / "store.db"
    if how == "deleted":
        store.unlink()
    elif how == "replaced":
        shutil.copy(store, tmp_path / "copy.db")
        os.replace(tmp_path / "copy.db", store)
    else:
        (home / "store.db-wal").unlink()
    # the daemon's next cycle (within its 1 s idle interval) notices and stops
    wait_for(lambda: engine_pid(home) is None, "the daemon to stop")
    log = (home / "logs" / "daemon.log").read_text()
    critical = [line for line in log.splitlines() if "CRITICAL" in line]
    assert critical and ("was deleted" in critical[-1] or "was replaced" in critical[-1])
    assert "hpcflow store restore" in critical[-1]
    rescued = sorted((home / "backups").glob("store-*-rescued.db"))
    assert len(rescued) == 1 and str(rescued[0]) in critical[-1]
    if how == "deleted":  # no empty store is made silently in the lost one's place
        one_line_error(run_cli(["list"], home, tmp_path), "is missing", "hpcflow store restore")
        assert not store.exists()
    restored = run_cli(["store", "restore", str(rescued[0])], home, tmp_path)
    assert restored.returncode == 0, restored.stderr
    assert integrity_ok(home)
    assert wf_id in workflow_ids(home, tmp_path)


def damage_steps_table(home: Path) -> None:
    """Overwrite the head of the steps table's root page (the store is closed)."""
    conn = sqlite3.connect(home / "store.db")
    try:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name='steps'").fetchone()[0]
    finally:
        conn.close()
    with open(home / "store.db", "r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(b"\xff" * 16)


def test_damaged_store_is_refused_at_start_reported_in_one_line_and_restored(tmp_path):
    home = tmp_path / "home"
    wf_id = run_example(home, tmp_path)
    assert run_cli(["store", "backup"], home, tmp_path).returncode == 0
    assert run_cli(["daemon", "stop"], home, tmp_path).returncode == 0
    damage_steps_table(home)
    damaged = (home / "store.db").read_bytes()

    # every command: one line naming the file and what to do (was: a traceback)
    store = str(home / "store.db")
    one_line_error(run_cli(["steps", wf_id], home, tmp_path), store, "is damaged",
                   "hpcflow store restore")
    started = run_cli(["daemon", "start"], home, tmp_path)
    one_line_error(started, store, "quick_check", "hpcflow store restore")
    assert engine_pid(home) is None
    assert "CRITICAL" in (home / "logs" / "daemon.log").read_text().splitlines()[-1]
    doctor = run_cli(["doctor", "--store"], home, tmp_path)
    assert doctor.returncode == 1 and f"store: FAIL the store {store}" in doctor.stdout
    assert (home / "store.db").read_bytes() == damaged  # nothing wrote into it

    restored = run_cli(["store", "restore"], home, tmp_path)
    assert restored.returncode == 0, restored.stderr
    assert "restored" in restored.stdout and "moved to" in restored.stdout
    moved = next(home.glob("replaced-*"))
    assert (moved / "store.db").read_bytes() == damaged
    steps = run_cli(["steps", wf_id, "--json"], home, tmp_path)
    assert steps.returncode == 0 and len(json.loads(steps.stdout)) == 3
    doctor = run_cli(["doctor", "--store"], home, tmp_path)
    assert doctor.returncode == 0 and "passes quick_check" in doctor.stdout

    # while a daemon runs, restore refuses and changes nothing
    assert run_cli(["daemon", "start"], home, tmp_path).returncode == 0
    try:
        before = (home / "store.db").stat().st_ino
        one_line_error(run_cli(["store", "restore"], home, tmp_path), "a daemon runs",
                       "hpcflow daemon stop")
        assert (home / "store.db").stat().st_ino == before
    finally:  # a started daemon has no idle exit: it would outlive the suite
        run_cli(["daemon", "stop"], home, tmp_path)


def test_filesystem_errors_are_one_line_naming_the_file(tmp_path):
    home = tmp_path / "home"
    (home / "logs" / "daemon.log").mkdir(parents=True, mode=0o700)
    os.chmod(home, 0o700)
    one_line_error(run_cli(["daemon", "logs"], home, tmp_path),
                   str(home / "logs" / "daemon.log"), "is a directory")


def test_daemon_keeps_a_bounded_set_of_checked_backups(tmp_path):
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    (home / "config.toml").write_text("[daemon]\nidle_interval = 1\nbackup_interval = 1\n"
                                      "backups = 2\n")
    ids = [run_example(home, tmp_path) for _ in range(3)]

    def newest_holds_all() -> bool:
        found = sorted((home / "backups").glob("store-*.db"), key=lambda p: p.stat().st_mtime)
        if not found:
            return False
        conn = sqlite3.connect(found[-1])
        try:
            held = {r[0] for r in conn.execute("SELECT id FROM workflows")}
        finally:
            conn.close()
        return set(ids) <= held

    wait_for(newest_holds_all, "a backup holding every workflow")
    found = list((home / "backups").glob("store-*.db"))
    assert 1 <= len(found) <= 2
    for path in found:
        assert os.stat(path).st_mode & 0o777 == 0o600
        conn = sqlite3.connect(path)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finally:
            conn.close()
    assert not list((home / "backups").glob(".*.tmp"))


def test_a_cron_tick_backs_the_store_up_too(tmp_path):
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    (home / "config.toml").write_text("[daemon]\nbackup_interval = 1\n")
    script = tmp_path / "wf.py"  # the example without its wf.wait(): cron does the work
    script.write_text((EXAMPLES / "function_op.py").read_text().split("    wf.wait()")[0])
    submitted = subprocess.run([sys.executable, "-m", "hpcflow.cli.main", "submit", str(script)],
                               cwd=tmp_path, capture_output=True, text=True, timeout=120,
                               env=dict(os.environ, HPCFLOW_HOME=str(home),
                                        HPCFLOW_ENGINE_AUTOSTART="0"))
    assert submitted.returncode == 0, submitted.stderr
    wf_id = submitted.stdout.split()[-1]
    assert run_cli(["daemon", "tick"], home, tmp_path).returncode == 0
    backups = list((home / "backups").glob("store-*.db"))
    assert len(backups) == 1
    conn = sqlite3.connect(backups[0])
    try:
        assert conn.execute("SELECT id FROM workflows").fetchall() == [(wf_id,)]
    finally:
        conn.close()
