"""The engine survives an unexpected error in a cycle: it logs it and carries on."""

import threading

from hpcflow import Step, Workflow
from hpcflow.daemon.service import Service
from hpcflow.python import OP, PythonOPTemplate


@OP.function
def one(x: int) -> {"y": int}:
    return {"y": x}


def test_a_failing_cycle_is_logged_and_retried(hpc_home, monkeypatch, caplog):
    from hpcflow.daemon import engine

    monkeypatch.setattr(engine, "ensure_engine", lambda *a, **k: None)  # we run the service
    wf = Workflow("faulty")
    wf.add(Step("s", PythonOPTemplate(one), parameters={"x": 1}))
    wf.submit()
    service = Service(hpc_home, parallelism=1)
    real_collect = service.collect
    calls = {"n": 0}

    def flaky_collect() -> bool:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("disk hiccup")
        return real_collect()

    monkeypatch.setattr(service, "collect", flaky_collect)
    monkeypatch.setattr("hpcflow.daemon.service.ERROR_BACKOFF", 0.1)
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    try:
        assert wf.wait(timeout=60) == "Succeeded"
    finally:
        service.stop()
        thread.join(10)
    assert calls["n"] > 1
    assert "engine cycle failed" in caplog.text and "disk hiccup" in caplog.text
