"""The daemon never waits on dpdispatcher: with a dispatcher machine whose host accepts
connections and then says nothing (every call to it hangs until its timeout), a chain of
local steps in the same workflow runs to the end at its usual pace, status queries answer at
once, and ``daemon stop`` still stops the daemon within seconds."""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from pathlib import Path

from hpcflow.daemon import client
from tests.conftest import integrity_ok, run_cli, wait_progressing

WORKFLOW = '''
from hpcflow import Step, Workflow
from hpcflow.connectors.dispatcher import DispatcherExecutor
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def inc(x: int) -> {"y": int}:
    import os, time
    deadline = time.time() + 600
    while x == 0 and not os.path.exists("GATE") and time.time() < deadline:
        time.sleep(0.05)  # the chain starts once the call to the tarpit hangs
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


class Hang:
    """One connection to the tarpit: when it was accepted and when the caller gave up."""

    def __init__(self) -> None:
        self.opened = time.time()
        self.closed: float | None = None

    def covers(self, start: float, end: float) -> bool:
        """The caller was hanging on this connection all the way from ``start`` to ``end``."""
        return self.opened <= start and (self.closed is None or end <= self.closed)


def _tarpit(gate: Path) -> tuple[socket.socket, int, list[Hang]]:
    """A TCP server that accepts connections and never answers (nor closes them); the list
    of its connections fills as they come and go; ``gate`` is made at the first one."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    hangs: list[Hang] = []

    def hold(conn: socket.socket, hang: Hang) -> None:
        with conn:
            try:
                while conn.recv(4096):  # the client's banner, then nothing until it closes
                    pass
            except OSError:
                pass
        hang.closed = time.time()

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            hangs.append(Hang())
            threading.Thread(target=hold, args=(conn, hangs[-1]), daemon=True).start()
            gate.touch()

    threading.Thread(target=accept, daemon=True).start()
    return server, server.getsockname()[1], hangs


def test_a_hanging_dispatcher_host_does_not_hold_up_the_daemon(tmp_path: Path):
    gate = tmp_path / "gate"
    server, port, hangs = _tarpit(gate)
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
    script.write_text(WORKFLOW.replace("GATE", str(gate)))
    submitted = run_cli(["submit", str(script)], home, tmp_path)
    assert submitted.returncode == 0, submitted.stderr
    wf_id = submitted.stdout.strip()
    try:
        # Every call to the tarpit hangs until its timeout (15 s), and the chain starts once
        # the first one hangs. A loop that waited on a call could record no step while a
        # connection is held, so the witness is a chain step recorded between two reads of
        # the store that both happened inside one held connection. Timed by the tarpit, not
        # by a budget: a busy machine runs the chain more slowly, never out of the witness.
        seen: list[tuple[float, float, int]] = []  # (asked, answered, chain steps done)

        def chain_done() -> int:
            asked = time.time()
            done = sum(row["phase"] == "Succeeded"
                       for row in client.query_steps(home, wf_id, name=r"c\d"))
            seen.append((asked, time.time(), done))
            return done

        wait_progressing(chain_done, lambda done: done == 10, what="the chain", interval=0.02)
        assert any(later[2] > before[2] and any(h.covers(before[0], later[1]) for h in hangs)
                   for before, later in itertools.pairwise(seen)), (
            f"no chain step was recorded during a call to the tarpit: reads {seen}, "
            f"connections {[(h.opened, h.closed) for h in hangs]}")
        # ... and a user's status query answers while a call hangs (tried until one fits
        # inside a held connection: they come one after the other)
        for _ in range(20):
            asked = time.time()
            out = run_cli(["steps", wf_id, "--json"], home, tmp_path)
            if any(h.covers(asked, time.time()) for h in hangs):
                break
        else:
            raise AssertionError(f"no status query fitted in a call to the tarpit: {hangs}")
        steps = {s["name"]: s for s in json.loads(out.stdout)}
        assert steps["c9"]["outputs"]["parameters"]["y"] == 10
        assert steps["stuck"]["phase"] == "Running", steps["stuck"]  # merely running
        held = [(round(h.opened - seen[0][0], 1), h.closed and round(h.closed - h.opened, 1))
                for h in hangs]
        print(f"chain of 10 done in {seen[-1][1] - seen[0][0]:.1f} s; tarpit connections "
              f"(opened, held s): {held}")
        assert run_cli(["terminate", wf_id], home, tmp_path).returncode == 0
        stopped_at = time.time()
        assert run_cli(["daemon", "stop"], home, tmp_path).returncode == 0
        assert time.time() - stopped_at < 10
        assert integrity_ok(home)
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)
        server.close()
        store = client._stores.pop(home, None)
        if store is not None:
            store.close()
