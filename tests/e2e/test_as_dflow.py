"""``--as-dflow``: dflow code runs on hpcflow unchanged, and the same code renamed runs too.

The scripts in ``dflow_examples/`` are written as dflow users write them (``import dflow``).
Each runs three ways: ``hpcflow run --as-dflow`` (no renaming), ``hpcflow submit --as-dflow``
+ waiting, and ``hpcflow run`` of the script with its imports renamed to ``hpcflow``. A dflow
application from PyPI (``dflow-hello``, pinned; its OP imports ``dflow.python``) runs a
workflow through ``--as-dflow`` and through ``HPCFLOW_AS_DFLOW=1`` in a console-script-like
program, with its package code as installed.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_cli, stop_engine
from tests.e2e.app_venv import make_app_venv, package_digest

EXAMPLES = Path(__file__).parent / "dflow_examples"
SCRIPTS = sorted(p.name for p in EXAMPLES.glob("*.py"))
#: A dflow application on PyPI whose OP imports ``dflow.python`` (OP, OPIO, OPIOSign,
#: Artifact) at import time; it needs nothing else of pydflow, so it is installed with
#: ``--no-deps`` (its declared dependency on pydflow is the point: pydflow is not there).
DFLOW_APP = "dflow-hello==0.1.7"


@pytest.fixture(autouse=True)
def _stop_engines(tmp_path: Path):
    """The engines the commands start for ``tmp_path/home`` end with the test."""
    yield
    stop_engine(tmp_path / "home")


def renamed(source: str) -> str:
    """The plain import rename a user makes: ``dflow`` -> ``hpcflow`` in imports and uses."""
    return re.sub(r"\bdflow\b(?!_)", "hpcflow", source)


def _statuses(home: Path, cwd: Path) -> list[dict]:
    out = run_cli(["list", "--json"], home, cwd)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.parametrize("script", SCRIPTS)
def test_dflow_example_runs_with_as_dflow_unchanged(script, tmp_path: Path) -> None:
    home = tmp_path / "home"
    (tmp_path / script).write_text((EXAMPLES / script).read_text())
    done = run_cli(["run", "--as-dflow", script], home, tmp_path)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "EXAMPLE OK" in done.stdout
    said = done.stderr.count("'import dflow' is served by hpcflow")
    assert said == 1, done.stderr
    assert all(w["phase"] == "Succeeded" for w in _statuses(home, tmp_path))


@pytest.mark.parametrize("script", SCRIPTS)
def test_dflow_example_runs_with_the_import_renamed(script, tmp_path: Path) -> None:
    home = tmp_path / "home"
    source = renamed((EXAMPLES / script).read_text())
    assert "dflow" not in source.replace("hpcflow", "")
    (tmp_path / script).write_text(source)
    done = run_cli(["run", script], home, tmp_path)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "EXAMPLE OK" in done.stdout
    assert "served by hpcflow" not in done.stderr


def test_without_as_dflow_a_dflow_script_fails_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "s.py").write_text((EXAMPLES / "with_workflow.py").read_text())
    done = run_cli(["run", "s.py"], tmp_path / "home", tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith(
        "hpcflow: s.py (line 7): ModuleNotFoundError: No module named 'dflow'")


def test_a_script_gets_the_arguments_after_it(tmp_path: Path) -> None:
    """``hpcflow run SCRIPT ARGS...`` as ``python SCRIPT ARGS...``: dflow applications' scripts
    take an input file or a workflow id to resubmit; options after SCRIPT that are not the
    command's own are the script's."""
    (tmp_path / "a.py").write_text(
        "import sys\nfrom dflow import Step, Workflow\n"
        "from dflow.python import OP, PythonOPTemplate\n"
        "@OP.function\ndef echo(x: str) -> {'y': str}:\n    return {'y': x}\n"
        "print('ARGV', sys.argv[1:])\n"
        "wf = Workflow(name=sys.argv[1])\n"
        "wf.add(Step('e', PythonOPTemplate(echo), parameters={'x': sys.argv[2]}))\n"
        "wf.submit()\n")
    home = tmp_path / "home"
    done = run_cli(["run", "--as-dflow", "a.py", "named", "--name", "x"], home, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "ARGV ['named', '--name', 'x']" in done.stdout
    # the command's own options stay its own wherever they are; after -- all is the script's
    submitted = run_cli(["submit", "a.py", "other", "-v", "--as-dflow", "--", "--name"],
                        home, tmp_path)
    assert submitted.returncode == 0, submitted.stderr
    assert "ARGV ['other', '-v', '--name']" in submitted.stdout


def test_argo_settings_are_accepted_and_explained_once(tmp_path: Path) -> None:
    script = tmp_path / "settings.py"
    script.write_text((EXAMPLES / "utils_and_types.py").read_text().replace(
        'print("EXAMPLE OK")', 'wf2 = Workflow(name="again")\n'
        'wf2.add(Step("cat", PythonOPTemplate(cat), artifacts={"files": first}))\n'
        'wf2.submit()\nprint("EXAMPLE OK")'))
    done = run_cli(["run", "--as-dflow", script.name], tmp_path / "home", tmp_path)
    assert done.returncode == 0, done.stderr
    lines = [x for x in done.stderr.splitlines() if "not used" in x]
    assert lines == [
        "hpcflow: config['host'], config['namespace'], config['k8s_api_server'] not used: "
        f"hpcflow runs this workflow on its own engine for {(tmp_path / 'home').resolve()} "
        "(no Argo server or Kubernetes)"], done.stderr


def test_submit_as_dflow_prints_the_ids(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (tmp_path / "w.py").write_text(
        "from dflow import Step, Workflow\nfrom dflow.python import OP, PythonOPTemplate\n"
        "@OP.function\ndef one() -> {'x': int}:\n    return {'x': 1}\n"
        "with Workflow(name='submitted') as wf:\n    Step('one', PythonOPTemplate(one))\n")
    done = run_cli(["submit", "--as-dflow", "--label", "k=v", "w.py"], home, tmp_path)
    assert done.returncode == 0, done.stderr
    wf_id = done.stdout.strip()
    assert wf_id.startswith("submitted-")
    watched = run_cli(["status", wf_id, "--watch"], home, tmp_path)
    assert watched.returncode == 0, watched.stderr
    assert [w["labels"] for w in _statuses(home, tmp_path)] == [{"k": "v"}]


def test_a_dflow_module_hpcflow_lacks_is_named(tmp_path: Path) -> None:
    (tmp_path / "r.py").write_text("from dflow.plugins.ray import RayClusterExecutor\n")
    done = run_cli(["run", "--as-dflow", "r.py"], tmp_path / "home", tmp_path)
    assert done.returncode == 1
    assert "hpcflow --as-dflow: dflow's module 'dflow.plugins.ray' (OPs run on a Ray " \
           "cluster) has no counterpart in hpcflow" in done.stderr.splitlines()[-1]


def _fake_pydflow(root: Path) -> Path:
    """A stand-in for the real pydflow: a package named dflow that is not hpcflow's."""
    (root / "dflow").mkdir(parents=True)
    (root / "dflow" / "__init__.py").write_text("REAL = True\n")
    return root


