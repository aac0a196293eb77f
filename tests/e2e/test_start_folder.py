"""The folder a user starts hpcflow in is not a place hpcflow imports code from.

``python -m`` searches the working directory first, before the standard library. The
daemon and its fork server are started that way, from wherever the user stands: a
``/tmp`` or a group's project folder where another account can leave a ``watchdog.py``
or a ``json.py``. Here such a folder is planted with modules that record being imported,
and the daemon is started in it twice, by ``hpcflow daemon start`` and by a script's
``submit()``; its steps run (forked by the fork server) and nothing planted is imported.

What the old behaviour gave by accident, a step importing ``helpers.py`` beside the
workflow script, is given on purpose: the script's own modules travel in the pickles
(``hpcflow.by_value``), so they work wherever the daemon was started and on any executor
(a fresh interpreter in another folder loads the pickled OP).

The commands run as a user runs them: the ``hpcflow`` console script (``python -m
hpcflow.cli.main`` would itself search the planted folder) and ``python wf.py``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import stop_engine

HPCFLOW = Path(sys.executable).parent / "hpcflow"
#: Names the engine, the fork server or a runner imports, a third-party one and standard
#: library ones (``-m`` puts the working directory ahead of the standard library).
PLANTED = ("watchdog", "cloudpickle", "sqlite_utils", "click", "json", "sqlite3", "selectors")

FAN_OUT = '''
import sys
from hpcflow import Step, Workflow
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def double(x: int) -> {"y": int}:
    return {"y": 2 * x}

wf = Workflow(name="start-folder")
wf.add(Step("double", PythonOPTemplate(double), parameters={"x": "{{item}}"},
            with_param=[1, 2, 3, 4]))
wf.submit()
if "--wait" in sys.argv:
    print(wf.wait(timeout=300))
'''

HELPERS = '''
class Scale:
    def __init__(self, factor):
        self.factor = factor

def triple(x):
    return 3 * x
'''

WITH_HELPERS = '''
import helpers
from helpers import triple
from shapes.area import square
from shapes.ops import Cube
from hpcflow import Step, Workflow
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def scaled(x: int, scale: helpers.Scale) -> {"y": int}:
    return {"y": helpers.triple(x) * scale.factor}

@OP.function
def tripled_square(x: int) -> {"y": int}:
    return {"y": triple(square(x))}

wf = Workflow(name="with-helpers")
wf.add([Step("scaled", PythonOPTemplate(scaled),
             parameters={"x": 5, "scale": helpers.Scale(2)}),
        Step("tripled-square", PythonOPTemplate(tripled_square), parameters={"x": 3}),
        Step("cube", PythonOPTemplate(Cube), parameters={"x": 2})])
wf.submit()
print(wf.wait(timeout=300))
for name in ("scaled", "tripled-square", "cube"):
    print(name, wf.query_step(name=name)[0].outputs.parameters["y"].value)
'''


def _planted(folder: Path, ledger: Path) -> Path:
    folder.mkdir()
    for name in PLANTED:
        (folder / f"{name}.py").write_text(
            f"open({str(ledger)!r}, 'a').write({name!r} + chr(10))\n")
    return folder


def _user_env(home: Path) -> dict[str, str]:
    return dict(os.environ, HPCFLOW_HOME=str(home), HPCFLOW_ENGINE_IDLE_EXIT="120",
                HPCFLOW_LOCAL_PARALLELISM="2")


def _hpcflow(args: list[str], home: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(HPCFLOW), *args], cwd=cwd, env=_user_env(home),
                          capture_output=True, text=True, timeout=400)


@pytest.fixture
def home(tmp_path: Path):
    home = tmp_path / "home"
    yield home
    stop_engine(home)


def test_modules_in_the_folder_the_daemon_starts_in_are_never_imported(tmp_path, home):
    ledger = tmp_path / "imported"
    shared = _planted(tmp_path / "shared", ledger)
    work = tmp_path / "work"
    work.mkdir()
    (work / "wf.py").write_text(FAN_OUT)

    started = _hpcflow(["daemon", "start"], home, shared)
    assert started.returncode == 0, started.stderr
    done = _hpcflow(["run", str(work / "wf.py")], home, shared)
    assert done.returncode == 0 and "Succeeded" in done.stdout, done.stdout + done.stderr
    assert not ledger.exists(), ledger.read_text()
    assert _hpcflow(["daemon", "stop"], home, shared).returncode == 0

    # the engine started by the script's submit(), in the same folder
    done = subprocess.run([sys.executable, str(work / "wf.py"), "--wait"], cwd=shared,
                          env=_user_env(home), capture_output=True, text=True, timeout=400)
    assert done.returncode == 0 and done.stdout.split()[-1:] == ["Succeeded"], \
        done.stdout + done.stderr
    assert not ledger.exists(), ledger.read_text()


def _project(work: Path) -> None:
    work.mkdir()
    (work / "helpers.py").write_text(HELPERS)
    (work / "shapes").mkdir()
    (work / "shapes" / "__init__.py").write_text("")
    (work / "shapes" / "area.py").write_text("def square(x):\n    return x * x\n")
    (work / "shapes" / "ops.py").write_text(
        "from hpcflow.python import OP, OPIO, OPIOSign\n"
        "from shapes.area import square\n"
        "class Cube(OP):\n"
        "    @classmethod\n"
        "    def get_input_sign(cls):\n"
        "        return OPIOSign({'x': int})\n"
        "    @classmethod\n"
        "    def get_output_sign(cls):\n"
        "        return OPIOSign({'y': int})\n"
        "    @OP.exec_sign_check\n"
        "    def execute(self, op_in):\n"
        "        return OPIO({'y': square(op_in['x']) * op_in['x']})\n")
    (work / "wf.py").write_text(WITH_HELPERS)


def test_modules_beside_the_workflow_script_reach_its_steps(tmp_path, home):
    work = tmp_path / "work"
    _project(work)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    started = _hpcflow(["daemon", "start"], home, elsewhere)
    assert started.returncode == 0, started.stderr
    done = subprocess.run([sys.executable, str(work / "wf.py")], cwd=elsewhere,
                          env=_user_env(home), capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-4:] == [
        "Succeeded", "scaled 30", "tripled-square 27", "cube 8"], done.stdout + done.stderr


def test_a_pickled_op_loads_in_a_fresh_interpreter_in_another_folder(tmp_path):
    """Any executor: the blob made by ``python wf.py`` in the project's folder, loaded by a
    new interpreter that cannot see that folder (as a Slurm job's runner is)."""
    work = tmp_path / "work"
    _project(work)
    (work / "pickle_it.py").write_text(
        "import sys, helpers\n"
        "from shapes.ops import Cube\n"
        "from hpcflow.spec import pickle_op_object\n"
        "from hpcflow.values import to_jsonable\n"
        "from hpcflow.python import OP\n"
        "@OP.function\n"
        "def f(x: int) -> {'y': int}:\n"
        "    return {'y': helpers.triple(x)}\n"
        "open(sys.argv[1], 'wb').write(pickle_op_object(f))\n"
        "open(sys.argv[2], 'wb').write(pickle_op_object(Cube))\n"
        "import json; open(sys.argv[3], 'w').write(json.dumps(to_jsonable(helpers.Scale(7))))\n")
    blobs = [tmp_path / "f.pkl", tmp_path / "cube.pkl", tmp_path / "scale.json"]
    made = subprocess.run([sys.executable, str(work / "pickle_it.py"), *map(str, blobs)],
                          cwd=work, capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    load = (
        "import sys, json, pickle\n"
        "from hpcflow.values import from_jsonable\n"
        "f = pickle.loads(open(sys.argv[1], 'rb').read())\n"
        "cube = pickle.loads(open(sys.argv[2], 'rb').read())\n"
        "scale = from_jsonable(json.loads(open(sys.argv[3]).read()))\n"
        "assert 'helpers' not in sys.modules and 'shapes' not in sys.modules\n"
        "from hpcflow.python import OPIO\n"
        "print(f().execute(OPIO({'x': 4}))['y'], cube().execute(OPIO({'x': 3}))['y'],"
        " scale.factor)\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    loaded = subprocess.run([sys.executable, "-P", "-c", load, *map(str, blobs)],
                            cwd=elsewhere, capture_output=True, text=True, timeout=120)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.split() == ["12", "27", "7"], loaded.stdout
