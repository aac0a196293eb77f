"""``executors.local.preload``: the modules an OP imports, imported once for all its steps.

The real engine and fork server, started by ``wf.submit()`` with a config file that
preloads ``numpy.random`` (``import numpy`` alone leaves it to its first use) and a probe
module (each import of the probe appends its process id to a
ledger) and a module that fails to import. A fan-out whose OP imports the probe and numpy
and draws from numpy's and Python's global random states: the probe was imported once, by
the fork server, never by a step; every step drew different numbers (a fork inherits its
parent's random state: numpy's is seeded afresh per step, as in a new process); the failed
preload is named in the daemon's output and its steps still run. Without the config key
each step imports the probe itself, one line per step, until a reload (SIGHUP) of a config
that preloads it: then the next steps come from a new fork server that imported it. A
preloaded module that ends the fork server makes the engine start runners as processes."""

import json
import os
import signal
import sys

import pytest

from hpcflow import Step, Workflow, argo_range
from hpcflow.daemon.engine import engine_pid
from hpcflow.python import OP, PythonOPTemplate
from hpcflow.ui.api import Api
from tests.conftest import run_cli, wait_until

N = 6

PROBE = '''import os
with open(os.environ["PRELOAD_PROBE_LEDGER"], "a") as ledger:
    ledger.write(f"{os.getpid()}\\n")
print("probe: 12345")  # a module that talks as it is imported (the fork server's stdout
os.write(1, b"67890\\n")  # is its answers to the engine: a stray line would shift them)
'''


@OP.function
def draw(i: int) -> {"pid": int, "parent": int, "numpy": float, "python": float}:
    import os
    import random

    import hpcflow_preload_probe  # noqa: F401
    import numpy

    return {"pid": os.getpid(), "parent": os.getppid(), "numpy": float(numpy.random.random()),
            "python": random.random()}


def fan_out(name: str) -> list[dict]:
    wf = Workflow(name)
    wf.add(Step("draw", PythonOPTemplate(draw), parameters={"i": "{{item}}"},
                with_param=argo_range(N)))
    wf.submit()
    assert wf.wait(timeout=240) == "Succeeded"
    steps = [s for s in wf.query_step(name="draw") if s.type == "Pod"]
    assert len(steps) == N
    return [{k: s.outputs.parameters[k].value for k in ("pid", "parent", "numpy", "python")}
            for s in steps]


@pytest.fixture
def probe(tmp_path, monkeypatch):
    """The probe module on the engine's path; its ledger."""
    pytest.importorskip("numpy")
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "hpcflow_preload_probe.py").write_text(PROBE)
    (modules / "hpcflow_preload_broken.py").write_text("raise RuntimeError('no licence')\n")
    # a library that ends the process it is imported in (an MPI start-up that aborts)
    (modules / "hpcflow_preload_fatal.py").write_text("import os\nos._exit(7)\n")
    ledger = tmp_path / "ledger"
    monkeypatch.setenv("PRELOAD_PROBE_LEDGER", str(ledger))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(modules), *filter(None, [os.environ.get("PYTHONPATH")])]))
    return ledger


def test_preloaded_modules_are_imported_once_and_each_step_draws_its_own_numbers(
        hpc_home, probe) -> None:
    hpc_home.mkdir(mode=0o700)
    config = hpc_home / "config.toml"
    config.write_text('[executors.local]\nparallelism = 2\npreload = ["numpy.random", '
                      '"hpcflow_preload_broken", "hpcflow_preload_probe"]\n')
    os.chmod(config, 0o600)
    runs = fan_out("preloaded")
    importers = probe.read_text().split()
    assert len(importers) == 1, importers  # the fork server, once
    assert int(importers[0]) not in {r["pid"] for r in runs}
    assert len({r["numpy"] for r in runs}) == N, runs  # not one inherited state
    assert len({r["python"] for r in runs}) == N, runs
    out = (hpc_home / "logs" / "daemon.out").read_text()
    assert "preload of 'hpcflow_preload_broken' failed, steps import it themselves: " \
        "RuntimeError: no licence" in out, out[-2000:]
    assert "probe: 12345" in out and "67890" in out  # what it printed went to the log


def test_without_preload_each_step_imports_it_and_a_reload_preloads_it(hpc_home,
                                                                         probe) -> None:
    runs = fan_out("not-preloaded")
    importers = probe.read_text().split()
    assert sorted(map(int, importers)) == sorted(r["pid"] for r in runs)
    assert sys.modules.get("hpcflow_preload_probe") is None  # not this test process either

    config = hpc_home / "config.toml"
    config.write_text('[executors.local]\npreload = ["hpcflow_preload_probe"]\n')
    os.chmod(config, 0o600)
    os.kill(engine_pid(hpc_home), signal.SIGHUP)  # the running engine re-reads its config
    wait_until(lambda: "configuration reloaded" in (hpc_home / "logs" / "daemon.log")
               .read_text(), "the daemon to reload its config", 60)
    probe.unlink()
    runs = fan_out("preloaded-after-reload")
    importers = probe.read_text().split()
    assert len(importers) == 1 and int(importers[0]) not in {r["pid"] for r in runs}


