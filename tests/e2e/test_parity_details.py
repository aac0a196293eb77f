"""dflow parity, the finer points, each through the engine with outputs and phases checked:
``||`` in conditions, continue-on rules that are not met, a timeout that kills the step's
whole process tree and is not retried unless asked, declared defaults of a failed step's
outputs, script templates (the recorded image said once, a failing script, a reference to
something that is not an input refused at submission), and progress seen from the CLI."""


import json
import time
from pathlib import Path

import pytest

from hpcflow import ShellOPTemplate, Step, Workflow, argo_range
from hpcflow.errors import WorkflowDefinitionError
from hpcflow.io import InputParameter, OutputParameter
from hpcflow.python import OP, PythonOPTemplate
from tests.conftest import run_cli
from tests.e2e.test_failures import NAP, TIMEOUT, _pid_gone


@OP.function
def echo(x: int) -> {"y": int}:
    return {"y": x}


@OP.function
def fail_odd(x: int) -> {"y": int}:
    if x % 2:
        raise ValueError(f"odd {x}")
    return {"y": x}


def test_or_in_conditions_and_references_on_both_sides(hpc_home) -> None:
    wf = Workflow("or-conditions")
    two = Step("two", PythonOPTemplate(echo), parameters={"x": 2})
    three = Step("three", PythonOPTemplate(echo), parameters={"x": 3})
    wf.add([two, three])
    y2, y3 = two.outputs.parameters["y"], three.outputs.parameters["y"]
    wf.add([
        Step("either", PythonOPTemplate(echo), parameters={"x": 1},
             when="1 > 2 || 'a' == 'a'"),
        Step("neither", PythonOPTemplate(echo), parameters={"x": 1}, when="1 > 2 || 0 > 1"),
        Step("less", PythonOPTemplate(echo), parameters={"x": 1}, when="%s < %s" % (y2, y3)),
        Step("more", PythonOPTemplate(echo), parameters={"x": 1},
             when="%s > %s || %s == 5" % (y2, y3, y3)),
    ])
    wf.submit()
    assert wf.wait(timeout=60) == "Succeeded"
    phases = {name: wf.query_step(name=name)[0].phase
              for name in ("either", "neither", "less", "more")}
    assert phases == {"either": "Succeeded", "neither": "Skipped", "less": "Succeeded",
                      "more": "Skipped"}


@pytest.mark.parametrize("rule", [{"continue_on_num_success": 3},
                                  {"continue_on_success_ratio": 0.75}])
def test_continue_on_rules_that_are_not_met_fail_the_step(hpc_home, rule) -> None:
    """4 items, 2 fail: fewer than 3 successes, a ratio of 0.5 < 0.75."""
    wf = Workflow("not-enough")
    loop = Step("loop", PythonOPTemplate(fail_odd), parameters={"x": "{{item}}"},
                with_param=argo_range(4), **rule)
    wf.add(loop)
    wf.add(Step("after", PythonOPTemplate(echo), parameters={"x": 0}))
    wf.submit()
    assert wf.wait(timeout=60) == "Failed"
    items = [s for s in wf.query_step(name="loop") if s.type == "Pod"]
    assert sorted(s.phase for s in items) == ["Failed", "Failed", "Succeeded", "Succeeded"]
    assert not wf.query_step(name="after")  # never started


@OP.function
def with_child(ledger: str) -> {"done": bool}:
    import subprocess

    child = subprocess.Popen(["sleep", str(NAP)])
    Path(ledger).write_text(str(child.pid))
    time.sleep(NAP)
    return {"done": True}


def test_a_timeout_kills_the_process_tree_and_is_not_retried_by_default(hpc_home,
                                                                         tmp_path) -> None:
    ledger = tmp_path / "child.pid"
    wf = Workflow("timeout-tree")
    wf.add(Step("tree", PythonOPTemplate(with_child, retry_on_transient_error=2),
                parameters={"ledger": str(ledger)}, timeout=TIMEOUT))
    wf.submit()
    assert wf.wait(timeout=NAP / 2) == "Failed"
    step = wf.query_step(name="tree")[0]
    assert f"timeout of {TIMEOUT} s" in step.reason
    assert _pid_gone(int(ledger.read_text()))  # the OP's child went with it
    # a timeout is not a TransientError unless timeout_as_transient_error=True: one attempt
    assert len(wf.query_step(name="tree")) == 1


def test_a_failed_step_outputs_its_declared_defaults(hpc_home) -> None:
    wf = Workflow("defaults-on-failure")
    broken = Step("broken", PythonOPTemplate(fail_odd, output_parameter_default={"y": -1}),
                  parameters={"x": 1}, continue_on_failed=True)
    wf.add(broken)
    wf.add(Step("after", PythonOPTemplate(echo),
                parameters={"x": broken.outputs.parameters["y"]}))
    wf.submit()
    assert wf.wait(timeout=60) == "Succeeded"
    assert wf.query_step(name="broken")[0].phase == "Failed"
    assert wf.query_step(name="after")[0].outputs.parameters["y"].value == -1


