"""``hpcflow logs`` through the real CLI: every step's log prefixed with its name, a loop's
name for its items, a name two steps share refused with both listed, the root said to have
no log of its own, ``--tail`` and ``--grep``, ``--follow`` on a running step until it ends,
and after ``gc`` the tail the store kept, said to be one."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_cli, wait_until

SCRIPT = '''
import sys, time
from pathlib import Path
from hpcflow import Step, Steps, Workflow, argo_range
from hpcflow.python import OP, PythonOPTemplate

GO = sys.argv[1]

@OP.function
def talk(x: int) -> {"y": int}:
    print(f"hello from {x}")
    print("line two")
    return {"y": x}

@OP.function
def slow(x: int) -> {"y": int}:
    n = 0
    while not Path(GO).exists():
        n += 1
        print(f"tick {n}", flush=True)
        time.sleep(0.2)
    print("done", flush=True)
    return {"y": x}

inner = Steps(name="inner")
inner.add(Step("echo", PythonOPTemplate(talk), parameters={"x": 7}))
wf = Workflow("logs")
wf.add(Step("talk", PythonOPTemplate(talk), parameters={"x": "{{item}}"},
            with_param=argo_range(3)))
wf.add([Step("first", inner), Step("second", inner),
        Step("slow", PythonOPTemplate(slow), parameters={"x": 1})])
wf.submit()
print(wf.id)
'''


@pytest.fixture(scope="module")
def workflow(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("logs")
    home, go = tmp / "home", tmp / "go"
    (tmp / "wf.py").write_text(SCRIPT)
    done = run_cli(["submit", "wf.py", go.as_posix()], home, tmp)
    assert done.returncode == 0, done.stderr
    wf_id = done.stdout.split()[-1]
    yield home, tmp, wf_id, go
    go.touch()
    run_cli(["daemon", "stop"], home, tmp)


def _steps(home: Path, cwd: Path, wf_id: str) -> dict[str, list[dict]]:
    by_name: dict[str, list[dict]] = {}
    for step in json.loads(run_cli(["steps", wf_id, "--json"], home, cwd).stdout):
        by_name.setdefault(step["name"], []).append(step)
    return by_name


def test_follow_prints_a_running_steps_lines_until_it_ends(workflow):
    home, cwd, wf_id, go = workflow
    wait_until(lambda: _steps(home, cwd, wf_id).get("slow", [{}])[0].get("phase") == "Running",
               "the slow step to run")
    shown = cwd / "followed.txt"
    with open(shown, "w") as out:
        follower = subprocess.Popen(
            [sys.executable, "-m", "hpcflow.cli.main", "logs", wf_id, "slow", "-f",
             "--interval", "0.2"], cwd=cwd, env=dict(os.environ, HPCFLOW_HOME=str(home)),
            stdout=out, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: "tick " in shown.read_text(), "a first line followed")
        # the step cannot end before the go file exists: the line came while it ran
        assert _steps(home, cwd, wf_id)["slow"][0]["phase"] == "Running"
        go.touch()
        _, err = follower.communicate(timeout=120)
    finally:
        follower.kill()
    assert follower.returncode == 0, err
    lines = shown.read_text().splitlines()
    assert lines[-1] == "done" and all(line.startswith("tick ") for line in lines[:-1])
    numbers = [int(line.split()[1]) for line in lines[:-1]]
    assert numbers == list(range(numbers[0], numbers[-1] + 1))  # no line lost or repeated


def test_logs_select_prefix_tail_and_grep(workflow):
    home, cwd, wf_id, go = workflow
    go.touch()
    assert run_cli(["status", wf_id, "--watch", "--interval", "0.2"], home, cwd,
                   timeout=300).returncode == 0
    everything = run_cli(["logs", wf_id], home, cwd)
    assert everything.returncode == 0, everything.stderr
    lines = everything.stdout.splitlines()
    for i in range(3):
        assert f"[talk({i}:{i})] hello from {i}" in lines
    assert lines.count("[echo] hello from 7") == 2 and "[slow] done" in lines
    loop = run_cli(["logs", wf_id, "talk"], home, cwd).stdout.splitlines()
    assert loop == ["[talk(0:0)] hello from 0", "[talk(0:0)] line two",
                    "[talk(1:1)] hello from 1", "[talk(1:1)] line two",
                    "[talk(2:2)] hello from 2", "[talk(2:2)] line two"]
    assert run_cli(["logs", wf_id, "talk", "--tail", "1"], home, cwd).stdout.splitlines() == [
        f"[talk({i}:{i})] line two" for i in range(3)]
    assert run_cli(["logs", wf_id, "talk", "--grep", "hello from [12]"], home,
                   cwd).stdout.splitlines() == ["[talk(1:1)] hello from 1",
                                                "[talk(2:2)] hello from 2"]
    echo_ids = sorted(s["id"] for s in _steps(home, cwd, wf_id)["echo"])
    shared = run_cli(["logs", wf_id, "echo"], home, cwd)
    assert shared.returncode == 1 and shared.stderr.count("\n") == 1
    assert f"'echo' names 2 steps of {wf_id}: {echo_ids[0]} echo, {echo_ids[1]} echo: give " \
           "its id" in shared.stderr
    one = run_cli(["logs", wf_id, str(echo_ids[1])], home, cwd)
    assert one.stdout == "hello from 7\nline two\n"  # one step: as it is, no prefix
    root = run_cli(["logs", wf_id, wf_id], home, cwd)
    assert root.returncode == 1 and "root and has no log of its own" in root.stderr
    assert f"'hpcflow logs {wf_id}' shows every step's" in root.stderr
    bad = run_cli(["logs", wf_id, "talk", "--grep", "("], home, cwd)
    assert bad.returncode == 1 and "is not a regular expression" in bad.stderr
    assert "Traceback" not in bad.stderr + shared.stderr + root.stderr


BROKEN = '''
from hpcflow import Step, Workflow
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def fine() -> {"y": int}:
    print("all good")
    return {"y": 1}

@OP.function
def broken() -> {"y": int}:
    print("about to fail")
    raise ValueError("as planned")

wf = Workflow("gone")
wf.add([Step("fine", PythonOPTemplate(fine)), Step("broken", PythonOPTemplate(broken))])
wf.submit()
print(wf.id)
'''


def test_after_gc_the_kept_tail_is_shown_and_said_to_be_one(workflow):
    home, cwd, _, _ = workflow
    (cwd / "broken.py").write_text(BROKEN)
    wf_id = run_cli(["submit", "broken.py"], home, cwd).stdout.split()[-1]
    assert run_cli(["status", wf_id, "--watch", "--interval", "0.2"], home, cwd,
                   timeout=300).returncode == 1  # it failed
    assert run_cli(["gc", "--older-than", "0s"], home, cwd).returncode == 0
    assert not Path(_steps(home, cwd, wf_id)["broken"][0]["step_dir"]).exists()
    kept = run_cli(["logs", wf_id, "broken"], home, cwd)
    assert kept.returncode == 0, kept.stderr
    assert "about to fail" in kept.stdout and "ValueError: as planned" in kept.stdout
    assert "removed by 'hpcflow gc'" in kept.stderr and "last lines" in kept.stderr
    shown = json.loads(run_cli(["logs", wf_id, "broken", "--json"], home, cwd).stdout)
    assert shown["tail"] is True and "about to fail" in shown["log"]
    fine = run_cli(["logs", wf_id, "fine"], home, cwd)
    assert fine.returncode == 1 and fine.stderr == (
        "hpcflow: the log of fine was removed by 'hpcflow gc' (the store keeps the last lines "
        "of failed steps only)\n")


CHAIN = '''
import sys, time
from pathlib import Path
from hpcflow import Step, Workflow
from hpcflow.python import OP, PythonOPTemplate

GO = sys.argv[1]

@OP.function
def first(x: int) -> {"y": int}:
    print("first is waiting", flush=True)
    while not Path(GO).exists():
        time.sleep(0.2)
    return {"y": x}

@OP.function
def second(x: int) -> {"y": int}:
    print("second says hello", flush=True)
    return {"y": x}

wf = Workflow("later")
a = Step("a", PythonOPTemplate(first), parameters={"x": 1})
wf.add(a)
wf.add(Step("b", PythonOPTemplate(second), parameters={"x": a.outputs.parameters["y"]}))
wf.submit()
print(wf.id)
'''


def test_following_a_workflow_takes_in_steps_created_meanwhile(tmp_path):
    home, go = tmp_path / "home", tmp_path / "go"
    (tmp_path / "chain.py").write_text(CHAIN)
    wf_id = run_cli(["submit", "-q", "chain.py", str(go)], home, tmp_path).stdout.strip()
    shown = tmp_path / "followed.txt"
    try:
        with open(shown, "w") as out:
            follower = subprocess.Popen(
                [sys.executable, "-m", "hpcflow.cli.main", "logs", wf_id, "-f", "--interval",
                 "0.2"], cwd=tmp_path, env=dict(os.environ, HPCFLOW_HOME=str(home)),
                stdout=out, stderr=subprocess.PIPE, text=True)
        wait_until(lambda: "[a] first is waiting" in shown.read_text(), "the first step's line")
        assert "b" not in _steps(home, tmp_path, wf_id)  # the second step does not exist yet
        go.touch()
        _, err = follower.communicate(timeout=120)
        assert follower.returncode == 0, err
        assert shown.read_text().splitlines() == ["[a] first is waiting",
                                                  "[b] second says hello"]
    finally:
        go.touch()
        run_cli(["daemon", "stop"], home, tmp_path)