def test_a_fork_server_that_keeps_dying_is_given_up_for_new_processes(hpc_home, probe):
    """A preloaded module that ends the fork server as it starts: after three such servers
    the engine starts its runners as new processes (its own children), and the steps run
    (before, they were retried every few seconds for ever). The list corrected and
    reloaded, steps come from a fork server again."""
    hpc_home.mkdir(mode=0o700)
    config = hpc_home / "config.toml"
    config.write_text('[executors.local]\npreload = ["hpcflow_preload_fatal"]\n')
    os.chmod(config, 0o600)
    runs = fan_out("barren-fork-servers")
    importers = probe.read_text().split()
    assert sorted(map(int, importers)) == sorted(r["pid"] for r in runs)  # each step's own
    logged = (hpc_home / "logs" / "daemon.log").read_text()
    assert "3 fork servers in a row ended without starting a runner" in logged, logged[-3000:]
    engine = engine_pid(hpc_home)
    assert {r["parent"] for r in runs} == {engine}

    config.write_text('[executors.local]\npreload = ["hpcflow_preload_probe"]\n')
    os.kill(engine, signal.SIGHUP)
    wait_until(lambda: "configuration reloaded" in (hpc_home / "logs" / "daemon.log")
               .read_text(), "the daemon to reload its config", 60)
    runs = fan_out("fork-server-again")
    assert engine not in {r["parent"] for r in runs}
    assert len({r["parent"] for r in runs}) == 1  # one fork server, which preloaded the probe


SLOW_IMPORT = "import time\ntime.sleep(0.3)\nVALUE = 3\n"


RUN_SCRIPT = """
from hpcflow import Step, Workflow, argo_range
from hpcflow.python import OP, PythonOPTemplate


@OP.function
def slow(i: int) -> {"y": int}:
    import hpcflow_slow_import

    return {"y": i * hpcflow_slow_import.VALUE}


wf = Workflow("run-imports")
wf.add(Step("slow", PythonOPTemplate(slow), parameters={"i": "{{item}}"},
            with_param=argo_range(3)))
wf.submit()
"""


@OP.function
def times_three(i: int) -> {"y": int}:
    import hpcflow_slow_import

    return {"y": i * hpcflow_slow_import.VALUE}


@OP.function
def plus_one(i: int) -> {"y": int}:
    return {"y": i + 1}


def imports_and_not(name: str) -> Workflow:
    wf = Workflow(name)
    wf.add([Step("slow", PythonOPTemplate(times_three), parameters={"i": "{{item}}"},
                 with_param=argo_range(4)),
            Step("quick", PythonOPTemplate(plus_one), parameters={"i": "{{item}}"},
                 with_param=argo_range(4))])
    wf.submit()
    assert wf.wait(timeout=240) == "Succeeded"
    return wf


def test_steps_that_spend_their_time_importing_get_a_tip_to_preload(hpc_home, tmp_path,
                                                                    monkeypatch) -> None:
    """A template whose steps import a module that takes 0.3 s: ``hpcflow status`` (text
    and JSON) and the web page say to preload it, once, naming the module, the key and the
    config file; nothing for a template that imports nothing. Preloaded (SIGHUP), no tip."""
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "hpcflow_slow_import.py").write_text(SLOW_IMPORT)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(modules), *filter(None, [os.environ.get("PYTHONPATH")])]))
    wf = imports_and_not("imports")
    status = run_cli(["status", wf.id, "--json"], hpc_home, tmp_path)
    assert status.returncode == 0, status.stderr
    (tip,) = json.loads(status.stdout)["tips"]
    assert "importing hpcflow_slow_import: preload = [\"hpcflow_slow_import\"] under " \
           f"[executors.local] in {hpc_home.resolve() / 'config.toml'}" in tip, tip
    assert "times-three" in tip or "times_three" in tip, tip  # the slow template's
    text = run_cli(["status", wf.id], hpc_home, tmp_path).stdout
    assert text.count("  tip: ") == 1 and tip in text, text
    assert Api(hpc_home).phases(wf.id, 0, 0)["tips"] == [tip]  # the web page's header
    script = tmp_path / "slow_steps.py"
    script.write_text(RUN_SCRIPT)
    run = run_cli(["run", str(script)], hpc_home, tmp_path)
    assert run.returncode == 0, run.stderr
    assert "  tip: steps of 'slow" in run.stderr and 'preload = ["hpcflow_slow_import"]' \
        in run.stderr, run.stderr

    config = hpc_home / "config.toml"
    config.write_text('[executors.local]\npreload = ["hpcflow_slow_import"]\n')
    os.chmod(config, 0o600)
    os.kill(engine_pid(hpc_home), signal.SIGHUP)
    wait_until(lambda: "configuration reloaded" in (hpc_home / "logs" / "daemon.log")
               .read_text(), "the daemon to reload its config", 60)
    again = imports_and_not("preloaded")
    status = run_cli(["status", again.id, "--json"], hpc_home, tmp_path)
    assert json.loads(status.stdout)["tips"] == [], status.stdout
