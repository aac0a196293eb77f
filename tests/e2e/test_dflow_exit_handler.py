"""dflow's exit handler, ``Workflow(on_exit=TEMPLATE)`` (Argo's ``spec.onExit``), through the
engine: it runs once the steps ended, whatever their end, reads ``{{workflow.status}}`` and
``{{workflow.failures}}`` (in parameters, ``when`` conditions and scripts), and decides the
workflow's end as Argo does (a workflow whose steps succeeded fails with its handler).
A terminated workflow runs none, a stopped one does (Argo's ``stop``); ``retry`` runs it
again after the retried steps; the manifest (``to_dict``) names it."""

import json
from pathlib import Path

import pytest

from hpcflow import (
    InputParameter,
    OutputParameter,
    ShellOPTemplate,
    Step,
    Steps,
    Workflow,
)
from hpcflow.errors import WorkflowDefinitionError
from hpcflow.python import OP, PythonOPTemplate
from tests.conftest import run_cli, wait_until


@OP.function
def double(x: int) -> {"y": int}:
    return {"y": 2 * x}


@OP.function
def boom(x: int) -> {"y": int}:
    raise RuntimeError(f"boom on {x}")


@OP.function
def note(status: str, failures: str) -> {"seen": str}:
    """What an exit handler's Python step is handed: Argo's text for both."""
    listed = json.loads(json.loads(failures))
    names = sorted(f["displayName"] for f in listed or [])
    return {"seen": f"{status}:{','.join(names)}"}


def exit_handler(name: str = "exit-handler") -> Steps:
    """Argo's usual exit handler: a step for every end, one only when it failed, a script
    that reads both globals."""
    handler = Steps(name=name)
    handler.add(Step("note", PythonOPTemplate(note), parameters={
        "status": "{{workflow.status}}", "failures": "{{workflow.failures}}"}))
    shout = ShellOPTemplate(
        name="shout", script="echo 'status={{workflow.status}}' > /tmp/said.txt\n"
                             "echo {{workflow.failures}} >> /tmp/said.txt")
    shout.outputs.parameters["said"] = OutputParameter(value_from_path="/tmp/said.txt")
    handler.add(Step("on-failure", shout, when="{{workflow.status}} != Succeeded"))
    return handler


def outputs_of(wf: Workflow, name: str) -> dict:
    steps = wf.query_step(name=name)
    assert len(steps) == 1, [s.name for s in wf.query_step()]
    return {k: v.value for k, v in steps[0].outputs.parameters.items()}


def test_the_exit_handler_runs_after_steps_that_succeeded(hpc_home) -> None:
    wf = Workflow("exits-clean", on_exit=exit_handler())
    wf.add(Step("a", PythonOPTemplate(double), parameters={"x": 2}))
    wf.submit()
    assert wf.wait(timeout=180) == "Succeeded"
    assert outputs_of(wf, "note") == {"seen": "Succeeded:"}
    skipped = wf.query_step(name="on-failure")[0]
    assert skipped.phase == "Skipped"  # the when= read the status
    handler = wf.query_step(name=f"{wf.id}.onExit")[0]
    assert handler.phase == "Succeeded" and handler.parent_id is None


def test_the_exit_handler_is_told_what_failed(hpc_home) -> None:
    wf = Workflow("exits-failed", on_exit=exit_handler())
    wf.add(Step("a", PythonOPTemplate(double), parameters={"x": 2}))
    wf.add(Step("b", PythonOPTemplate(boom), parameters={"x": 3}))
    wf.submit()
    assert wf.wait(timeout=180) == "Failed"
    # the workflow keeps the failure of its steps (and their message), not the handler's end
    assert "boom on 3" in (wf.query().message or "")
    assert outputs_of(wf, "note")["seen"].startswith("Failed:")
    assert "b" in outputs_of(wf, "note")["seen"].split(":", 1)[1].split(",")
    said = outputs_of(wf, "on-failure")["said"]
    assert said.splitlines()[0] == "status=Failed"
    listed = json.loads(said.splitlines()[1])  # the shell's echo took off one quoting
    failed_b = [f for f in listed if f["displayName"] == "b"]
    assert failed_b and failed_b[0]["phase"] == "Failed" and "boom on 3" in failed_b[0]["message"]
    assert failed_b[0]["templateName"] and failed_b[0]["finishedAt"].endswith("Z")


