"""SIGKILL at ten random instants during a 200-step workflow: after each restart the workflow
goes on, and in the end every step ran exactly once (each step appends its tag to a ledger).

The instants are drawn from a seeded generator; the seed is printed (``pytest -s`` or the
failure report shows it) and can be fixed with ``HPCFLOW_TEST_SEED`` to replay a failure.

The last step of the chain waits for a release file that the test writes after the tenth
kill, so the workflow cannot end before all ten kills however fast the machine is (an earlier
version relied on the chain being slow enough and failed on a fast run).
"""

import json
import os
import random
import signal
import time
from collections import Counter
from pathlib import Path

from hpcflow.daemon.engine import engine_pid
from tests.conftest import integrity_ok, run_cli, wait_progressing

WORKFLOW = '''
from hpcflow import Step, Steps, Workflow, argo_range
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def mark(tag: str, ledger: str, x: int) -> {"y": int}:
    import os, time
    fd = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, (tag + "\\n").encode())
    os.close(fd)
    if tag == "c119":
        while not os.path.exists("RELEASE"):
            time.sleep(0.05)
    time.sleep(0.03)
    return {"y": x + 1}

wf = Workflow("sigkill-200")
template = PythonOPTemplate(mark)
prev = None
chain = []
for i in range(120):
    x = prev.outputs.parameters["y"] if prev else 0
    prev = Step(f"c{i}", template, parameters={"tag": f"c{i}", "ledger": "LEDGER", "x": x})
    chain.append(prev)
loop = Step("fan", template, parameters={"tag": "f{{item}}", "ledger": "LEDGER", "x": "{{item}}"},
            with_param=argo_range(80))
lane = Steps("lane")
for step in chain:
    lane.add(step)
wf.add([Step("chain", lane), loop])
wf.submit()
'''


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_sigkill_at_ten_random_instants(tmp_path: Path):
    seed = int(os.environ.get("HPCFLOW_TEST_SEED") or random.SystemRandom().randrange(1 << 30))
    print(f"HPCFLOW_TEST_SEED={seed}")
    rng = random.Random(seed)
    home = tmp_path / "home"
    ledger = tmp_path / "ledger.txt"
    script = tmp_path / "wf.py"
    release = tmp_path / "release"
    script.write_text(WORKFLOW.replace("LEDGER", str(ledger)).replace("RELEASE", str(release)))
    submitted = run_cli(["submit", str(script)], home, tmp_path)
    assert submitted.returncode == 0, submitted.stderr
    wf_id = submitted.stdout.strip()
    try:
        kills = []
        for _ in range(10):
            _wait(lambda: engine_pid(home) is not None, 30, "a daemon")
            pid = engine_pid(home)
            assert pid and pid > 0
            delay = rng.uniform(0.05, 1.2)
            time.sleep(delay)
            os.kill(pid, signal.SIGKILL)
            kills.append(round(delay, 3))
            _wait(lambda: engine_pid(home) is None, 10, "the killed daemon's lock")
            started = run_cli(["daemon", "start"], home, tmp_path)
            assert started.returncode == 0, started.stderr
        print(f"killed after {kills} s (seed {seed})")
        release.touch()
        # the 200 steps take as long as the machine needs: the wait ends when none has
        # changed phase for 2 minutes
        final = wait_progressing(
            lambda: json.loads(run_cli(["status", wf_id, "--json"], home, tmp_path).stdout),
            lambda data: data["phase"] not in ("Pending", "Running"),
            lambda data: data["steps"], what=f"the workflow (seed {seed})", interval=0.3)
        assert final["phase"] == "Succeeded", f"seed {seed}"
        counts = Counter(ledger.read_text().split())
        assert len(counts) == 200, f"seed {seed}"
        assert set(counts.values()) == {1}, (
            f"seed {seed}: ran twice: {sorted(k for k, v in counts.items() if v > 1)}")
        assert integrity_ok(home)
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)
