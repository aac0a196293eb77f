"""Timeouts, retries on TransientError, FatalError, and failure reasons with the log's tail."""

import json
import time
from pathlib import Path

from hpcflow import Step, Workflow
from hpcflow.python import OP, FatalError, PythonOPTemplate, TransientError
from tests.conftest import run_cli

#: A step's time limit in these tests: long enough for a step to start on a busy machine (the
#: deadline counts from its submission), far shorter than NAP, what a timed-out step sleeps.
TIMEOUT = 10
NAP = 600


@OP.function
def sleepy(seconds: float, ledger: str) -> {"done": bool}:
    import os

    with open(ledger, "a") as f:
        f.write(f"{os.getpid()}\n")
    time.sleep(seconds)
    return {"done": True}


@OP.function
def flaky(ledger: str, fail_times: int) -> {"attempts": int}:
    path = Path(ledger)
    attempts = len(path.read_text().splitlines()) + 1 if path.exists() else 1
    with open(path, "a") as f:
        f.write("x\n")
    if attempts <= fail_times:
        raise TransientError(f"not yet ({attempts})")
    return {"attempts": attempts}


@OP.function
def fatal(x: int) -> {"y": int}:
    raise FatalError("the input is hopeless")


@OP.function
def noisy(x: int) -> {"y": int}:
    for i in range(30):
        print(f"line {i}")
    raise ValueError("boom at the end")


@OP.function
def slow_first(ledger: str) -> {"attempts": int}:
    path = Path(ledger)
    attempts = len(path.read_text().splitlines()) + 1 if path.exists() else 1
    with open(path, "a") as f:
        f.write("x\n")
    if attempts == 1:
        time.sleep(NAP)
    return {"attempts": attempts}


def _pid_gone(pid: int, within: float = 10) -> bool:
    deadline = time.time() + within
    while time.time() < deadline:
        if not Path(f"/proc/{pid}").exists():
            return True
        status = Path(f"/proc/{pid}/status").read_text()
        if "State:\tZ" in status:
            return True
        time.sleep(0.05)
    return False


def test_timeout_kills_the_step(hpc_home, tmp_path):
    ledger = tmp_path / "ledger"
    wf = Workflow("timeout")
    wf.add(Step("slow", PythonOPTemplate(sleepy),
                parameters={"seconds": NAP, "ledger": str(ledger)}, timeout=TIMEOUT))
    started = time.time()
    wf.submit()
    assert wf.wait(timeout=NAP / 2) == "Failed"
    assert time.time() - started < NAP  # killed at its timeout, not after its nap
    step = wf.query_step(name="slow")[0]
    assert step.phase == "Failed" and "TimeoutError" in step.reason and (
        f"timeout of {TIMEOUT} s" in step.reason)
    assert _pid_gone(int(ledger.read_text().split()[0]))


def test_transient_errors_are_retried(hpc_home, tmp_path):
    wf = Workflow("retry")
    wf.add(Step("flaky", PythonOPTemplate(flaky, retry_on_transient_error=3),
                parameters={"ledger": str(tmp_path / "a"), "fail_times": 2}))
    wf.add(Step("gives-up", PythonOPTemplate(flaky, retry_on_transient_error=1),
                parameters={"ledger": str(tmp_path / "b"), "fail_times": 5},
                continue_on_failed=True))
    wf.submit()
    assert wf.wait(timeout=60) == "Succeeded"
    ok = wf.query_step(name="flaky")[0]
    assert ok.phase == "Succeeded" and ok.outputs.parameters["attempts"].value == 3
    gave_up = wf.query_step(name="gives-up")[0]
    assert gave_up.phase == "Failed" and "TransientError: not yet (2)" in gave_up.reason
    assert len((tmp_path / "b").read_text().splitlines()) == 2


def test_fatal_error_is_not_retried(hpc_home):
    wf = Workflow("fatal")
    wf.add(Step("f", PythonOPTemplate(fatal, retry_on_transient_error=3), parameters={"x": 1}))
    wf.submit()
    assert wf.wait(timeout=60) == "Failed"
    step = wf.query_step(name="f")[0]
    assert step.reason == "FatalError: the input is hopeless"
    assert wf.query_step(name="f")[0].phase == "Failed"
    rows = json.loads(run_cli(["steps", wf.id, "--json"], hpc_home, Path.cwd()).stdout)
    assert next(r for r in rows if r["name"] == "f")["attempt"] == 0


def test_timeout_as_transient_error_retries(hpc_home, tmp_path):
    template = PythonOPTemplate(slow_first, retry_on_transient_error=2,
                                timeout_as_transient_error=True, timeout=TIMEOUT)
    wf = Workflow("timeout-retry")
    wf.add(Step("s", template, parameters={"ledger": str(tmp_path / "l")}))
    wf.submit()
    assert wf.wait(timeout=NAP / 2) == "Succeeded"
    assert wf.query_step(name="s")[0].outputs.parameters["attempts"].value == 2


def test_reason_and_log_tail_in_hpcflow_steps(hpc_home):
    wf = Workflow("noisy")
    wf.add(Step("n", PythonOPTemplate(noisy), parameters={"x": 1}))
    wf.submit()
    assert wf.wait(timeout=60) == "Failed"
    rows = json.loads(run_cli(["steps", wf.id, "--json"], hpc_home, Path.cwd()).stdout)
    step = next(r for r in rows if r["name"] == "n")
    assert step["reason"] == "ValueError: boom at the end"
    assert "line 29" in step["log_tail"] and "ValueError: boom at the end" in step["log_tail"]
    assert "line 0" not in step["log_tail"]
    table = run_cli(["steps", wf.id], hpc_home, Path.cwd()).stdout
    assert "last lines of the log of n" in table and "line 29" in table


def test_the_log_shows_the_ops_traceback_from_the_users_own_code(hpc_home):
    """The runner's and the OP wrapper's frames say nothing to the user: the traceback in
    the log starts at the first frame of the user's code."""
    wf = Workflow("noisy-trace")
    wf.add(Step("n", PythonOPTemplate(noisy), parameters={"x": 1}))
    wf.submit()
    assert wf.wait(timeout=60) == "Failed"
    log = run_cli(["logs", wf.id, "n"], hpc_home, Path.cwd()).stdout
    trace = log[log.index("Traceback (most recent call last):"):]
    frames = [line for line in trace.splitlines() if line.split("] ", 1)[-1].startswith(
        "  File ")]
    assert frames and all(f'"{__file__}"' in line for line in frames), trace
    assert ', in noisy' in frames[0] and "ValueError: boom at the end" in trace


@OP.function
def plus_one(x: int) -> {"y": int}:
    return {"y": x + 1}


def test_an_op_pickled_by_another_python_minor_fails_saying_so(hpc_home, monkeypatch):
    """cloudpickle's code objects differ between Python minor versions: a runner of another
    version (a container image's, a cluster's) says which it needs instead of failing in
    the middle of unpickling."""
    import hpcflow.spec

    monkeypatch.setattr(hpcflow.spec, "pickling_python", lambda: "3.0")
    wf = Workflow("other-python")
    wf.add(Step("one", PythonOPTemplate(plus_one), parameters={"x": 1}))
    wf.submit()
    wf.wait(timeout=120)
    step = wf.query_step(name="one")[0]
    assert wf.query_status() == "Failed" and step.phase == "Failed"
    assert step.reason.startswith("the OP was pickled by Python 3.0 and this step runs "
                                  "Python 3."), step.reason