def test_refused_when_the_real_dflow_was_imported_first(tmp_path: Path) -> None:
    site = _fake_pydflow(tmp_path / "site")
    env = dict(os.environ, PYTHONPATH=str(site))
    code = ("import dflow\nfrom hpcflow.as_dflow import install\ninstall()\n")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1
    assert f"the real dflow (pydflow, {site / 'dflow' / '__init__.py'}) was imported before " \
           "hpcflow's --as-dflow hook" in done.stderr
    # on the command line: one line (here a sitecustomize imports the real one first)
    (site / "sitecustomize.py").write_text("import dflow\n")
    (tmp_path / "s.py").write_text("import dflow\n")
    cli = subprocess.run([sys.executable, "-m", "hpcflow.cli.main", "run", "--as-dflow",
                          "s.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                         env=dict(env, HPCFLOW_HOME=str(tmp_path / "home")))
    assert cli.returncode == 1
    assert cli.stderr.startswith("hpcflow: the real dflow (pydflow, ")
    assert len(cli.stderr.strip().splitlines()) == 1, cli.stderr


def test_the_hook_is_off_unless_asked_for() -> None:
    code = ("import hpcflow, hpcflow.workflow, hpcflow.as_dflow as a, sys\n"
            "assert not a.active()\n"
            "try:\n    import dflow\nexcept ModuleNotFoundError:\n    print('no dflow')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env={k: v for k, v in os.environ.items()
                                           if k != "HPCFLOW_AS_DFLOW"})
    assert done.stdout == "no dflow\n", done.stderr


# -- a dflow application from PyPI ----------------------------------------------------------
@pytest.fixture(scope="module")
def app_venv(tmp_path_factory) -> tuple[Path, Path]:
    """A virtual environment with ``dflow-hello`` installed in its site-packages (without
    pydflow) and hpcflow importable (this environment's site-packages added by a .pth, as
    if both were installed there): its python and its site-packages."""
    return make_app_venv(tmp_path_factory.mktemp("app"),
                         ["--no-deps", DFLOW_APP], hpcflow_first=True)


def _installed_digest(site: Path) -> str:
    return package_digest(site, "dflow_hello")


def _app_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ, HPCFLOW_HOME=str(tmp_path / "home"),
               HPCFLOW_ENGINE_IDLE_EXIT="120")
    env.pop("PYTHONPATH", None)
    env.pop("HPCFLOW_AS_DFLOW", None)
    return env


