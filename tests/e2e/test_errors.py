"""Bad input gives one clear line naming the culprit, never a traceback; the store stays intact."""

import json
import os
from pathlib import Path

import pytest

from tests.conftest import integrity_ok, run_cli

HEADER = """
from pathlib import Path
from typing import List
from hpcflow import Step, Workflow, DAG, Task
from hpcflow.io import OutputParameter
from hpcflow.python import OP, OPIO, OPIOSign, PythonOPTemplate

@OP.function
def to_int(x: int) -> {"y": int}:
    return {"y": str(x)}

@OP.function
def ok(x: int) -> {"y": int}:
    return {"y": x}
"""

CASES = {
    "missing-input": (
        'wf = Workflow("w"); wf.add(Step("s", PythonOPTemplate(ok), parameters={})); wf.submit()',
        ["step 's'", "missing input parameter 'x'"]),
    "bad-step-name": (
        'wf = Workflow("w"); wf.add(Step("bad_name", PythonOPTemplate(ok), parameters={"x": 1}))',
        ["'bad_name'", "alphanumeric characters or '-'"]),
    "bad-workflow-name": (
        'Workflow("Bad_WF")', ["'Bad_WF'", "RFC 1123"]),
    "wrong-constant-type": (
        'wf = Workflow("w"); wf.add(Step("s", PythonOPTemplate(ok), parameters={"x": "one"})); '
        'wf.submit()', ["step 's' parameter 'x'", "expects int", "got str"]),
    "unknown-parameter": (
        'wf = Workflow("w"); wf.add(Step("s", PythonOPTemplate(ok), parameters={"x": 1, "z": 2}));'
        ' wf.submit()', ["step 's' gives parameter 'z'"]),
    "undeclared-output": (
        'a = Step("a", PythonOPTemplate(ok), parameters={"x": 1}); '
        'b = Step("b", PythonOPTemplate(ok), parameters={"x": a.outputs.parameters["nope"]}); '
        'wf = Workflow("w"); wf.add(a); wf.add(b); wf.submit()',
        ["step 'b' uses {{steps.a.outputs.parameters.nope}}", "step 'a'",
         "has no output parameter 'nope'", "(it has: y)"]),
    "undeclared-output-in-text": (
        'a = Step("a", PythonOPTemplate(ok), parameters={"x": 1}); '
        'b = Step("b", PythonOPTemplate(ok), parameters={"x": 1}, '
        'when="%s > 0" % a.outputs.parameters["z"]); '
        'wf = Workflow("w"); wf.add(a); wf.add(b); wf.submit()',
        ["step 'b' uses {{steps.a.outputs.parameters.z}}", "no output parameter 'z'"]),
    "undeclared-dag-output": (
        'a = Task("a", PythonOPTemplate(ok), parameters={"x": 1}); '
        'd = DAG("d", tasks=[a]); '
        'd.outputs.parameters["y"] = OutputParameter(value_from_parameter='
        'a.outputs.parameters["why"]); '
        'wf = Workflow("w", dag=d); wf.submit()',
        ["output parameter 'y' of 'd' uses {{tasks.a.outputs.parameters.why}}",
         "no output parameter 'why'", "(it has: y)"]),
    "bad-literal-key": (
        'wf = Workflow("w"); wf.add(Step("s", PythonOPTemplate(ok), parameters={"x": 1}, '
        'key="Prep_Train")); wf.submit()',
        ["step 's'", "key name 'Prep_Train' breaks the naming rule"]),
    "dag-cycle": (
        'a = Task("a", PythonOPTemplate(ok), parameters={"x": 1}); '
        'b = Task("b", PythonOPTemplate(ok), parameters={"x": a.outputs.parameters["y"]}); '
        'a.dependencies.append(b); wf = Workflow("w", dag=DAG("d", tasks=[a, b])); wf.submit()',
        ["dependency cycle", "a, b"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_definition_errors_are_one_line(case, tmp_path: Path):
    body, expected = CASES[case]
    script = tmp_path / "wf.py"
    script.write_text(HEADER + "\n" + body + "\n")
    home = tmp_path / "home"
    run_cli(["list"], home, tmp_path)  # creates the store, so integrity is checked after
    result = run_cli(["run", str(script)], home, tmp_path)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [x for x in result.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("hpcflow: ")
    # blamed on the user's line, not on the hpcflow module that found the mistake
    assert lines[0].startswith(f"hpcflow: {script} (line "), lines[0]
    assert "hpcflow/" not in lines[0] and ".py:" not in lines[0], lines[0]
    for fragment in expected:
        assert fragment in lines[0], lines[0]
    assert integrity_ok(home)
    assert json.loads(run_cli(["list", "--json"], home, tmp_path).stdout) == []


def test_op_returning_wrong_type_fails_its_step_with_a_clear_reason(tmp_path: Path):
    script = tmp_path / "wf.py"
    script.write_text(HEADER + '\nwf = Workflow("w")\n'
                      'wf.add(Step("s", PythonOPTemplate(to_int), parameters={"x": 3}))\n'
                      'wf.submit()\n')
    home = tmp_path / "home"
    result = run_cli(["run", str(script)], home, tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "Failed" in result.stdout
    wf_id = result.stdout.split()[0]
    steps = json.loads(run_cli(["steps", wf_id, "--json"], home, tmp_path).stdout)
    pod = next(s for s in steps if s["type"] == "Pod")
    assert pod["phase"] == "Failed"
    for fragment in ("to_int", "output 'y'", "expected int", "got str"):
        assert fragment in pod["reason"]
    table = run_cli(["steps", wf_id], home, tmp_path).stdout
    assert "expected int" in table
    log = run_cli(["logs", wf_id, "s"], home, tmp_path).stdout
    assert "OPSignError" in log
    assert integrity_ok(home)
    run_cli(["daemon", "stop"], home, tmp_path)


def test_unreadable_and_broken_scripts(tmp_path: Path):
    home = tmp_path / "home"
    assert run_cli(["list"], home, tmp_path).returncode == 0  # the store exists from here on
    missing = run_cli(["run", str(tmp_path / "nope.py")], home, tmp_path)
    assert missing.returncode != 0 and "no such file" in missing.stderr
    assert "Traceback" not in missing.stderr
    broken = tmp_path / "broken.py"
    broken.write_text("from hpcflow import Workflow\nwf = Workflow('x'\n")
    result = run_cli(["run", str(broken)], home, tmp_path)
    assert result.returncode != 0 and "SyntaxError" in result.stderr and "line" in result.stderr
    assert "Traceback" not in result.stderr
    garbled = tmp_path / "garbled.py"
    garbled.write_bytes(b"\xff\xfe\x00not python\x80")
    r = run_cli(["run", str(garbled)], home, tmp_path)
    assert r.returncode != 0 and "cannot read workflow script" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    folder = run_cli(["run", str(tmp_path)], home, tmp_path)
    assert folder.returncode != 0 and "Traceback" not in folder.stderr
    if os.geteuid() != 0:  # root reads anything
        locked = tmp_path / "locked.py"
        locked.write_text("print(1)")
        locked.chmod(0)
        r = run_cli(["run", str(locked)], home, tmp_path)
        assert "cannot read" in r.stderr
    assert integrity_ok(home)


def test_unknown_workflow_and_step(tmp_path: Path):
    home = tmp_path / "home"
    r = run_cli(["status", "nope-12345"], home, tmp_path)
    assert r.returncode == 1 and r.stderr.strip() == (
        f"hpcflow: no workflow 'nope-12345' in {home}: see 'hpcflow list'")


def test_a_workflows_name_or_a_misspelt_step_is_answered_with_what_was_meant(tmp_path: Path):
    """A workflow's name given for its id, or a step's name misspelt: one line that names
    what exists; ``@latest`` is the newest workflow (as ``argo get @latest``)."""
    home = tmp_path / "home"
    empty = run_cli(["status", "@latest"], home, tmp_path)
    assert empty.returncode == 1 and empty.stderr.strip() == (
        f"hpcflow: no workflow yet in {home}: @latest names the newest one")
    script = tmp_path / "wf.py"
    script.write_text(HEADER + 'wf = Workflow("twice"); wf.add(Step("double-it", '
                      'PythonOPTemplate(ok), parameters={"x": 1})); wf.submit()\n')
    for _ in range(2):  # 'hpcflow run' waits for what the script submitted
        done = run_cli(["run", str(script)], home, tmp_path)
        assert done.returncode == 0, done.stderr
    newest, older = [w["id"] for w in json.loads(run_cli(["list", "--json"], home,
                                                             tmp_path).stdout)]
    by_name = run_cli(["status", "twice"], home, tmp_path)
    assert by_name.returncode == 1 and by_name.stderr.strip() == (
        f"hpcflow: no workflow 'twice' in {home}; did you mean {newest} (Succeeded) or "
        f"{older} (Succeeded)?: see 'hpcflow list'")
    latest = run_cli(["status", "@latest", "--json"], home, tmp_path)
    assert latest.returncode == 0 and json.loads(latest.stdout)["id"] == newest
    misspelt = run_cli(["logs", "@latest", "doble-it"], home, tmp_path)
    assert misspelt.returncode == 1 and misspelt.stderr.strip() == (
        f"hpcflow: workflow '{newest}' has no step 'doble-it' (by id, key or name); did you "
        f"mean 'double-it'?: see 'hpcflow get {newest}'")
    assert "Traceback" not in by_name.stderr + misspelt.stderr
    assert integrity_ok(home)


def test_an_undeclared_machine_is_refused_at_submission(tmp_path):
    """A step on a machine the config file does not declare: one line naming both, nothing
    stored."""
    from tests.conftest import run_cli

    home = tmp_path / "home"
    script = tmp_path / "wf.py"
    script.write_text(
        "from hpcflow import Step, Workflow, SlurmExecutor\n"
        "from hpcflow.python import OP, PythonOPTemplate\n"
        "@OP.function\n"
        "def one(x: int) -> {'y': int}:\n"
        "    return {'y': x}\n"
        "wf = Workflow('typo')\n"
        "wf.add(Step('far', PythonOPTemplate(one), parameters={'x': 1},\n"
        "            executor=SlurmExecutor(machine='mycluster')))\n"
        "wf.submit()\n")
    done = run_cli(["submit", str(script)], home, tmp_path)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "step 'far' runs on machine 'mycluster', which the config file" in lines[0]
    assert "add [machines.mycluster]" in lines[0]
    assert run_cli(["list", "--json"], home, tmp_path).stdout.strip() == "[]"


def test_a_step_without_an_image_on_argo_is_refused_at_submission(tmp_path):
    """Argo runs container steps only: a step sent there whose template has no image= is
    refused in one line naming the step when the workflow is submitted (no cluster needs to
    be reachable for that), not when its job is made; nothing is stored."""
    from tests.conftest import run_cli

    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    token = tmp_path / "argo.token"
    token.write_text("not-used\n")
    token.chmod(0o600)
    (home / "config.toml").write_text(
        f'[argo.k8s]\nserver = "https://argo.invalid:2746"\nnamespace = "hpc"\n'
        f'token_file = "{token}"\nartifact_secret = "argo-artifacts"\n')
    (home / "config.toml").chmod(0o600)
    script = tmp_path / "wf.py"
    script.write_text(
        "from hpcflow import ArgoExecutor, Step, Workflow\n"
        "from hpcflow.python import OP, PythonOPTemplate\n"
        "@OP.function\n"
        "def one(x: int) -> {'y': int}:\n"
        "    return {'y': x}\n"
        "wf = Workflow('no-image')\n"
        "wf.add(Step('boxless', PythonOPTemplate(one), parameters={'x': 1},\n"
        "            executor=ArgoExecutor(cluster='k8s')))\n"
        "wf.submit()\n")
    done = run_cli(["submit", str(script)], home, tmp_path)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "step 'boxless': an Argo cluster runs container steps only" in lines[0]
    assert "image=" in lines[0]
    assert run_cli(["list", "--json"], home, tmp_path).stdout.strip() == "[]"
