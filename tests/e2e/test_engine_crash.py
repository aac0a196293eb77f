"""The engine is SIGKILLed while a 50-step workflow runs; the next submission restarts it,
and the workflow finishes with every step executed exactly once (counted by the steps)."""

import os
import signal
import time
from collections import Counter
from pathlib import Path

from hpcflow import Step, Workflow
from hpcflow.daemon.engine import engine_pid
from hpcflow.python import OP, PythonOPTemplate
from tests.conftest import integrity_ok


@OP.function
def count_me(tag: str, ledger: str, x: int) -> {"y": int}:
    import time as _t

    with open(ledger, "a") as f:
        f.write(tag + "\n")
    _t.sleep(0.05)
    return {"y": x + 1}


def _chain_with_fanout(ledger: Path) -> Workflow:
    wf = Workflow("crash-me")
    template = PythonOPTemplate(count_me)
    prev = None
    for i in range(30):
        x = prev.outputs.parameters["y"] if prev else 0
        prev = Step(f"c{i}", template, parameters={"tag": f"c{i}", "ledger": str(ledger), "x": x})
        wf.add(prev)
    wf.add([Step(f"p{i}", template, parameters={"tag": f"p{i}", "ledger": str(ledger), "x": i})
            for i in range(20)])
    return wf


def _succeeded(wf: Workflow) -> int:
    return len(wf.query_step(phase="Succeeded", type="Pod"))


def test_sigkill_engine_then_resubmit_runs_every_step_once(hpc_home: Path, tmp_path: Path):
    ledger = tmp_path / "ledger.txt"
    wf = _chain_with_fanout(ledger)
    wf.submit()
    kills = 0
    for threshold in (8, 22, 35):
        deadline = time.time() + 120
        while _succeeded(wf) < threshold and time.time() < deadline:
            time.sleep(0.02)
        pid = engine_pid(hpc_home)
        assert pid and pid > 0
        os.kill(pid, signal.SIGKILL)
        kills += 1
        while engine_pid(hpc_home) is not None:
            time.sleep(0.01)
        # Submitting anything starts a new engine, which picks the first workflow up.
        other = Workflow("nudge")
        other.add(Step("n", PythonOPTemplate(count_me),
                       parameters={"tag": "nudge", "ledger": str(tmp_path / "n.txt"), "x": 0}))
        other.submit()
    assert wf.wait(timeout=240) == "Succeeded"
    counts = Counter(ledger.read_text().split())
    assert len(counts) == 50
    assert set(counts.values()) == {1}, {k: v for k, v in counts.items() if v != 1}
    assert _succeeded(wf) == 50 and kills == 3
    assert wf.query_step(name="c29")[0].outputs.parameters["y"].value == 30
    assert integrity_ok(hpc_home)
