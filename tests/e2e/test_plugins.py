"""Schedulers and executor kinds are plugins found through entry points
(``connectors/plugins.py``): a new scheduler is one module plus one entry point plus its
test. ``tests/plugins/hpcflow_toy.py`` is such a module; here it is installed as pip installs
a package (a ``.dist-info`` with its ``entry_points.txt`` on the path) and a workflow runs
through it, unchanged hpcflow code in between."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import stop_engine

PLUGIN = Path(__file__).parents[1] / "plugins" / "hpcflow_toy.py"

WORKFLOW = '''
from hpcflow import Step, Workflow
from hpcflow.python import OP, PythonOPTemplate
from hpcflow_toy import ToyExecutor

@OP.function
def niceness() -> {"nice": int}:
    import os
    return {"nice": os.nice(0)}

wf = Workflow("toy")
wf.add(Step("n", PythonOPTemplate(niceness), executor=ToyExecutor(machine="t", niceness=7)))
wf.submit()
'''


def _install(site: Path) -> None:
    """What ``pip install hpcflow-toy`` would leave in site-packages."""
    site.mkdir(parents=True, exist_ok=True)
    shutil.copy(PLUGIN, site / PLUGIN.name)
    info = site / "hpcflow_toy-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hpcflow-toy\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[hpcflow.schedulers]\ntoy = hpcflow_toy:SCHEDULER\n")


def _run(args: list[str], tmp_path: Path, site: Path | None) -> subprocess.CompletedProcess:
    env = dict(os.environ, HPCFLOW_HOME=str(tmp_path / "home"), HPCFLOW_ENGINE_IDLE_EXIT="60")
    paths = [str(site)] if site else []
    env["PYTHONPATH"] = os.pathsep.join([*paths, str(Path(__file__).parents[2])])
    return subprocess.run([sys.executable, "-m", "hpcflow.cli.main", *args], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=240)


@pytest.fixture
def toy_home(tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    (home / "config.toml").write_text("[machines.t]\nscheduler = \"toy\"\n")
    (home / "config.toml").chmod(0o600)
    (tmp_path / "wf.py").write_text(WORKFLOW)
    yield home
    stop_engine(home)


def test_a_scheduler_plugin_is_one_module_and_an_entry_point(toy_home: Path,
                                                              tmp_path: Path) -> None:
    site = tmp_path / "site"
    _install(site)
    done = _run(["run", "wf.py"], tmp_path, site)
    assert done.returncode == 0, done.stderr
    wf_id = done.stdout.split()[-2]
    steps = {s["name"]: s for s in json.loads(_run(["steps", wf_id, "--json"], tmp_path,
                                                   site).stdout)}
    # the step ran as the toy scheduler's job: its script, its niceness
    assert steps["n"]["outputs"]["parameters"]["nice"] == 7
    script = next((toy_home / "runs" / wf_id).glob("n-*/job.sh")).read_text()
    assert "# toy-job hpcflow-" in script and "nice -n 7" in script
    # its resource names are the author side's: a wrong one is refused when written
    bad = (tmp_path / "wf.py").read_text().replace("niceness=7", "nicety=7")
    (tmp_path / "bad.py").write_text(bad)
    refused = _run(["run", "bad.py"], tmp_path, site)
    assert refused.returncode == 1
    assert ("ToyExecutor has no resource 'nicety' (known: niceness, extra_directives, "
            "group_size, array_size, array_throttle)") in refused.stderr


def test_without_the_plugin_its_machine_is_refused_in_one_line(toy_home: Path,
                                                               tmp_path: Path) -> None:
    done = _run(["doctor", "t"], tmp_path, None)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"hpcflow: {toy_home / 'config.toml'}: machines.t.scheduler must be one of lsf, pbs, "
        "sge, slurm, not 'toy'")
    # installed, the same machine passes doctor's probe of the toy's client tools
    site = tmp_path / "site"
    _install(site)
    checked = _run(["doctor", "t"], tmp_path, site)
    assert "toy commands" in checked.stdout, checked.stdout + checked.stderr


def _install_broken(site: Path) -> None:
    """A third-party package whose scheduler plugin fails on import."""
    (site / "hpcflow_broken.py").write_text("raise ImportError('needs libfoo.so.3')\n")
    info = site / "hpcflow_broken-0.1.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hpcflow-broken\n"
                                   "Version: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[hpcflow.schedulers]\nbroken = hpcflow_broken:SCHEDULER\n")


def test_a_broken_plugin_stops_only_what_needs_it(toy_home: Path, tmp_path: Path) -> None:
    """Plugins load one name at a time: a third-party scheduler that fails on import is
    skipped with a warning that names it, the other machines keep working, and a machine
    that names it is refused in one line that says why."""
    site = tmp_path / "site"
    _install(site)
    _install_broken(site)
    done = _run(["run", "wf.py"], tmp_path, site)
    assert done.returncode == 0, done.stderr
    assert "Succeeded" in done.stdout
    assert "plugin 'broken' (hpcflow_broken:SCHEDULER) cannot be loaded: ImportError: " \
        "needs libfoo.so.3" in done.stderr
    (toy_home / "config.toml").write_text("[machines.b]\nscheduler = \"broken\"\n")
    refused = _run(["doctor", "b"], tmp_path, site)
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1] == (
        f"hpcflow: {toy_home / 'config.toml'}: machines.b.scheduler: the hpcflow.schedulers "
        "plugin 'broken' (hpcflow_broken:SCHEDULER) cannot be loaded: ImportError: needs "
        "libfoo.so.3: repair or uninstall the package that provides it")
    assert "Traceback" not in refused.stderr


def test_every_registered_executor_kind_answers_the_protocol() -> None:
    """The kinds hpcflow registers (entry points of the installed package) each place a
    step, say which names the config declares, and tell where their logs are read."""
    from hpcflow.config_file import parse_config
    from hpcflow.connectors.plugins import ExecutorContext, executor_kinds, kind_for

    kinds = executor_kinds()
    assert set(kinds) >= {"local", "batch", "step_machine", "dispatcher"}
    config = parse_config({"machines": {"hpc": {"scheduler": "slurm"}}})
    context = ExecutorContext(Path("/nonexistent"), config)
    for name, kind in kinds.items():
        assert kind.name == name and isinstance(kind.late_logs, bool)
    assert kind_for("local", config, None).name == "local"
    assert kind_for("hpc", config, None).name == "batch"
    assert kind_for("ssh-x", config, {"kind": "step_machine"}).name == "step_machine"
    assert kinds["local"].log_transport(context, "local", None) is None
    with pytest.raises(Exception, match="no machine 'gone' in the config file"):
        kind_for("gone", config, None)