def test_a_failing_exit_handler_fails_a_workflow_whose_steps_succeeded(hpc_home) -> None:
    handler = Steps(name="bad-handler")
    handler.add(Step("cleanup", PythonOPTemplate(boom), parameters={"x": 7}))
    wf = Workflow("exits-badly", on_exit=handler)
    wf.add(Step("a", PythonOPTemplate(double), parameters={"x": 2}))
    wf.submit()
    assert wf.wait(timeout=180) == "Failed"
    assert (wf.query().message or "").startswith("exit handler: ")
    assert outputs_of(wf, "a") == {"y": 4}
    assert wf.query_step(name="cleanup")[0].phase == "Failed"


def test_an_op_template_as_the_exit_handler(hpc_home) -> None:
    """A Python OP template itself (not a Steps) as ``on_exit``, its input from the status."""
    template = PythonOPTemplate(note)
    template.inputs.parameters["status"] = InputParameter(value="{{workflow.status}}")
    template.inputs.parameters["failures"] = InputParameter(value="{{workflow.failures}}")
    wf = Workflow("exits-op", on_exit=template)
    wf.add(Step("b", PythonOPTemplate(boom), parameters={"x": 1}))
    wf.submit()
    assert wf.wait(timeout=180) == "Failed"
    # as in Argo, the failed steps include the workflow's root (named after its id)
    assert outputs_of(wf, f"{wf.id}.onExit") == {"seen": f"Failed:b,{wf.id}"}


@OP.function
def flaky(gate: str) -> {"y": int}:
    if not Path(gate).exists():
        raise RuntimeError(f"no {gate} yet")
    return {"y": 1}


def running_until_ended(name: str, tmp_path: Path) -> Workflow:
    """A submitted workflow with an exit handler whose one step ("wait") runs until it is
    ended from outside, seen Running."""
    gate = ShellOPTemplate(
        name="gate", script=f"while [ ! -e {tmp_path}/never ]; do sleep 0.2; done")
    wf = Workflow(name, on_exit=exit_handler())
    wf.add(Step("wait", gate))
    wf.submit()
    wait_until(lambda: wf.query_step(name="wait", phase="Running"), "the step running")
    return wf


def test_a_terminated_workflow_runs_no_exit_handler(hpc_home, tmp_path: Path) -> None:
    wf = running_until_ended("exits-terminated", tmp_path)
    wf.terminate()
    assert wf.wait(timeout=120) == "Terminated"
    assert not wf.query_step(name="note")
    assert not wf.query_step(name=f"{wf.id}.onExit")


@pytest.mark.parametrize("how", ["sdk", "cli"])
def test_stop_runs_the_exit_handler(hpc_home, tmp_path: Path, how: str) -> None:
    """Argo's ``stop`` (``wf.stop()``, ``hpcflow stop WF``): the steps are cancelled as by
    ``terminate``, then the exit handler runs and the workflow ends Failed."""
    wf = running_until_ended("exits-stopped", tmp_path)
    if how == "sdk":
        wf.stop()
    else:
        done = run_cli(["stop", wf.id], hpc_home, tmp_path)
        assert done.returncode == 0 and f"stop requested for {wf.id}" in done.stdout, done
    assert wf.wait(timeout=120) == "Failed"
    assert wf.query_step(name="wait")[0].message == "stopped"
    assert outputs_of(wf, "note")["seen"] == f"Failed:{wf.id},wait"


