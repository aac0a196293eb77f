"""What a local step costs the filesystem and the store, and that the cheaper way stays
exactly-once. The engine runs in this process (``Service``), with its real local executor,
fork server and runners.

- A local submission (the fork server is asked, which returns at once, and a second start of
  a step directory never runs it twice) records the job's intent and its id in one
  transaction, not two.
- The steps of a fan-out share one copy of their OP (``op.pkl`` hard-linked), and a step
  leaves no disk reserve behind (it is its result's temporary file).
- A crash between the fork and that commit (the transaction is rolled back: no job row)
  submits the step again, and the OP still runs once.
- A finished runner wakes the engine through the fork server's pipe: no file is made in
  the wake directory per step.
"""

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hpcflow import Step, Workflow, argo_range, faults
from hpcflow.daemon.service import Service
from hpcflow.python import OP, PythonOPTemplate


@OP.function
def double(x: int) -> {"y": int}:
    return {"y": 2 * x}


@OP.function
def record_run(log: str) -> {"y": int}:
    with open(log, "a") as f:
        f.write("ran\n")
    return {"y": 1}


@contextlib.contextmanager
def engine(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Service]:
    service = Service(home, parallelism=2)
    monkeypatch.setattr("hpcflow.daemon.service.ERROR_BACKOFF", 0.1)
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    try:
        yield service
    finally:
        service.stop()
        thread.join(30)


@pytest.fixture
def no_autostart(monkeypatch: pytest.MonkeyPatch) -> None:
    from hpcflow.daemon import engine as engine_module

    monkeypatch.setattr(engine_module, "ensure_engine", lambda *a, **k: None)


def test_a_local_step_costs_one_submission_commit_and_shares_its_op(hpc_home, monkeypatch,
                                                                     no_autostart):
    wf = Workflow("cheap")
    wf.add(Step("fan", PythonOPTemplate(double), parameters={"x": "{{item}}"},
                with_param=argo_range(8)))
    wf.submit()
    with engine(hpc_home, monkeypatch) as service:
        submitter = service.submitter
        counts = {"submissions": 0, "transactions": 0}
        inside = [False]
        real_submit_to, real_write = submitter._submit_to, service.store.write

        def counted_submit_to(*args, **kwargs):
            counts["submissions"] += 1
            inside[0] = True
            try:
                return real_submit_to(*args, **kwargs)
            finally:
                inside[0] = False

        def counted_write():
            if inside[0]:
                counts["transactions"] += 1
            return real_write()

        monkeypatch.setattr(submitter, "_submit_to", counted_submit_to)
        monkeypatch.setattr(service.store, "write", counted_write)
        assert wf.wait(timeout=120) == "Succeeded"
    assert counts["submissions"] >= 4  # 8 steps, 2 at a time
    assert counts["transactions"] == counts["submissions"], counts

    step_dirs = [d for d in (hpc_home / "runs" / wf.id).iterdir()
                 if d.is_dir() and d.name.startswith("fan")]
    assert len(step_dirs) == 8
    ops = [(d / "op.pkl").stat() for d in step_dirs]
    assert len({(s.st_dev, s.st_ino) for s in ops}) == 1, "each step has its own op.pkl"
    assert ops[0].st_nlink == 9  # 8 steps and the workflow's copy
    assert oct(ops[0].st_mode & 0o777) == "0o600"
    for d in step_dirs:
        left = {p.name for p in d.iterdir()}
        assert not left & {".space-reserve", ".result.json.tmp", ".op.pkl.tmp"}, left
    fan = wf.query_step(name="fan")[0]  # the loop: its items' outputs gathered
    assert fan.outputs.parameters["y"].value == [2 * i for i in range(8)]


def test_a_crash_between_the_fork_and_its_commit_still_runs_the_op_once(
        hpc_home, tmp_path, monkeypatch, no_autostart):
    log = tmp_path / "runs.txt"
    wf = Workflow("crashy")
    wf.add(Step("once", PythonOPTemplate(record_run), parameters={"log": str(log)}))
    wf.submit()
    crashed = []

    def crash_once(what: str) -> None:
        if not crashed:
            crashed.append(what)
            raise RuntimeError(f"injected crash after submitting {what}")

    faults.on(faults.AFTER_SUBMIT, crash_once)
    try:
        with engine(hpc_home, monkeypatch) as service:
            assert wf.wait(timeout=120) == "Succeeded"
            jobs = service.store.conn.execute("SELECT state FROM jobs").fetchall()
    finally:
        faults.clear()
    assert crashed, "the fault point was never reached"
    # the rolled-back submission left no job row: only the second one is recorded
    assert [j[0] for j in jobs] == ["finished"], jobs
    assert log.read_text() == "ran\n"


def test_finished_runners_wake_the_engine_through_a_pipe_not_a_file(hpc_home, monkeypatch,
                                                                    no_autostart):
    from hpcflow.connectors.executors import forkserver

    wakes = []
    real_relay = getattr(forkserver, "_relay_wakes", None)

    def counted_relay(fd, wake):
        def counted_wake():
            wakes.append(1)
            wake()
        return real_relay(fd, counted_wake)

    monkeypatch.setattr(forkserver, "_relay_wakes", counted_relay, raising=False)
    markers: list[str] = []
    real_clear = Service._clear_wake_dir

    def seen_then_cleared(self):
        markers.extend(p.name for p in (hpc_home / "wake").iterdir()
                       if p.name.startswith("done-"))
        real_clear(self)

    monkeypatch.setattr(Service, "_clear_wake_dir", seen_then_cleared)
    wf = Workflow("woken")
    wf.add(Step("fan", PythonOPTemplate(double), parameters={"x": "{{item}}"},
                with_param=argo_range(6)))
    wf.submit()
    with engine(hpc_home, monkeypatch):
        assert wf.wait(timeout=120) == "Succeeded"
    markers.extend(p.name for p in (hpc_home / "wake").iterdir() if p.name.startswith("done-"))
    assert markers == [], "runners left wake-up files"
    assert wakes, "no runner woke the engine through the fork server's pipe"
