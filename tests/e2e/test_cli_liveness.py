"""Nothing looks alive that is not: with live workflows and no engine serving the home,
``status``, ``list``, ``get``, ``steps`` and ``status --watch`` say so on stderr with the
command that starts one, or, for a home served by cron ticks, that no tick ran yet or that
the last one is late and when it ran. Ctrl-C in ``hpcflow run`` says the workflow goes on
and how to follow or stop it, also while the script is still running after its submit()."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import run_cli, wait_until
from tests.e2e.scripts import WAIT_FOR_GO

SCRIPT = WAIT_FOR_GO + '''
wf = Workflow("waits")
wf.add(Step("wait", PythonOPTemplate(wait_for), parameters={"go": sys.argv[1]}))
wf.submit()
print(wf.id)
'''


def _cli(args: list[str], home: Path, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hpcflow.cli.main", *args], cwd=cwd,
                          env=dict(os.environ, HPCFLOW_HOME=str(home), **env),
                          capture_output=True, text=True, timeout=240)


def test_commands_say_when_no_engine_serves_live_workflows(tmp_path: Path):
    home, go = tmp_path / "home", tmp_path / "go"
    (tmp_path / "wf.py").write_text(SCRIPT)
    wf_id = run_cli(["submit", "wf.py", str(go)], home, tmp_path).stdout.split()[-1]
    try:
        served = run_cli(["status", wf_id], home, tmp_path)
        assert served.returncode == 0 and served.stderr == ""  # its engine runs
        assert run_cli(["daemon", "stop"], home, tmp_path).returncode == 0
        expected = (f"hpcflow: no engine serves {home} (1 live workflow wait): start one with "
                    "'hpcflow daemon start'\n")
        for args in (["status", wf_id], ["status"], ["list"], ["get", wf_id],
                     ["steps", wf_id], ["status", wf_id, "--json"]):
            shown = run_cli(args, home, tmp_path)
            assert shown.returncode == 0 and shown.stderr == expected, (args, shown.stderr)
        json.loads(run_cli(["status", wf_id, "--json"], home, tmp_path).stdout)  # still JSON

        watch = subprocess.Popen(
            [sys.executable, "-m", "hpcflow.cli.main", "status", wf_id, "--watch"],
            cwd=tmp_path, env=dict(os.environ, HPCFLOW_HOME=str(home)),
            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "watch.err", "w"))  # noqa: SIM115
        try:
            wait_until(lambda: "no engine serves" in (tmp_path / "watch.err").read_text(),
                       "status --watch to say that no engine serves the home", timeout=120)
        finally:
            watch.kill()
            watch.wait(30)
        assert run_cli(["daemon", "start"], home, tmp_path).returncode == 0
        assert run_cli(["status", wf_id], home, tmp_path).stderr == ""
    finally:
        go.touch()
        run_cli(["daemon", "stop"], home, tmp_path)


def test_a_home_served_by_cron_says_when_no_tick_ran_or_the_last_is_late(tmp_path: Path):
    home, go = tmp_path / "home", tmp_path / "go"
    (tmp_path / "wf.py").write_text(SCRIPT)
    cron = {"HPCFLOW_ENGINE_AUTOSTART": "0"}
    done = _cli(["submit", "wf.py", str(go)], home, tmp_path, **cron)
    assert done.returncode == 0, done.stderr
    wf_id = done.stdout.split()[-1]
    first = _cli(["status", wf_id], home, tmp_path, **cron)
    assert "no cron tick has run yet (1 live workflow)" in first.stderr, first.stderr
    assert "run 'hpcflow daemon tick'" in first.stderr
    assert _cli(["daemon", "tick"], home, tmp_path, **cron).returncode == 0
    assert _cli(["status", wf_id], home, tmp_path, **cron).stderr == ""  # a tick just ran
    # an hour passes without a tick (the lease's stamp, moved back)
    (lease,) = (home / "leader").glob("epoch-*")
    data = json.loads(lease.read_text())
    data["at"] -= 3600
    lease.write_text(json.dumps(data))
    late = _cli(["get", wf_id], home, tmp_path, **cron)
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(data["at"]))
    assert f"the cron tick for {home} is late: it last ran {when}" in late.stderr, late.stderr
    assert "(60 min ago); 1 live workflow wait: check 'crontab -l'" in late.stderr
    go.touch()
    wait_until(lambda: _cli(["daemon", "tick"], home, tmp_path, **cron) and json.loads(
        _cli(["status", wf_id, "--json"], home, tmp_path, **cron).stdout)["phase"]
        == "Succeeded", "the workflow to end through ticks")
    assert _cli(["status"], home, tmp_path, **cron).stderr == ""  # nothing live: no word


def start_run(cwd: Path, home: Path, go: Path) -> subprocess.Popen:
    """``hpcflow run wf.py GO`` as from a terminal: SIGINT reaches it as Ctrl-C even when
    the test run itself was started in the background (which ignores SIGINT, an ignoring
    every child inherits, and then Python installs no KeyboardInterrupt)."""
    return subprocess.Popen(
        [sys.executable, "-m", "hpcflow.cli.main", "run", "wf.py", str(go)], cwd=cwd,
        env=dict(os.environ, HPCFLOW_HOME=str(home)), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def test_ctrl_c_in_run_says_the_workflow_goes_on(tmp_path: Path):
    home, go = tmp_path / "home", tmp_path / "go"
    (tmp_path / "wf.py").write_text(SCRIPT)
    run = start_run(tmp_path, home, go)
    try:
        def running() -> str | None:
            rows = json.loads(run_cli(["list", "--json"], home, tmp_path).stdout or "[]")
            return rows[0]["id"] if rows and rows[0]["phase"] == "Running" else None

        wf_id = wait_until(running, "the workflow to run")
        # Ctrl-C once `run` follows it (its first progress line is out): on a busy machine
        # the engine may run the workflow before the script's submit() has returned
        assert run.stderr is not None
        seen = []
        while not seen or not seen[-1].startswith(wf_id):
            line = run.stderr.readline()
            assert line, f"run ended before following {wf_id}: {''.join(seen)}"
            seen.append(line)
        run.send_signal(signal.SIGINT)
        _, rest = run.communicate(timeout=60)
        err = "".join(seen) + rest
        assert run.returncode == 130, err
        assert f"hpcflow: stopped following; {wf_id} goes on in the background: follow with " \
               f"'hpcflow status {wf_id} --watch', stop with 'hpcflow terminate {wf_id}'" in err
        assert "Traceback" not in err
        status = json.loads(run_cli(["status", wf_id, "--json"], home, tmp_path).stdout)
        assert status["phase"] == "Running"
    finally:
        run.kill()
        go.touch()
        run_cli(["daemon", "stop"], home, tmp_path)


def test_ctrl_c_while_the_script_still_runs_names_what_it_submitted(tmp_path: Path):
    home, go, submitted = tmp_path / "home", tmp_path / "go", tmp_path / "submitted"
    (tmp_path / "wf.py").write_text(SCRIPT + f"""
Path({str(submitted)!r}).write_text(wf.id)
while True:  # the script carries on with work of its own
    time.sleep(0.2)
""")
    run = start_run(tmp_path, home, go)
    try:
        wait_until(lambda: submitted.exists() and submitted.read_text(), "the script's submit()")
        wf_id = submitted.read_text()
        run.send_signal(signal.SIGINT)
        _, err = run.communicate(timeout=60)
        assert run.returncode == 130, err
        assert f"hpcflow: stopped following; {wf_id} goes on in the background" in err, err
        assert "Traceback" not in err
    finally:
        run.kill()
        go.touch()
        run_cli(["daemon", "stop"], home, tmp_path)
