"""The daemon as a service: start/stop/status/logs, one per home, SIGTERM, tick for cron,
and `hpcflow submit --if-absent`."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hpcflow.connectors.executors.base import RESULT_FILE
from hpcflow.daemon.engine import engine_pid
from tests.conftest import integrity_ok, run_cli, wait_progressing, wait_until

CHAIN = '''
from hpcflow import Step, Workflow
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def inc(x: int, ledger: str, pause: float) -> {"y": int}:
    import os, time
    with open(ledger, "a") as f:
        f.write(f"{x}\\n")
    deadline = time.time() + 600  # the first step waits for GATE, when there is one
    while x == 0 and "GATE" and not os.path.exists("GATE") and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(pause)
    return {"y": x + 1}

wf = Workflow("chain")
prev = None
for i in range(NSTEPS):
    x = prev.outputs.parameters["y"] if prev else 0
    prev = Step(f"s{i}", PythonOPTemplate(inc), parameters={"x": x, "ledger": "LEDGER",
                                                           "pause": PAUSE})
    wf.add(prev)
wf.submit()
'''


def chain_script(tmp_path: Path, steps: int, pause: float = 0.0,
                 gate: Path | None = None) -> tuple[Path, Path]:
    """A chain of ``steps`` steps; each appends its input to the ledger, the first then waits
    for ``gate`` to exist (if given), each sleeps ``pause``."""
    ledger = tmp_path / "ledger.txt"
    script = tmp_path / "chain.py"
    script.write_text(CHAIN.replace("NSTEPS", str(steps)).replace("LEDGER", str(ledger))
                      .replace("PAUSE", str(pause)).replace("GATE", str(gate or "")))
    return script, ledger


def test_start_status_stop_restart_logs(tmp_path):
    home = tmp_path / "home"
    assert run_cli(["daemon", "status"], home, tmp_path).returncode == 1
    started = run_cli(["daemon", "start"], home, tmp_path)
    assert started.returncode == 0 and "daemon started" in started.stdout
    pid = engine_pid(home)
    assert pid and (home / "daemon.pid").read_text().strip() == str(pid)
    again = run_cli(["daemon", "start"], home, tmp_path)
    assert "already running" in again.stdout and engine_pid(home) == pid  # one per home
    status = json.loads(run_cli(["daemon", "status", "--json"], home, tmp_path).stdout)
    assert status["running"] and status["pid"] == pid and status["version"]
    tick = run_cli(["daemon", "tick"], home, tmp_path)
    assert tick.returncode == 0 and "tick does nothing" in tick.stdout
    assert run_cli(["daemon", "restart"], home, tmp_path).returncode == 0
    assert engine_pid(home) not in (None, pid)
    logs = run_cli(["daemon", "logs", "-n", "20"], home, tmp_path).stdout
    assert f"engine {pid} stopped" in logs
    assert "daemon stopped" in run_cli(["daemon", "stop"], home, tmp_path).stdout
    assert engine_pid(home) is None and not (home / "daemon.pid").exists()


def test_sigterm_leaves_jobs_running_and_the_next_daemon_collects(tmp_path):
    """The first step waits for a gate: the daemon stops on SIGTERM while it waits (a daemon
    that waited for its jobs would not stop), and it finishes while no daemon runs."""
    home = tmp_path / "home"
    gate = tmp_path / "gate"
    script, ledger = chain_script(tmp_path, 2, gate=gate)
    env = dict(os.environ, HPCFLOW_HOME=str(home))
    submitted = run_cli(["submit", str(script)], home, tmp_path)
    assert submitted.returncode == 0, submitted.stderr
    wf_id = submitted.stdout.strip().splitlines()[-1]
    try:
        wait_progressing(ledger.exists, bool, what="the first step's start", interval=0.05)
        pid = engine_pid(home)
        assert pid
        os.kill(pid, signal.SIGTERM)
        wait_progressing(lambda: engine_pid(home), lambda now: now is None,
                         what="the daemon's exit", interval=0.02)
        results = home / "runs" / wf_id
        assert not list(results.glob(f"s0-*/{RESULT_FILE}"))  # still waiting for the gate
        gate.touch()  # the first step finishes while no daemon runs
        wait_progressing(lambda: list(results.glob(f"s0-*/{RESULT_FILE}")), bool,
                         what="the first step's result")
        assert ledger.read_text().split() == ["0"]
        subprocess.run([sys.executable, "-m", "hpcflow.cli.main", "daemon", "start"], env=env,
                       check=True, capture_output=True)
        final = wait_progressing(
            lambda: json.loads(run_cli(["status", wf_id, "--json"], home, tmp_path).stdout),
            lambda data: data["phase"] not in ("Pending", "Running"),
            lambda data: data["steps"], what=wf_id, interval=0.2)
        assert final["phase"] == "Succeeded"
        assert ledger.read_text().split() == ["0", "1"]
    finally:
        gate.touch()
        run_cli(["daemon", "stop"], home, tmp_path)


def test_a_hundred_steps_driven_only_by_tick(tmp_path):
    home = tmp_path / "home"
    script, ledger = chain_script(tmp_path, 100)
    env = dict(os.environ, HPCFLOW_HOME=str(home), HPCFLOW_ENGINE_AUTOSTART="0")
    submitted = subprocess.run([sys.executable, "-m", "hpcflow.cli.main", "submit", str(script)],
                               env=env, capture_output=True, text=True, check=True)
    wf_id = submitted.stdout.strip()
    assert engine_pid(home) is None  # nothing was started: cron drives it
    ticks = 0
    while ticks < 400:
        subprocess.run([sys.executable, "-m", "hpcflow.cli.main", "daemon", "tick"], env=env,
                       check=True, capture_output=True)
        ticks += 1
        phase = json.loads(run_cli(["status", wf_id, "--json"], home, tmp_path).stdout)["phase"]
        if phase not in ("Pending", "Running"):
            break
        assert engine_pid(home) is None
    assert phase == "Succeeded", ticks
    assert ledger.read_text().split() == [str(i) for i in range(100)]
    assert integrity_ok(home)


def test_submit_if_absent_twice_gives_one_workflow(tmp_path):
    home = tmp_path / "home"
    script, _ = chain_script(tmp_path, 2)
    args = ["submit", str(script), "--name", "campaign", "--label", "team=md", "--if-absent"]
    first = run_cli(args, home, tmp_path)
    second = run_cli(args, home, tmp_path)
    assert first.returncode == 0 and second.returncode == 0
    assert first.stdout.strip() == second.stdout.strip()
    assert "already there" in second.stderr and "nothing submitted" in second.stderr
    listed = json.loads(run_cli(["list", "--json"], home, tmp_path).stdout)
    assert len(listed) == 1 and listed[0]["name"] == "campaign"
    assert listed[0]["labels"] == {"team": "md"}
    bad = run_cli(["submit", str(script), "--if-absent"], home, tmp_path)
    assert bad.returncode == 1 and "--if-absent needs --name" in bad.stderr
    run_cli(["daemon", "stop"], home, tmp_path)


FANOUT = '''
from hpcflow import Step, Workflow, argo_range
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def nap(i: int, ledger: str) -> {"y": int}:
    import time
    start = time.time()
    time.sleep(0.4)
    with open(ledger, "a") as f:
        f.write(f"{start} {time.time()}\\n")
    return {"y": i}

wf = Workflow("fanout")
wf.add(Step("nap", PythonOPTemplate(nap), parameters={"i": "{{item}}", "ledger": "LEDGER"},
            with_param=argo_range(4)))
wf.submit()
'''


def _wait_for_log(home: Path, text: str, timeout: float = 60) -> None:
    wait_until(lambda: text in (home / "logs" / "daemon.log").read_text(),
               f"{text!r} in the daemon log", timeout, interval=0.05)


def test_sighup_reloads_the_config_and_a_broken_one_is_refused(tmp_path):
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    config = home / "config.toml"
    config.write_text("[executors.local]\nparallelism = 4\n")
    assert run_cli(["daemon", "start"], home, tmp_path).returncode == 0
    pid = engine_pid(home)
    try:
        config.write_text("[daemon]\nlog_level = 'debug'\n[executors.local]\nparallelism = 1\n")
        os.kill(pid, signal.SIGHUP)
        _wait_for_log(home, f"configuration reloaded from {config}")
        ledger = tmp_path / "ledger.txt"
        script = tmp_path / "fanout.py"
        script.write_text(FANOUT.replace("LEDGER", str(ledger)))
        wf_id = run_cli(["submit", str(script)], home, tmp_path).stdout.strip()
        deadline = time.time() + 60
        while json.loads(run_cli(["status", wf_id, "--json"], home, tmp_path).stdout)[
                "phase"] != "Succeeded":
            assert time.time() < deadline
            time.sleep(0.2)
        spans = sorted(tuple(map(float, line.split())) for line in ledger.read_text().splitlines())
        assert len(spans) == 4
        # parallelism = 1 after the reload: no two steps overlapped
        assert all(spans[i][1] <= spans[i + 1][0] for i in range(3)), spans
        config.write_text("[executors.local]\nparalelism = 2\n")
        os.kill(pid, signal.SIGHUP)
        _wait_for_log(home, "unknown key executors.local.paralelism")
        assert "configuration not reloaded" in (home / "logs" / "daemon.log").read_text()
        assert engine_pid(home) == pid  # still serving
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)


def test_a_broken_config_stops_the_start_with_one_line(tmp_path):
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    (home / "config.toml").write_text("[daemon]\nidle_interval = 'soon'\n")
    started = run_cli(["daemon", "start"], home, tmp_path)
    assert started.returncode == 1
    assert started.stderr.strip().splitlines() == [
        f"hpcflow: {home / 'config.toml'}: daemon.idle_interval must be a positive number, "
        "not 'soon'"]
    assert engine_pid(home) is None
    script, _ = chain_script(tmp_path, 1)
    submitted = run_cli(["submit", str(script)], home, tmp_path)
    assert submitted.returncode == 1 and "daemon.idle_interval must be" in submitted.stderr
    assert len(submitted.stderr.strip().splitlines()) == 1
    assert json.loads(run_cli(["list", "--json"], home, tmp_path).stdout) == []


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_daemon_run_in_the_foreground_as_systemd_runs_it(tmp_path, stop_signal):
    """``hpcflow daemon run`` (the systemd unit's ExecStart): it runs the workflows submitted
    to it, logs to stderr with journald's priority prefixes, and on SIGTERM or SIGINT (Ctrl-C)
    stops within 5 s, cleanly, without a traceback, leaving no pid file and a status with
    its last poll."""
    home = tmp_path / "home"
    env = dict(os.environ, HPCFLOW_HOME=str(home), JOURNAL_STREAM="8:1234",
               HPCFLOW_ENGINE_AUTOSTART="0")
    daemon = subprocess.Popen([sys.executable, "-m", "hpcflow.cli.main", "daemon", "run"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while engine_pid(home) != daemon.pid:
            assert time.time() < deadline and daemon.poll() is None, "daemon run did not start"
            time.sleep(0.05)
        script, ledger = chain_script(tmp_path, 3)
        submitted = subprocess.run([sys.executable, "-m", "hpcflow.cli.main", "submit",
                                    str(script)], env=env, capture_output=True, text=True)
        assert submitted.returncode == 0, submitted.stderr
        wf_id = submitted.stdout.strip().splitlines()[-1]
        deadline = time.time() + 60
        while json.loads(run_cli(["status", wf_id, "--json"], home, tmp_path).stdout)[
                "phase"] in ("Pending", "Running"):
            assert time.time() < deadline
            time.sleep(0.2)
        assert ledger.read_text().split() == ["0", "1", "2"]
        deadline = time.time() + 30  # daemon.json is rewritten every few seconds
        while True:
            status = json.loads(run_cli(["daemon", "status", "--json"], home, tmp_path).stdout)
            assert status["running"] and status["pid"] == daemon.pid
            if status["last_poll"].get("local") or time.time() > deadline:
                break
            time.sleep(0.5)
        assert status["last_poll"].get("local"), status
        start = time.time()
        daemon.send_signal(stop_signal)
        _, err = daemon.communicate(timeout=10)
        assert time.time() - start < 5
        assert daemon.returncode == 0, err
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and all(line.startswith("<") and line[2] == ">" for line in lines), lines[:5]
    assert any(line.startswith("<6>") and "stopped" in line for line in lines)
    assert "Traceback" not in err
    assert engine_pid(home) is None and not (home / "daemon.pid").exists()


def test_wake_ups_come_from_events_not_from_polling(tmp_path):
    """With polls 2 minutes apart and an idle interval of 5 minutes, a 5-step chain submitted
    to an idle daemon finishes within one poll interval, however busy the machine: the
    submission wakes the daemon (request file) and each finished step wakes it again (its
    marker, seen by watchdog). A step that waited for a poll would take 2 minutes alone."""
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    poll = 120
    (home / "config.toml").write_text(
        "[daemon]\nidle_interval = 300\n"
        f"[executors.local]\nmin_poll_interval = {poll}\nmax_poll_interval = {2 * poll}\n")
    assert run_cli(["daemon", "start"], home, tmp_path).returncode == 0
    try:
        time.sleep(1.5)  # idle: asleep for its 300 s
        script, ledger = chain_script(tmp_path, 5)
        started = time.time()
        submitted = run_cli(["submit", str(script)], home, tmp_path)
        assert submitted.returncode == 0, submitted.stderr
        wf_id = submitted.stdout.strip().splitlines()[-1]
        while json.loads(run_cli(["status", wf_id, "--json"], home, tmp_path).stdout)[
                "phase"] in ("Pending", "Running"):
            assert time.time() - started < poll, "steps waited for a poll"
            time.sleep(0.1)
        assert ledger.read_text().split() == ["0", "1", "2", "3", "4"]
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)


def test_ten_concurrent_submits_start_one_engine(tmp_path):
    """Ten `hpcflow submit` at once (each waits at a barrier until all ten are ready): one
    engine process is ever started and announced, and every workflow succeeds."""
    home = tmp_path / "home"
    script, ledger = chain_script(tmp_path, 2)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    script.write_text(script.read_text().replace("wf.submit()", f'''
import os, time
from pathlib import Path
Path("{barrier}", str(os.getpid())).touch()
deadline = time.time() + 120
while len(os.listdir("{barrier}")) < 10 and time.time() < deadline:
    time.sleep(0.01)
wf.submit()'''))
    env = dict(os.environ, HPCFLOW_HOME=str(home), HPCFLOW_ENGINE_IDLE_EXIT="120")
    submits = [subprocess.Popen([sys.executable, "-m", "hpcflow.cli.main", "submit",
                                 str(script)], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(10)]
    try:
        outputs = [proc.communicate(timeout=240) for proc in submits]
        assert [proc.returncode for proc in submits] == [0] * 10, outputs
        ids = [out.strip().splitlines()[-1] for out, _ in outputs]
        announced = [err for _, err in outputs if "started an engine" in err]
        assert len(announced) == 1, outputs
        deadline = time.time() + 120
        for wf_id in ids:
            while (phase := json.loads(run_cli(["status", wf_id, "--json"], home,
                                              tmp_path).stdout)["phase"]) in ("Pending",
                                                                              "Running"):
                assert time.time() < deadline, wf_id
                time.sleep(0.2)
            assert phase == "Succeeded", wf_id
        assert len(ledger.read_text().split()) == 20
        log = (home / "logs" / "daemon.log").read_text()
        # every engine process logs one of these two lines at its start
        assert log.count(" serving ") == 1 and "another engine serves" not in log, log
        assert str(engine_pid(home)) in announced[0]
    finally:
        for proc in submits:
            if proc.poll() is None:
                proc.kill()
        run_cli(["daemon", "stop"], home, tmp_path)
