"""``hpcflow.by_value``: which modules a workflow script's pickles carry by value.

Each case runs a script in a fresh interpreter (registration is for the whole process):
its folder holds a module, a package and a package with a compiled submodule (a copy of
the standard library's ``_json`` extension); another folder on ``PYTHONPATH`` holds one
more module."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = '''
import sys
import helpers, shapes.area, fast._json, elsewhere_mod, click
from hpcflow.by_value import register_script_modules
print(" ".join(sorted(register_script_modules())))
print(" ".join(register_script_modules()) or "-")  # nothing new the second time
'''


def _compiled_json() -> str:
    import _json

    found = getattr(_json, "__file__", None)
    if not found:
        pytest.skip("this Python has _json built in")
    return str(found)


def test_the_scripts_own_pure_python_modules_and_nothing_else(tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "shapes").mkdir(parents=True)
    (work / "fast").mkdir()
    (work / "helpers.py").write_text("x = 1\n")
    (work / "shapes" / "__init__.py").write_text("")
    (work / "shapes" / "area.py").write_text("y = 2\n")
    (work / "fast" / "__init__.py").write_text("")
    shutil.copy(_compiled_json(), work / "fast" / Path(_compiled_json()).name)
    other = tmp_path / "other"
    other.mkdir()
    (other / "elsewhere_mod.py").write_text("z = 3\n")
    (work / "wf.py").write_text(SCRIPT)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(other), *filter(None, [os.environ.get("PYTHONPATH")])]))
    done = subprocess.run([sys.executable, str(work / "wf.py")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    # not fast (compiled inside), not elsewhere_mod (a step has PYTHONPATH too), not click
    assert done.stdout.splitlines() == ["helpers shapes", "-"], done.stdout


def test_a_working_directory_removed_under_the_script_is_no_error(tmp_path: Path) -> None:
    code = ("import os, tempfile\n"
            "d = tempfile.mkdtemp(dir=os.environ['BASE'])\n"
            "os.chdir(d)\n"
            "os.rmdir(d)\n"
            "from hpcflow.by_value import register_script_modules\n"
            "print(register_script_modules())\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env=dict(os.environ, BASE=str(tmp_path)))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
