"""The daemon never waits on dpdispatcher: with a dispatcher machine whose host accepts
connections and then says nothing (every call to it hangs until its timeout), a chain of
local steps in the same workflow runs to the end at its usual pace, status queries answer at
once, and ``daemon stop`` still stops the daemon within seconds."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

from tests.conftest import integrity_ok, run_cli

WORKFLOW = '''
from hpcflow import Step, Workflow
from hpcflow.connectors.dispatcher import DispatcherExecutor
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def inc(x: int) -> {"y": int}:
    return {"y": x + 1}

wf = Workflow("offloop")
prev = None
chain = []
for i in range(10):
    prev = Step(f"c{i}", PythonOPTemplate(inc),
                parameters={"x": prev.outputs.parameters["y"] if prev else 0})
    chain.append(prev)
from hpcflow import Steps
lane = Steps("lane")
for step in chain:
    lane.add(step)
wf.add([Step("lane", lane),
        Step("stuck", PythonOPTemplate(inc), parameters={"x": 0},
             executor=DispatcherExecutor(machine="tarpit"))])
wf.submit()
'''


def _tarpit() -> tuple[socket.socket, int]:
    """A TCP server that accepts connections and never answers (nor closes them)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            held.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    return server, server.getsockname()[1]


def test_a_hanging_dispatcher_host_does_not_hold_up_the_daemon(tmp_path: Path):
    server, port = _tarpit()
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    (tmp_path / "known_hosts").write_text("")
    (home / "config.toml").write_text(f"""
[dispatchers.tarpit]
known_hosts = "{tmp_path / 'known_hosts'}"
min_poll_interval = 0.2
max_poll_interval = 0.5

[dispatchers.tarpit.machine]
batch_type = "Slurm"
context_type = "SSHContext"
remote_root = "/tmp/nowhere"

[dispatchers.tarpit.machine.remote_profile]
hostname = "127.0.0.1"
port = {port}
username = "nobody"
""")
    script = tmp_path / "wf.py"
    script.write_text(WORKFLOW)
    submitted_at = time.time()
    submitted = run_cli(["submit", str(script)], home, tmp_path)
    assert submitted.returncode == 0, submitted.stderr
    wf_id = submitted.stdout.strip()
    try:
        # Every call to the tarpit hangs 15 s (the host-key check's banner timeout), and the
        # first one starts in the cycle that takes the workflow: a loop that waited on it
        # could not finish ten steps one after the other before it ends.
        deadline = submitted_at + 12
        while True:
            started = time.time()
            out = run_cli(["steps", wf_id, "--json"], home, tmp_path)
            answered_in = time.time() - started
            steps = {s["name"]: s for s in json.loads(out.stdout)}
            if steps.get("c9", {}).get("phase") == "Succeeded":
                break
            assert time.time() < deadline, steps
            time.sleep(0.2)
        # The chain finished while the calls to the tarpit hang: that step is merely running.
        assert steps["c9"]["outputs"]["parameters"]["y"] == 10
        assert steps["stuck"]["phase"] == "Running", steps["stuck"]
        assert answered_in < 10
        assert run_cli(["terminate", wf_id], home, tmp_path).returncode == 0
        stopped_at = time.time()
        assert run_cli(["daemon", "stop"], home, tmp_path).returncode == 0
        assert time.time() - stopped_at < 10
        assert integrity_ok(home)
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)
        server.close()