APP_WORKFLOW = '''\
"""A workflow of dflow-hello's Hello OP, as its README's example submits it."""
import sys
from pathlib import Path

from dflow import Step, Workflow, download_artifact, upload_artifact
from dflow.python import PythonOPTemplate
from dflow_hello import Hello


def main() -> None:
    Path("foo.txt").write_text("world")
    wf = Workflow(name="hello-app")
    hello = Step("hello", PythonOPTemplate(Hello, image="dflow-hello:latest"),
                 parameters={"num": 3}, artifacts={"foo": upload_artifact("foo.txt")})
    wf.add(hello)
    wf.submit()
    wf.wait()
    step = wf.query_step(name="hello")[0]
    assert step.phase == "Succeeded", step.phase
    num = step.outputs.parameters["num"].value
    download_artifact(step.outputs.artifacts["bar"], path="result")
    print("num", num, "bar", Path("result/output.txt").read_text())
    sys.stdout.flush()


if __name__ == "__main__":
    main()
'''


def test_a_dflow_application_from_pypi_runs_under_as_dflow(app_venv, tmp_path: Path) -> None:
    """Its OP class is pickled by reference (an installed module): the step's runner
    imports dflow_hello, whose ``from dflow.python import ...`` needs the hook there too."""
    vpy, purelib = app_venv
    before = _installed_digest(purelib)
    (tmp_path / "hello_app.py").write_text(APP_WORKFLOW)
    env = _app_env(tmp_path)
    done = subprocess.run([str(vpy), "-m", "hpcflow.cli.main", "run", "--as-dflow",
                           "hello_app.py"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    assert "num 6 bar Hello world" in done.stdout
    assert _installed_digest(purelib) == before
    wf_id = done.stdout.split()[-2]
    steps = json.loads(subprocess.run([str(vpy), "-m", "hpcflow.cli.main", "steps", wf_id,
                                       "--json"], env=env, capture_output=True, text=True,
                                      timeout=60).stdout)
    leaf = [s for s in steps if s["type"] == "Pod"]
    assert [(s["name"], s["phase"], s["outputs"]["parameters"]) for s in leaf] == [
        ("hello", "Succeeded", {"num": 6})]


def test_hpcflow_as_dflow_env_runs_a_console_script(app_venv, tmp_path: Path) -> None:
    """``HPCFLOW_AS_DFLOW=1 some-dflow-app`` once ``hpcflow dflow-hook install`` put its .pth
    line into the environment; the program is a console script as pip writes them."""
    vpy, purelib = app_venv
    hook = subprocess.run([str(vpy), "-m", "hpcflow.cli.main", "dflow-hook", "install"],
                          capture_output=True, text=True, timeout=60)
    assert hook.returncode == 0, hook.stderr
    assert (purelib / "hpcflow-as-dflow.pth").is_file()
    try:
        app_dir = tmp_path / "app"
        app_dir.mkdir()
        (app_dir / "hello_app.py").write_text(APP_WORKFLOW)
        script = vpy.parent / "hello-app"
        script.write_text(f"#!{vpy}\nimport sys\nsys.path.insert(0, {str(app_dir)!r})\n"
                          "from hello_app import main\nsys.exit(main())\n")
        script.chmod(0o755)
        env = _app_env(tmp_path)
        without = subprocess.run([str(script)], cwd=tmp_path, env=env, capture_output=True,
                                 text=True, timeout=120)
        assert without.returncode == 1 and "No module named 'dflow'" in without.stderr
        done = subprocess.run([str(script)], cwd=tmp_path, capture_output=True, text=True,
                              timeout=240, env=dict(env, HPCFLOW_AS_DFLOW="1"))
        assert done.returncode == 0, done.stderr
        assert "num 6 bar Hello world" in done.stdout
        assert done.stderr.count("'import dflow' is served by hpcflow") == 1
    finally:
        removed = subprocess.run([str(vpy), "-m", "hpcflow.cli.main", "dflow-hook", "remove"],
                                 capture_output=True, text=True, timeout=60)
    assert removed.returncode == 0 and not (purelib / "hpcflow-as-dflow.pth").exists()
