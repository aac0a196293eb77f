"""``hpcflow retry WF --step S --restart-successful`` through the real CLI and engine, as
Argo's ``retry --restart-successful --node-field-selector``: a succeeded step runs again,
every step that used what it made runs again with its new outputs (the later groups of a
Steps, the dependent tasks of a DAG, and what comes after them up to the root), and the
steps that did not use it keep their outputs and are not run again.

Each OP counts its runs in a file and the consumers record the value they were given, so
the test sees which steps ran and what they read, not only the phases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli, wait_until
from tests.e2e.scripts import WAIT_FOR_GO, workflow_phase

SCRIPT = '''
import sys
from pathlib import Path
from hpcflow import DAG, Step, Task, Workflow
from hpcflow.python import OP, PythonOPTemplate

RUNS = sys.argv[1]

def _count(tag: str, seen: str = "") -> int:
    path = Path(RUNS) / tag
    runs = path.read_text().splitlines() if path.exists() else []
    runs.append(seen)
    path.write_text("\\n".join(runs) + "\\n")
    return len(runs)

@OP.function
def make(tag: str) -> {"v": int}:
    return {"v": _count(tag) * 100}

@OP.function
def use(v: int, tag: str) -> {"w": int}:
    _count(tag, str(v))
    return {"w": v + 1}

inner = DAG(name="inner")
a = Task("a", PythonOPTemplate(make), parameters={"tag": "a"})
b = Task("b", PythonOPTemplate(use), parameters={"v": a.outputs.parameters["v"], "tag": "b"})
c = Task("c", PythonOPTemplate(make), parameters={"tag": "c"})
inner.add([a, b, c])

wf = Workflow("restart")
first = Step("first", PythonOPTemplate(make), parameters={"tag": "first"})
wf.add(first)
wf.add(Step("inner", inner))
wf.add(Step("last", PythonOPTemplate(use),
            parameters={"v": first.outputs.parameters["v"], "tag": "last"}))
wf.submit()
print(wf.id)
'''


@pytest.fixture
def home(tmp_path: Path):
    home = tmp_path / "home"
    yield home
    run_cli(["daemon", "stop"], home, tmp_path)


def _runs(runs: Path) -> dict[str, list[str]]:
    """Each tag's runs: what the consumer was given, one line per run."""
    return {p.name: p.read_text().splitlines() for p in sorted(runs.iterdir())}


def _attempts(home: Path, cwd: Path, wf_id: str) -> dict[str, int]:
    steps = json.loads(run_cli(["steps", wf_id, "--json"], home, cwd).stdout)
    return {s["name"]: s["attempt"] for s in steps if s["type"] == "Pod"}


def _ids(home: Path, cwd: Path, wf_id: str) -> dict[str, int]:
    steps = json.loads(run_cli(["steps", wf_id, "--json"], home, cwd).stdout)
    return {s["name"]: s["id"] for s in steps if s["type"] == "Pod"}


def test_a_succeeded_step_runs_again_with_what_used_it(home: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    (tmp_path / "wf.py").write_text(SCRIPT)
    submitted = run_cli(["submit", "-q", "wf.py", "--", str(runs)], home, tmp_path)
    assert submitted.returncode == 0, submitted.stderr
    wf_id = submitted.stdout.strip()
    wait_until(lambda: workflow_phase(home, tmp_path, wf_id) == "Succeeded", "the first run")
    assert _runs(runs) == {"a": [""], "b": ["100"], "c": [""], "first": [""], "last": ["100"]}
    before = _ids(home, tmp_path, wf_id)

    # without the flag: a succeeded step is not "failed", and the error says what to add
    plain = run_cli(["retry", wf_id, "--step", "a"], home, tmp_path)
    assert plain.returncode == 1 and plain.stderr == (
        f"hpcflow: step 'a' of {wf_id} has no failed step to run again (Succeeded); "
        "--restart-successful runs succeeded steps again\n"), plain.stderr
    alone = run_cli(["retry", wf_id, "--restart-successful"], home, tmp_path)
    assert alone.returncode == 1 and alone.stderr == (
        "hpcflow: --restart-successful needs --step NAME: which succeeded steps to run "
        "again\n"), alone.stderr

    # a DAG task: its dependent task and the Steps group after the DAG run again; the
    # independent task and the groups before do not
    done = run_cli(["retry", wf_id, "--step", "a", "--restart-successful"], home, tmp_path)
    assert done.returncode == 0 and done.stdout == f"restart of 1 step requested for {wf_id}\n"
    wait_until(lambda: len(_runs(runs)["last"]) == 2
               and workflow_phase(home, tmp_path, wf_id) == "Succeeded", "the restart of 'a'")
    assert _runs(runs) == {"a": ["", ""], "b": ["100", "200"], "c": [""], "first": [""],
                           "last": ["100", "100"]}
    after = _ids(home, tmp_path, wf_id)
    assert after["a"] == before["a"] and after["c"] == before["c"]  # kept, not made anew
    assert after["first"] == before["first"]
    assert after["b"] != before["b"] and after["last"] != before["last"]  # planned anew
    attempts = _attempts(home, tmp_path, wf_id)
    assert attempts["a"] == 1 and attempts["c"] == 0 and attempts["first"] == 0

    # the first group: everything after it runs again, with its new output
    again = run_cli(["retry", wf_id, "--step", "first", "--restart-successful"], home, tmp_path)
    assert again.returncode == 0, again.stderr
    wait_until(lambda: len(_runs(runs)["last"]) == 3
               and workflow_phase(home, tmp_path, wf_id) == "Succeeded", "the restart of 'first'")
    assert _runs(runs) == {"a": ["", "", ""], "b": ["100", "200", "300"], "c": ["", ""],
                           "first": ["", ""], "last": ["100", "100", "200"]}
    get = json.loads(run_cli(["get", wf_id, "-o", "json"], home, tmp_path).stdout)
    assert get["phase"] == "Succeeded"


def test_a_running_workflow_is_not_restarted(home: Path, tmp_path: Path) -> None:
    go = tmp_path / "go"
    (tmp_path / "wait.py").write_text(WAIT_FOR_GO + '''
@OP.function
def quick() -> {"y": int}:
    return {"y": 1}

wf = Workflow("running")
wf.add(Step("quick", PythonOPTemplate(quick)))
wf.add(Step("wait", PythonOPTemplate(wait_for), parameters={"go": sys.argv[1]}))
wf.submit()
print(wf.id)
''')
    wf_id = run_cli(["submit", "-q", "wait.py", "--", str(go)], home, tmp_path).stdout.strip()
    wait_until(lambda: _attempts(home, tmp_path, wf_id).get("wait") is not None,
               "the second step to start")
    refused = run_cli(["retry", wf_id, "--step", "quick", "--restart-successful"], home,
                      tmp_path)
    assert refused.returncode == 1 and refused.stderr == (
        f"hpcflow: workflow {wf_id} is Running: --restart-successful runs steps of a finished "
        f"workflow again; wait for it to end, or 'hpcflow terminate {wf_id}' first\n")
    go.touch()
    wait_until(lambda: workflow_phase(home, tmp_path, wf_id) == "Succeeded", "the workflow to end")
    assert _attempts(home, tmp_path, wf_id) == {"quick": 0, "wait": 0}
