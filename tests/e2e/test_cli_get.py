"""``hpcflow get WF`` through the real CLI: the workflow as a tree (a nested DAG as nesting,
a loop as a group with counts, folded past ``--fold`` but never hiding a failed item), with
machine, attempt, reason and step directory; symbols and colours only on a terminal (a
pseudo-terminal here) and never with ``NO_COLOR``; ``-o json`` complete. ``hpcflow steps``
shows the same job columns."""

import json
import os
import re
from pathlib import Path

import pytest

from tests.conftest import run_cli, run_on_terminal

SCRIPT = '''
from hpcflow import DAG, Step, Task, Workflow, argo_range
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def check(x: int) -> {"y": int}:
    if x == 13:
        raise ValueError(f"thirteen is unlucky")
    return {"y": x}

inner = DAG(name="inner")
inner.add([Task("a", PythonOPTemplate(check), parameters={"x": 1}),
           Task("b", PythonOPTemplate(check), parameters={"x": 2})])
wf = Workflow("tree")
wf.add(Step("nested", inner))
wf.add(Step("fan", PythonOPTemplate(check), parameters={"x": "{{item}}"},
            with_param=argo_range(25)))
wf.submit()
print(wf.id)
wf.wait()
'''
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """A finished workflow (its fan-out failed at item 13) and its home."""
    tmp = tmp_path_factory.mktemp("get")
    home = tmp / "home"
    (tmp / "wf.py").write_text(SCRIPT)
    done = run_cli(["run", "wf.py"], home, tmp, timeout=300)
    wf_id = done.stdout.split()[0]
    yield home, tmp, wf_id
    run_cli(["daemon", "stop"], home, tmp)


def _on_terminal(args: list[str], home: Path, cwd: Path, **env: str) -> str:
    """The command's output as a terminal shows it (its stdout is a pseudo-terminal)."""
    full_env = dict(os.environ, HPCFLOW_HOME=str(home), COLUMNS="250", **env)
    if "NO_COLOR" in env and not env["NO_COLOR"]:
        full_env.pop("NO_COLOR")
    code, out, err = run_on_terminal(args, home, cwd, full_env)
    assert code == 0, err
    return out.replace("\r\n", "\n")


def test_get_shows_the_tree_folded_with_the_failure_kept(finished):
    home, cwd, wf_id = finished
    done = run_cli(["get", wf_id], home, cwd)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert not ANSI.search(out) and "✖" not in out  # a pipe: plain text
    lines = out.splitlines()
    assert lines[0] == f"Name:     {wf_id} (tree)"
    assert lines[1] == "Phase:    Failed"
    assert "Steps:    26 Succeeded, 1 Failed" in out
    header = next(line for line in lines if line.startswith("STEP"))
    assert header.split() == ["STEP", "PHASE", "DURATION", "ATTEMPT", "MACHINE", "JOB", "ID",
                              "MESSAGE"]
    nested = next(line for line in lines if "nested [DAG:" in line)
    assert nested.startswith("├─ nested [DAG: 2 Succeeded]")
    assert any(line.startswith("│  ├─ a ") for line in lines)
    assert any(line.startswith("│  └─ b ") for line in lines)
    fan = next(line for line in lines if " fan [group:" in line)
    assert fan.startswith("└─ fan [group: 24 Succeeded, 1 Failed]") and "Failed" in fan
    items = [line for line in lines if line.startswith("   ├─ fan(") or
             line.startswith("   └─ fan(")]
    # the first 10, the failed 13th, then the folded ones, then the last
    assert [line.split()[1] for line in items] == [f"fan({i}:{i})" for i in range(10)] + \
        ["fan(13:13)", "fan(24:24)"]
    failed = next(line for line in items if "fan(13:13)" in line)
    assert "Failed" in failed and "ValueError: thirteen is unlucky" in failed
    assert "local" in failed and re.search(r"\s1\s+local", failed)  # attempt 1, machine
    assert "   ├─ … 13 more (13 Succeeded)" in lines


def test_get_fold_zero_json_and_wide(finished):
    home, cwd, wf_id = finished
    everything = run_cli(["get", wf_id, "--fold", "0"], home, cwd).stdout
    assert sum(1 for line in everything.splitlines() if "─ fan(" in line) == 25
    assert "more (" not in everything
    data = json.loads(run_cli(["get", wf_id, "-o", "json"], home, cwd).stdout)
    assert data["id"] == wf_id and data["phase"] == "Failed"
    assert data["steps"] == {"Succeeded": 26, "Failed": 1}
    (root,) = data["tree"]
    nested, fan = root["children"]
    assert nested["type"] == "DAG" and [c["name"] for c in nested["children"]] == ["a", "b"]
    assert fan["type"] == "StepGroup" and len(fan["children"]) == 25 and "folded" not in fan
    bad = fan["children"][13]
    assert bad["phase"] == "Failed" and bad["reason"] == "ValueError: thirteen is unlucky"
    assert bad["machine"] == "local" and bad["attempt"] == 0
    assert Path(bad["step_dir"], "log.txt").exists()
    wide = run_cli(["get", wf_id, "-o", "wide"], home, cwd).stdout
    row = next(line for line in wide.splitlines() if "─ fan(13:13)" in line)
    assert bad["step_dir"] in row and f" {bad['id']} " in row
    folded = json.loads(run_cli(["get", wf_id, "-o", "json", "--fold", "3"], home, cwd).stdout)
    fan = folded["tree"][0]["children"][1]
    assert fan["folded"] == {"Succeeded": 20} and len(fan["children"]) == 5
    missing = run_cli(["get", "no-such-wf"], home, cwd)
    assert missing.returncode == 1 and missing.stderr.startswith("hpcflow: no workflow")
    assert "Traceback" not in missing.stderr


def test_get_on_a_terminal_has_symbols_and_colours_unless_no_color(finished):
    home, cwd, wf_id = finished
    shown = _on_terminal(["get", wf_id], home, cwd, NO_COLOR="")
    assert "\x1b[31m✖ Failed\x1b[0m" in shown  # red
    assert "\x1b[32m✔ Succeeded\x1b[0m" in shown  # green
    plain = _on_terminal(["get", wf_id], home, cwd, NO_COLOR="1")
    assert not ANSI.search(plain) and "✖" not in plain and "Failed" in plain


def test_steps_shows_attempt_machine_and_step_directory(finished):
    home, cwd, wf_id = finished
    out = run_cli(["steps", wf_id], home, cwd).stdout
    header, *rows = out.splitlines()
    assert header.split()[6:] == ["DURATION", "ATTEMPT", "MACHINE", "JOB", "ID", "REASON",
                                  "STEP", "DIR"]
    bad = next(line for line in rows if line.split()[1] == "fan(13:13)")
    assert re.search(r"\s1\s+local\s+ValueError: thirteen is unlucky\s+/", bad), bad
    data = json.loads(run_cli(["steps", wf_id, "--json"], home, cwd).stdout)
    bad = next(s for s in data if s["name"] == "fan(13:13)")
    assert bad["machine"] == "local" and Path(bad["step_dir"]).is_dir()
