"""The deployment files in manifests/ work as written: the systemd unit passes
``systemd-analyze verify``, and the crontab's and scrontab's command lines, run by ``sh`` as
cron runs them (with ``$HOME/.local/bin/hpcflow`` pointing at this install), start a daemon,
drive a workflow by ticks alone and submit a campaign once."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hpcflow.daemon.engine import engine_pid
from tests.conftest import REPO, integrity_ok

MANIFESTS = REPO / "manifests"
HPCFLOW = Path(sys.executable).parent / "hpcflow"

NIGHTLY = '''
from hpcflow import Step, Workflow
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def inc(x: int) -> {"y": int}:
    return {"y": x + 1}

wf = Workflow("nightly")
prev = None
for i in range(3):
    prev = Step(f"s{i}", PythonOPTemplate(inc),
                parameters={"x": prev.outputs.parameters["y"] if prev else 0})
    wf.add(prev)
wf.submit()
'''


def cron_commands(path: Path) -> dict[str, str]:
    """The command of each schedule line (commented-out ones too), keyed by its first word
    after ``hpcflow``; cron turns ``\\%`` into ``%``."""
    commands = {}
    for line in path.read_text().splitlines():
        text = line.lstrip("# ").strip()
        fields = text.split(None, 5)
        if len(fields) < 6 or not all(f[0] in "*0123456789" for f in fields[:5]):
            continue
        command = fields[5].replace("\\%", "%")
        words = command.split("/hpcflow ", 1)[1].split()
        commands[" ".join(words[:2]) if words[0] == "daemon" else words[0]] = command
    return commands


@pytest.fixture
def cron_home(tmp_path: Path) -> Path:
    """A user's $HOME with hpcflow in ~/.local/bin, as the manifests assume."""
    home = tmp_path / "user"
    (home / ".local" / "bin").mkdir(parents=True)
    (home / ".local" / "bin" / "hpcflow").symlink_to(HPCFLOW)
    return home


def run_as_cron(command: str, home: Path, extra_env: dict[str, str] | None = None,
                cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "SHELL": "/bin/sh", **(extra_env or {})}
    return subprocess.run(["sh", "-c", command], env=env, capture_output=True, text=True,
                          timeout=120, cwd=cwd or home)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_the_systemd_unit_verifies(tmp_path: Path):
    unit = (MANIFESTS / "systemd" / "hpcflow.service").read_text()
    assert "Restart=on-failure" in unit and "KillMode=process" in unit
    assert "ExecStart=%h/.local/bin/hpcflow daemon run" in unit
    local = tmp_path / "hpcflow.service"
    local.write_text(unit.replace("%h/.local/bin/hpcflow", str(HPCFLOW)))
    done = subprocess.run(["systemd-analyze", "verify", str(local)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_crontab_lines_run_a_daemon_ticks_and_a_campaign(cron_home: Path):
    commands = cron_commands(MANIFESTS / "cron" / "crontab")
    assert set(commands) == {"daemon start", "daemon tick", "submit", "gc"}
    state = cron_home / ".hpcflow"
    (cron_home / "campaign").mkdir()
    (cron_home / "campaign" / "nightly.py").write_text(NIGHTLY)
    try:
        # B) ticks only: the campaign line submits (no daemon is started), ticks finish it
        no_daemon = {"HPCFLOW_ENGINE_AUTOSTART": "0"}
        first = run_as_cron(commands["submit"], cron_home, no_daemon)
        assert first.returncode == 0, first.stderr
        second = run_as_cron(commands["submit"], cron_home, no_daemon)
        assert second.returncode == 0 and "nothing submitted" in second.stderr
        assert first.stdout == second.stdout and engine_pid(state) is None
        wf_id = first.stdout.strip()
        status_cmd = f"{HPCFLOW} status {wf_id} --json"
        for _ in range(50):
            tick = run_as_cron(commands["daemon tick"], cron_home)
            assert tick.returncode == 0, tick.stderr
            status = json.loads(run_as_cron(f"HPCFLOW_HOME={state} {status_cmd}",
                                            cron_home).stdout)
            if status["phase"] == "Succeeded":
                break
            time.sleep(0.1)
        assert status["phase"] == "Succeeded" and status["steps"] == {"Succeeded": 3}
        assert "tick done" in (state / "logs" / "daemon.log").read_text()
        # A) keep a daemon alive: the first run starts it, the next ones leave it alone
        started = run_as_cron(commands["daemon start"], cron_home)
        assert started.returncode == 0, started.stderr
        pid = engine_pid(state)
        assert pid and run_as_cron(commands["daemon start"], cron_home).returncode == 0
        assert engine_pid(state) == pid
        idle_tick = run_as_cron(commands["daemon tick"], cron_home)
        assert idle_tick.returncode == 0 and engine_pid(state) == pid
        assert "a daemon is running, nothing to do" in (state / "logs" / "daemon.log").read_text()
        assert run_as_cron(commands["gc"], cron_home).returncode == 0
        assert integrity_ok(state)
    finally:
        run_as_cron(f"HPCFLOW_HOME={state} {HPCFLOW} daemon stop", cron_home)


def test_scrontab_tick_line(cron_home: Path):
    text = (MANIFESTS / "cron" / "scrontab").read_text()
    assert "#SCRON --time=" in text
    commands = cron_commands(MANIFESTS / "cron" / "scrontab")
    assert set(commands) == {"daemon tick"}
    done = run_as_cron(commands["daemon tick"], cron_home)
    assert done.returncode == 0 and "tick done" in done.stdout, done.stderr
    assert os.stat(cron_home / ".hpcflow").st_mode & 0o077 == 0