def test_script_templates_say_the_image_once_and_fail_with_the_status(hpc_home,
                                                                      tmp_path) -> None:
    ok = ShellOPTemplate(name="ok", image="alpine:3.19",
                         script="echo {{inputs.parameters.word}} > /tmp/word.txt")
    ok.inputs.parameters = {"word": InputParameter()}
    ok.outputs.parameters = {"word": OutputParameter(value_from_path="/tmp/word.txt")}
    bad = ShellOPTemplate(name="bad", image="alpine:3.19", script="echo going; exit 3")
    wf = Workflow("scripts")
    wf.add(Step("ok", ok, parameters={"word": "hello"}))
    wf.add(Step("bad", bad, continue_on_failed=True))
    wf.submit()
    assert wf.wait(timeout=60) == "Succeeded"
    assert wf.query_step(name="ok")[0].outputs.parameters["word"].value.strip() == "hello"
    failed = wf.query_step(name="bad")[0]
    assert failed.phase == "Failed" and "exited with status 3" in failed.reason
    log = json.loads(run_cli(["logs", wf.id, "ok", "--json"], hpc_home, tmp_path).stdout)
    assert log["log"].count("image 'alpine:3.19' is recorded") == 1, log["log"]


def test_a_script_parameter_whose_value_holds_tmp_is_passed_unchanged(hpc_home) -> None:
    """dflow rewrites the template's ``/tmp`` paths first, then puts the values in."""
    keep = ShellOPTemplate(name="keep", script="echo {{inputs.parameters.where}} > /tmp/out.txt")
    keep.inputs.parameters = {"where": InputParameter()}
    keep.outputs.parameters = {"out": OutputParameter(value_from_path="/tmp/out.txt")}
    wf = Workflow("tmp-value")
    wf.add(Step("keep", keep, parameters={"where": "/tmp/data/in.txt"}))
    wf.submit()
    assert wf.wait(timeout=60) == "Succeeded"
    assert wf.query_step(name="keep")[0].outputs.parameters["out"].value == "/tmp/data/in.txt"


def test_a_script_reference_that_is_not_an_input_is_refused_at_submission(hpc_home) -> None:
    typo = ShellOPTemplate(name="typo", script="echo {{inputs.parameters.nmae}}")
    typo.inputs.parameters = {"name": InputParameter()}
    wf = Workflow("typo")
    wf.add(Step("typo", typo, parameters={"name": "x"}))
    with pytest.raises(WorkflowDefinitionError,
                       match=r"uses \{\{inputs.parameters.nmae\}\}, which is not an input "
                             r"parameter of the template.*it has: name"):
        wf.submit()
    assert wf.id is None or not run_cli(["list", "--json"], hpc_home, Path.cwd()).stdout.count(
        "typo")


class Counter(OP):
    """Counts to n, reporting progress, waiting for a gate file after the third count."""

    @classmethod
    def get_input_sign(cls):
        from hpcflow.python import OPIOSign

        return OPIOSign({"n": int, "gate": str})

    @classmethod
    def get_output_sign(cls):
        from hpcflow.python import OPIOSign

        return OPIOSign({"done": int})

    @OP.exec_sign_check
    def execute(self, op_in):
        self.progress_total = op_in["n"]
        for i in range(op_in["n"]):
            self.progress_current = i + 1
            if i == 2:
                while not Path(op_in["gate"]).exists():
                    time.sleep(0.05)
            time.sleep(0.05)
        return {"done": op_in["n"]}


def test_progress_is_seen_by_hpcflow_steps_while_the_step_runs(hpc_home, tmp_path) -> None:
    gate = tmp_path / "gate"
    wf = Workflow("progress-cli")
    wf.add(Step("count", PythonOPTemplate(Counter), parameters={"n": 6, "gate": str(gate)}))
    wf.submit()
    deadline = time.time() + 60
    seen = None
    while time.time() < deadline:
        steps = json.loads(run_cli(["steps", wf.id, "--json"], hpc_home, tmp_path).stdout)
        count = next((s for s in steps if s["name"] == "count"), None)
        if count and count.get("progress") and count["progress"].get("current") == 3:
            seen = count["progress"]
            break
        time.sleep(0.2)
    gate.write_text("go")
    assert seen == {"current": 3, "total": 6}, seen
    table = run_cli(["steps", wf.id], hpc_home, tmp_path).stdout
    assert wf.wait(timeout=60) == "Succeeded"
    assert "3/6" in table or "Succeeded" in table