def test_retry_runs_the_exit_handler_again_after_the_steps(hpc_home, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    wf = Workflow("exits-retried", on_exit=exit_handler())
    wf.add(Step("b", PythonOPTemplate(flaky), parameters={"gate": str(gate)}))
    wf.submit()
    assert wf.wait(timeout=180) == "Failed"
    assert outputs_of(wf, "note")["seen"].startswith("Failed:")
    gate.touch()
    wf.retry()  # a request, applied at the engine's next cycle
    wait_until(lambda: wf.query_status() != "Failed", "the workflow reopened")
    assert wf.wait(timeout=180) == "Succeeded"
    assert outputs_of(wf, "note") == {"seen": "Succeeded:"}  # one handler: the new one


def test_retry_of_a_workflow_whose_exit_handler_failed_runs_it_again(hpc_home,
                                                                      tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    handler = Steps(name="picky-handler")
    handler.add(Step("cleanup", PythonOPTemplate(flaky), parameters={"gate": str(gate)}))
    wf = Workflow("exits-handler-retried", on_exit=handler)
    wf.add(Step("a", PythonOPTemplate(double), parameters={"x": 2}))
    wf.submit()
    assert wf.wait(timeout=180) == "Failed"
    gate.touch()
    wf.retry()  # a request, applied at the engine's next cycle
    wait_until(lambda: wf.query_status() != "Failed", "the workflow reopened")
    assert wf.wait(timeout=180) == "Succeeded"
    assert [s.phase for s in wf.query_step(name="cleanup")] == ["Succeeded"]
    assert [s.phase for s in wf.query_step(name="a")] == ["Succeeded"]  # not run again


def test_an_exit_handler_that_is_not_a_template_or_lacks_a_value_is_refused() -> None:
    with pytest.raises(WorkflowDefinitionError, match=r"on_exit=.*takes a template"):
        Workflow("w", on_exit="cleanup").submit()
    needs = PythonOPTemplate(double)
    wf = Workflow("w", on_exit=needs)
    wf.add(Step("a", PythonOPTemplate(double), parameters={"x": 1}))
    with pytest.raises(WorkflowDefinitionError, match=r"exit handler template .* needs a value "
                                                      r"for input parameter 'x'"):
        wf.submit()


def test_the_manifest_names_the_exit_handler_and_runs_the_same(hpc_home) -> None:
    """``to_dict()`` writes Argo's ``spec.onExit``; ``from_dict()`` runs it again."""
    import copy

    from argo_workflows.configuration import Configuration
    from argo_workflows.model.io_argoproj_workflow_v1alpha1_workflow import (
        IoArgoprojWorkflowV1alpha1Workflow as ArgoWorkflowModel,
    )

    wf = Workflow("exits-dumped", on_exit=exit_handler("dumped-handler"))
    wf.add(Step("b", PythonOPTemplate(boom), parameters={"x": 5}))
    manifest = wf.to_dict()
    assert manifest["spec"]["onExit"] == "dumped-handler"
    model = ArgoWorkflowModel._from_openapi_data(
        _spec_property_naming=True, _check_type=True,
        _configuration=Configuration(discard_unknown_keys=False), **copy.deepcopy(manifest))
    assert model.spec.on_exit == "dumped-handler"
    again = Workflow.from_dict(manifest)
    again.submit()
    assert again.wait(timeout=180) == "Failed"
    assert outputs_of(again, "note")["seen"] == f"Failed:b,{again.id}"


def test_a_step_of_the_workflow_reading_its_end_is_refused_at_submission(hpc_home) -> None:
    """``{{workflow.status}}`` has no value while the steps run (Argo fails the step when it
    runs): refused at submission, naming the template, with or without an exit handler."""
    for on_exit in (None, exit_handler()):
        wf = Workflow("reads-too-early", on_exit=on_exit)
        wf.add(Step("early", PythonOPTemplate(note), parameters={
            "status": "{{workflow.status}}", "failures": "[]"}))
        with pytest.raises(WorkflowDefinitionError,
                           match=r"template 'reads-too-early' uses \{\{workflow.status\}\}, "
                                 r"which only the steps of an exit handler"):
            wf.submit()
    assert not list(hpc_home.glob("runs/*"))  # nothing was stored or run
