"""A dflow application from PyPI runs a workflow of its own under ``--as-dflow``: dpgen2.

dpgen2 (DeepModeling's concurrent-learning package, the largest dflow application) is
installed from PyPI with its whole dependency closure pinned (``dflow_apps/
dpgen2-constraints.txt``), pydflow included: installing dpgen2 brings the real dflow, and the
hook must win over it. Its package code is used as installed (checked by digest): its
``PrepRunDPTrain`` Steps template (a prep step, then ``Slices("int('{{item}}')")`` over
``argo_sequence(argo_len(...), format=...)`` with keys built from a ``block_id`` input) and
its own ``PrepDPTrain``/``RunDPTrain`` OPs run as they are. The one stand-in is DeePMD-kit's
``dp`` command (``dflow_apps/fake-dp``), which RunDPTrain runs: the test machine has no
DeePMD-kit, and the point is the workflow, not the training.

The install takes about two minutes on first use (pip caches the wheels after that).
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import stop_engine
from tests.e2e.app_venv import make_app_venv, package_digest

APPS = Path(__file__).parent / "dflow_apps"
DPGEN2 = "dpgen2==0.1.0"
KEYS = ["iter-000000--prep-train", "iter-000000--run-train-0000",
        "iter-000000--run-train-0001", "iter-000000--run-train-0002"]


@pytest.fixture(scope="module")
def dpgen2_venv(tmp_path_factory) -> tuple[Path, Path]:
    """A virtual environment with dpgen2 and its dependencies (pydflow among them) in its
    own site-packages, and hpcflow importable after them (this environment's site-packages
    added by a .pth, as if hpcflow were installed there too): its python and site-packages."""
    return make_app_venv(tmp_path_factory.mktemp("dpgen2"),
                         ["-c", str(APPS / "dpgen2-constraints.txt"), DPGEN2],
                         hpcflow_first=False, timeout=1200)


def _digest(site: Path) -> str:
    return package_digest(site, "dpgen2")


def _env(tmp_path: Path) -> dict[str, str]:
    """HPCFLOW_HOME in ``tmp_path``; the stand-in ``dp`` first on PATH (steps inherit it)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    shutil.copy(APPS / "fake-dp", bin_dir / "dp")
    (bin_dir / "dp").chmod(0o755)
    env = dict(os.environ, HPCFLOW_HOME=str(tmp_path / "home"), HPCFLOW_ENGINE_IDLE_EXIT="120",
               PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    env.pop("PYTHONPATH", None)
    env.pop("HPCFLOW_AS_DFLOW", None)
    return env


def _run(vpy: Path, args: list[str], tmp_path: Path, timeout: float = 600
         ) -> subprocess.CompletedProcess:
    return subprocess.run([str(vpy), "-m", "hpcflow.cli.main", *args], cwd=tmp_path,
                          env=_env(tmp_path), capture_output=True, text=True,
                          timeout=timeout)


def _report(done: subprocess.CompletedProcess) -> dict:
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-2000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("{"))
    return json.loads(line)


@pytest.mark.timeout(2400)
def test_dpgen2_trains_through_its_own_steps_template_under_as_dflow(
        dpgen2_venv, tmp_path: Path) -> None:
    vpy, purelib = dpgen2_venv
    before = _digest(purelib)
    real = subprocess.run([str(vpy), "-c", "import dflow; print(dflow.__file__)"],
                          env=_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert real.stdout.strip() == str(purelib / "dflow" / "__init__.py"), real.stderr
    shutil.copy(APPS / "dpgen2_train.py", tmp_path / "dpgen2_train.py")
    try:
        first = _run(vpy, ["run", "--as-dflow", "dpgen2_train.py"], tmp_path)
        report = _report(first)
        assert "'import dflow' is served by hpcflow" in first.stderr
        assert report["phase"] == "Succeeded"
        models = report["models"]
        assert sorted(models) == ["task.0000", "task.0001", "task.0002"]
        # PrepDPTrain gave each model its own seed; RunDPTrain wrote every data system into
        # the training script (init data, then the iteration's systems found in its folder)
        assert len({m["seed"] for m in models.values()}) == 3
        for model in models.values():
            assert [Path(s).relative_to(Path(s).parents[1]).as_posix()
                    for s in model["systems"]] == ["init/sys-0", "init/sys-1",
                                                   "iter-000000/sys-a"]
        steps = json.loads(_run(vpy, ["steps", report["workflow"], "--json"],
                                tmp_path).stdout)
        keyed = {s["key"]: s["phase"] for s in steps if s.get("key")}
        assert keyed == dict.fromkeys(KEYS, "Succeeded")

        # dpgen2's resubmission: the prep step and the first slice reused by their keys
        again = _report(_run(vpy, ["run", "--as-dflow", "dpgen2_train.py", "reuse",
                                   report["workflow"]], tmp_path))
        assert again["phase"] == "Succeeded" and again["workflow"] != report["workflow"]
        runs = {task: m["run"] for task, m in again["models"].items()}
        assert runs["task.0000"] == models["task.0000"]["run"]
        assert runs["task.0001"] != models["task.0001"]["run"]
        assert runs["task.0002"] != models["task.0002"]["run"]
        # the reused prep step's seeds reach the slices that ran again
        assert {t: m["seed"] for t, m in again["models"].items()} == {
            t: m["seed"] for t, m in models.items()}
    finally:
        stop_engine(tmp_path / "home")
    assert _digest(purelib) == before
