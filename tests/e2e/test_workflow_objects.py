"""dflow's workflow objects, as dflow code uses them, through the engine: the root step named
after the workflow's id, steps that answer dict access, ``Workflow.query()`` and its
``get_step(...)``, ``stop``/``delete``, a reattached unknown id, debug mode's ``submit()``
that runs to the end, and a workflow an OP submits to the same home and waits for."""

import datetime
import time
from pathlib import Path

import pytest

from hpcflow import (
    ArgoWorkflow,
    InputParameter,
    OutputParameter,
    ShellOPTemplate,
    Step,
    Steps,
    Workflow,
)
from hpcflow import settings as config_module
from hpcflow.errors import HpcflowError, NotFoundError, WorkflowDefinitionError
from hpcflow.python import OP, OPIO, Artifact, OPIOSign, Parameter, PythonOPTemplate


class Tally(OP):
    """An OP whose outputs are the workflow's global outputs too (dflow's ``global_name``)."""

    @classmethod
    def get_input_sign(cls):
        return OPIOSign({"n": int})

    @classmethod
    def get_output_sign(cls):
        return OPIOSign({"total": Parameter(int, global_name="wf-total"),
                         "report": Artifact(Path, global_name="wf-report")})

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        Path("report.txt").write_text(f"n={op_in['n']}\n")
        return OPIO({"total": 10 * op_in["n"], "report": Path("report.txt")})


@OP.function
def double(x: int) -> {"y": int}:
    return {"y": 2 * x}


@OP.function
def wait_for_gate(gate: str) -> {"y": int}:
    deadline = time.monotonic() + 120
    while not Path(gate).exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    return {"y": 1}


@OP.function
def run_nested(x: int, debug: bool) -> {"phase": str, "y": int}:
    """Submit a workflow to this step's own home and wait for it (dflow's nested pattern)."""
    from hpcflow import Step, Workflow, config
    from hpcflow.python import PythonOPTemplate

    inner = Workflow("inner")
    inner.add(Step("double", PythonOPTemplate(double), parameters={"x": x}))
    if debug:
        config["mode"] = "debug"  # submit() returns when the workflow is over
        inner.submit()
        phase = inner.query_status()
    else:
        inner.submit()
        phase = inner.wait(timeout=120)
    return {"phase": phase, "y": inner.query_step(name="double")[0].outputs.parameters["y"].value}


def test_the_root_is_named_after_the_workflow_id(hpc_home) -> None:
    """dflow: query_step(name="hello") on workflow "hello" gives the step, never the root."""
    wf = Workflow("hello")
    wf.add(Step("hello", PythonOPTemplate(double), parameters={"x": 2}))
    wf.submit()
    assert wf.wait(timeout=60) == "Succeeded"
    found = wf.query_step(name="hello")
    assert [(s.type, s.outputs.parameters["y"].value) for s in found] == [("Pod", 4)]
    root = [s for s in wf.query_step() if s.parent_id is None]
    assert [(r.name, r.displayName, r.type) for r in root] == [(wf.id, wf.id, "Steps")]
    assert [s.id for s in wf.query_step(name=wf.id)] == [root[0].id]


def _nested_steps_workflow() -> Workflow:
    inner = Steps(name="inner")
    first = Step("first", PythonOPTemplate(double), parameters={"x": 1}, key="first")
    inner.add(first)
    inner.add(Step("second", PythonOPTemplate(double),
                   parameters={"x": first.outputs.parameters["y"]}, key="second"))
    wf = Workflow("objects")
    wf.add(Step("top", PythonOPTemplate(double), parameters={"x": 5}, key="top"))
    wf.add(Step("group", inner))
    return wf


def test_steps_answer_dict_access_and_query_gives_get_step(hpc_home) -> None:
    wf = _nested_steps_workflow()
    wf.submit()
    assert wf.wait(timeout=90) == "Succeeded"
    step = wf.query_step(key="second")[0]
    # dflow's ArgoStep is a dict too
    assert step["phase"] == "Succeeded" and step["key"] == "second"
    assert step["outputs"]["parameters"]["y"]["value"] == 4
    assert step["outputs"].parameters["y"].value == step.outputs.parameters["y"].value
    assert "outputs" in step and step.get("nope", "default") == "default"
    assert step["workflow"] == wf.id and step.workflow == wf.id
    datetime.datetime.strptime(step["startedAt"], "%Y-%m-%dT%H:%M:%SZ")  # Argo's form
    assert step.get_duration() >= datetime.timedelta(0)
    assert step.recover()["outputs"]["parameters"] == {"y": 4}
    with pytest.raises(KeyError):
        step["no-such-field"]

    info = wf.query()  # one read; get_step filters it, as dflow advises
    assert info.id == wf.id and info.metadata.name == wf.id
    assert info.status.phase == "Succeeded" and info["status"]["phase"] == "Succeeded"
    assert [s.key for s in info.get_step(key=["top", "second"])] == ["top", "second"]
    assert [s.name for s in info.get_step(phase="Succeeded", type="Pod")] == [
        "top", "first", "second"]
    assert len(info.status.nodes) == len(wf.query_step())
    group = info.get_step(name="group")[0]
    assert [s.name for s in info.get_step(parent_id=group.id)] == ["first", "second"]
    assert [s.name for s in wf.query_step(parent_id=group.id)] == ["first", "second"]
    top = info.get_step(key="top")[0]
    assert [s.id for s in info.get_step(parent_id=top.id)] == [top.id]  # a Pod: itself
    # generation by generation from the root: the root's children, then theirs
    assert [s.name for s in wf.query_step(sort_by_generation=True)] == [
        "top", "group", "first", "second"]
    assert [s.key for s in wf.query_step(type="Pod", sort_by_generation=True,
                                         phase=["Succeeded"])] == ["top", "first", "second"]
    assert [s.key for s in wf.query_step_by_key(["second", "top"], phase="Succeeded")] == [
        "top", "second"]


def test_submit_returns_an_argo_workflow_and_steps_have_children(hpc_home) -> None:
    """dflow's ``submit()`` returns an ``ArgoWorkflow`` (``.id``, ``.uid``,
    ``.metadata.name``); hpcflow's answers the Workflow's methods too. Argo's nodes have
    ``children``: ids of the nodes under them."""
    wf = _nested_steps_workflow()
    info = wf.submit()
    assert isinstance(info, ArgoWorkflow)
    assert info.id == wf.id and info.uid == wf.id
    assert info.metadata.name == wf.id and info["metadata"]["name"] == wf.id
    assert info.status.phase in ("Pending", "Running", "Succeeded")
    assert info.wait(timeout=90) == "Succeeded"  # wf = wf.submit() keeps working
    assert info.query_status() == "Succeeded"

    steps = wf.query_step()
    by_id = {s.id: s for s in steps}
    root = next(s for s in steps if s.parent_id is None)
    assert [by_id[c].name for c in root.children] == ["top", "group"]
    group = wf.query_step(name="group")[0]
    assert [by_id[c].name for c in group.children] == ["first", "second"]
    assert group["children"] == group.children and "children" in group
    top = wf.query_step(key="top")[0]  # read alone: its children are read when asked for
    assert top.children == [] and "children" not in top and top.get("children", []) == []
    snapshot = wf.query()
    assert [snapshot.status.nodes[c].name for c in
            snapshot.get_step(name="group")[0].children] == ["first", "second"]
    assert snapshot.get_step(name="group")[0].recover()["children"] == group.children


def test_an_unknown_id_fails_when_used_not_when_built(hpc_home) -> None:
    wf = Workflow(id="no-such-abcde")  # dflow builds it without asking the server
    with pytest.raises(NotFoundError, match="no-such-abcde"):
        wf.query_status()
    with pytest.raises(NotFoundError):
        wf.query_step()
    known = Workflow("known")
    known.add(Step("double", PythonOPTemplate(double), parameters={"x": 1}))
    known.submit()
    again = Workflow(id=known.id)
    assert again.name == "known" and again.wait(timeout=60) == "Succeeded"


def test_stop_and_delete(hpc_home, tmp_path) -> None:
    wf = Workflow("stopped")
    wf.add(Step("wait", PythonOPTemplate(wait_for_gate),
                parameters={"gate": str(tmp_path / "never")}))
    wf.submit()
    deadline = time.monotonic() + 60
    while not wf.query_step(name="wait", phase="Running") and time.monotonic() < deadline:
        time.sleep(0.2)
    wf.stop()
    assert wf.wait(timeout=60) == "Terminated"

    gone = Workflow("deleted")
    gone.add(Step("wait", PythonOPTemplate(wait_for_gate),
                  parameters={"gate": str(tmp_path / "never")}))
    gone.submit()
    while not gone.query_step(name="wait", phase="Running") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert (hpc_home / "runs" / gone.id).is_dir()
    gone.delete()  # a live workflow: terminated, then its files removed
    assert gone.query_status() == "Terminated"
    assert not (hpc_home / "runs" / gone.id).exists()


def test_debug_mode_submit_runs_the_workflow_to_its_end(hpc_home, monkeypatch, tmp_path
                                                        ) -> None:
    monkeypatch.setitem(config_module.config, "mode", "debug")
    wf = Workflow("debug")
    wf.add(Step("wait", PythonOPTemplate(wait_for_gate),
                parameters={"gate": str(tmp_path / "gate")}))
    (tmp_path / "gate").touch()
    wf.submit()
    assert wf.query_status() == "Succeeded"  # read right after submit(), as dflow tests do

    monkeypatch.setitem(config_module.config, "detach", True)
    detached = Workflow("detached")
    detached.add(Step("wait", PythonOPTemplate(wait_for_gate),
                      parameters={"gate": str(tmp_path / "later")}))
    detached.submit()
    assert detached.query_status() in ("Pending", "Running")
    (tmp_path / "later").touch()
    assert detached.wait(timeout=60) == "Succeeded"


@pytest.mark.parametrize("debug", [False, True])
def test_a_nested_workflow_does_not_deadlock_the_local_slots(hpc_home, monkeypatch,
                                                             debug) -> None:
    """One local slot: the outer step holds it while its nested workflow's step needs it."""
    monkeypatch.setitem(config_module.config, "local_parallelism", 1)
    wf = Workflow("outer")
    wf.add(Step("nest", PythonOPTemplate(run_nested), parameters={"x": 21, "debug": debug}))
    wf.submit()
    assert wf.wait(timeout=150) == "Succeeded"
    out = wf.query_step(name="nest")[0].outputs.parameters
    assert (out["phase"].value, out["y"].value) == ("Succeeded", 42)
    step_dir = next((hpc_home / "runs" / wf.id).glob("nest-*"))
    assert not any((step_dir / "nested").iterdir())  # the slot was taken back


def test_query_global_outputs(hpc_home, tmp_path) -> None:
    """dflow: None while no step gave one; then each global name holds the latest value."""
    from hpcflow import download_artifact

    wf = Workflow("globals")
    first = Step("first", PythonOPTemplate(Tally), parameters={"n": 1})
    wf.add(first)
    wf.add(Step("gate", PythonOPTemplate(wait_for_gate),
                parameters={"gate": str(tmp_path / "gate")}))
    wf.add(Step("second", PythonOPTemplate(Tally), parameters={"n": 2}))
    wf.submit()
    deadline = time.monotonic() + 60
    while not wf.query_step(name="first", phase="Succeeded") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert wf.query_global_outputs().parameters["wf-total"].value == 10
    (tmp_path / "gate").touch()
    assert wf.wait(timeout=90) == "Succeeded"
    outputs = wf.query_global_outputs()
    assert outputs.parameters["wf-total"].value == 20
    got = download_artifact(outputs.artifacts["wf-report"], path=tmp_path / "dl")
    assert Path(got[0]).read_text() == "n=2\n"

    plain = Workflow("no-globals")
    plain.add(Step("double", PythonOPTemplate(double), parameters={"x": 1}))
    plain.submit()
    assert plain.wait(timeout=60) == "Succeeded" and plain.query_global_outputs() is None


def test_wait_interval_resubmit_uid_and_pod_methods(hpc_home) -> None:
    """dflow's ``wf.wait(1)`` is an interval (it blocks until the end); ``resubmit()`` runs
    the workflow anew; ``uid`` is the id; an ArgoStep's pod methods are refused in one line."""
    wf = Workflow("siblings")
    wf.add(Step("wait", PythonOPTemplate(wait_for_gate), parameters={"gate": "."}))
    wf.submit()
    assert wf.wait(0.5) == "Succeeded"  # positional: the interval, not a timeout
    assert wf.uid == wf.id
    again = wf.resubmit()
    assert again.id != wf.id and again.wait(timeout=60) == "Succeeded"
    assert again.query_step(name="wait")[0].outputs.parameters["y"].value == 1
    step = wf.query_step(name="wait")[0]
    with pytest.raises(HpcflowError, match="hpcflow runs no Kubernetes"):
        step.get_pod()


def test_argos_connection_arguments_are_accepted() -> None:
    """Argo's connection arguments are accepted and not used (``on_exit=`` runs: see
    tests/e2e/test_dflow_exit_handler.py)."""
    Workflow("w", parameters={}, namespace="argo", host="https://argo:2746", uid="x")


@OP.function
def describe_run(n: int, label: str, options: dict) -> {"text": str}:
    return {"text": f"{label}:{n * 2}:{options['mode']}"}


def test_workflow_parameters_reach_the_steps(hpc_home) -> None:
    """dflow's ``Workflow(parameters={...})``: ``{{workflow.parameters.NAME}}`` in step
    parameters (typed as given), in a ``when``, in a key and in a shell script."""
    shell = ShellOPTemplate(
        name="echo",
        script="echo {{workflow.parameters.label}}-{{workflow.parameters.n}} > /tmp/out.txt")
    shell.outputs.parameters["out"] = OutputParameter(value_from_path="/tmp/out.txt")
    wf = Workflow("wf-params", parameters={"n": 21, "label": "run", "options": {"mode": "fast"},
                                           "skip": False})
    wf.add(Step("describe", PythonOPTemplate(describe_run),
                parameters={"n": "{{workflow.parameters.n}}",
                            "label": "{{workflow.parameters.label}}",
                            "options": "{{workflow.parameters.options}}"},
                key="describe-{{workflow.parameters.label}}"))
    wf.add(Step("echo", shell, when="{{workflow.parameters.skip}} == false"))
    wf.add(Step("skipped", PythonOPTemplate(double), parameters={"x": 1},
                when="{{workflow.parameters.skip}} == true"))
    assert wf.parameters["n"] == 21
    wf.submit()
    assert wf.wait(timeout=120) == "Succeeded"
    described = wf.query_step(key="describe-run")
    assert [s.outputs.parameters["text"].value for s in described] == ["run:42:fast"]
    echoed = wf.query_step(name="echo")[0]
    assert echoed.outputs.parameters["out"].value == "run-21"
    assert wf.query_step(name="skipped")[0].phase == "Skipped"


def test_an_unknown_workflow_parameter_is_refused_at_submission(hpc_home) -> None:
    wf = Workflow("wf-params-missing", parameters={"n": 1})
    wf.add(Step("double", PythonOPTemplate(double),
                parameters={"x": "{{workflow.parameters.m}}"}))
    with pytest.raises(WorkflowDefinitionError,
                       match=r"uses \{\{workflow\.parameters\.m\}\}, but the workflow has no "
                             r"parameter 'm'.*\(it has: n\)"):
        wf.submit()
    assert wf.id is None


@OP.function
def what_the_op_sees(names: list) -> {"env": dict, "mode": str, "cwd_is_own": bool}:
    import os

    from hpcflow import config

    here = Path.cwd()
    return {"env": {n: os.environ.get(n) for n in names}, "mode": config["mode"],
            "cwd_is_own": here.name == "workdir" and not any(here.iterdir())}


def test_debug_mode_ops_see_the_submitters_environment(hpc_home, monkeypatch) -> None:
    """dflow's debug mode runs each OP as a child of the script: the OP sees the script's
    environment (``DFLOW_MODE=debug`` makes its ``config["mode"]`` "debug"; dflow never
    carries ``config["mode"]`` set in code), the template's ``envs`` and a fresh working
    directory. Credentials stay out (they would be stored)."""
    names = ["DEBUG_SETTING", "DFLOW_MODE", "FROM_ENVS", "MY_API_TOKEN"]
    first = Workflow("debug-env-first")  # the engine starts before the variables are set
    first.add(Step("see", PythonOPTemplate(what_the_op_sees), parameters={"names": names}))
    first.submit()
    assert first.wait(timeout=120) == "Succeeded"
    monkeypatch.setenv("DEBUG_SETTING", "from-the-script")
    monkeypatch.setenv("DFLOW_MODE", "debug")
    monkeypatch.setenv("MY_API_TOKEN", "secret")
    plain = Workflow("debug-env-plain")  # not debug mode: the engine's environment
    plain.add(Step("see", PythonOPTemplate(what_the_op_sees), parameters={"names": names}))
    plain.submit()
    assert plain.wait(timeout=120) == "Succeeded"
    out = plain.query_step(name="see")[0].outputs.parameters
    assert out["env"].value == dict.fromkeys(names) and out["mode"].value == "default"

    monkeypatch.setitem(config_module.config, "mode", "debug")
    wf = Workflow("debug-env")
    wf.add(Step("see", PythonOPTemplate(what_the_op_sees, envs={"FROM_ENVS": "1"}),
                parameters={"names": names}))
    wf.submit()
    assert wf.query_status() == "Succeeded"
    out = wf.query_step(name="see")[0].outputs.parameters
    assert out["env"].value == {"DEBUG_SETTING": "from-the-script", "DFLOW_MODE": "debug",
                                "FROM_ENVS": "1", "MY_API_TOKEN": None}
    assert out["mode"].value == "debug" and out["cwd_is_own"].value is True


@OP.function
def count_lines(text: Artifact(Path), times: int) -> {"lines": int, "copy": Artifact(Path)}:
    Path("copy.txt").write_text(text.read_text() * times)
    return {"lines": len(Path("copy.txt").read_text().splitlines()), "copy": Path("copy.txt")}


def _manifest_workflow(name: str, data: Path) -> Workflow:
    """Python OPs (a class and a function), a shell script, a DAG inside Steps, an uploaded
    artifact, references, a loop, when=, a key and workflow parameters."""
    from hpcflow import DAG, Task, argo_range, upload_artifact

    shell = ShellOPTemplate(name="greet", script="echo {{inputs.parameters.who}}-"
                            "{{workflow.parameters.suffix}} > /tmp/out.txt")
    shell.inputs.parameters["who"] = InputParameter()
    shell.outputs.parameters["said"] = OutputParameter(value_from_path="/tmp/out.txt")
    dag = DAG(name="inner")
    dag.inputs.parameters["n"] = InputParameter(value=1)
    a = Task("a", PythonOPTemplate(double), parameters={"x": dag.inputs.parameters["n"]})
    b = Task("b", PythonOPTemplate(double), parameters={"x": a.outputs.parameters["y"]})
    dag.add([a, b])
    dag.outputs.parameters["y"] = OutputParameter(value_from_parameter=b.outputs.parameters["y"])
    wf = Workflow(name, parameters={"times": 2, "suffix": "bye"}, labels={"team": "md"})
    count = Step("count", PythonOPTemplate(count_lines),
                 parameters={"times": "{{workflow.parameters.times}}"},
                 artifacts={"text": upload_artifact(data)}, key="count-lines")
    wf.add(count)
    lines = count.outputs.parameters["lines"]
    wf.add([Step("tally", PythonOPTemplate(Tally), parameters={"n": lines},
                 with_param=argo_range(2), when=lines > 1),
            Step("greet", shell, parameters={"who": "{{workflow.parameters.suffix}}"}),
            Step("inner", dag, parameters={"n": lines})])
    return wf


def _outputs(wf: Workflow) -> dict:
    return {(s.name, s.key): ({n: p.value for n, p in s.outputs.parameters.items()},
                              sorted(s.outputs.artifacts)) for s in wf.query_step()
            if s.type == "Pod"}


def _argo_unknown_fields(model: object, data: object, where: str) -> list[str]:
    """Fields of ``data`` that Argo's model (the argo-workflows SDK) does not have."""
    from argo_workflows.model_utils import ModelNormal, ModelSimple

    if isinstance(model, ModelSimple):  # ParallelSteps: a list inside a model
        model = model.value
    if isinstance(data, list):
        return [f for i, (d, m) in enumerate(zip(data, model, strict=True))
                for f in _argo_unknown_fields(m, d, f"{where}[{i}]")]
    if not (isinstance(data, dict) and isinstance(model, ModelNormal)):
        return []
    names = {json_name: py for py, json_name in type(model).attribute_map.items()}
    return [f"{where}.{k}" if k not in names else f
            for k, v in data.items()
            for f in ([None] if k not in names else
                      _argo_unknown_fields(getattr(model, names[k]), v, f"{where}.{k}"))
            if f is not None or k not in names]


def test_to_dict_is_an_argo_manifest_that_from_dict_runs_the_same(hpc_home, tmp_path) -> None:
    """dflow's ``to_dict/to_json/to_yaml`` and ``from_*``: an Argo Workflow manifest (checked
    with Argo's own models) that comes back as a workflow giving the same outputs."""
    import copy
    import json

    import yaml
    from argo_workflows.configuration import Configuration
    from argo_workflows.model.io_argoproj_workflow_v1alpha1_workflow import (
        IoArgoprojWorkflowV1alpha1Workflow as ArgoWorkflowModel,
    )

    data = tmp_path / "text.txt"
    data.write_text("one\ntwo\n")
    wf = _manifest_workflow("manifest", data)
    manifest = wf.to_dict()
    model = ArgoWorkflowModel._from_openapi_data(
        _spec_property_naming=True, _check_type=True,
        _configuration=Configuration(discard_unknown_keys=False), **copy.deepcopy(manifest))
    assert _argo_unknown_fields(model, manifest, "workflow") == []
    assert (manifest["apiVersion"], manifest["kind"]) == ("argoproj.io/v1alpha1", "Workflow")
    assert manifest["metadata"]["generateName"] == "manifest-"
    assert manifest["metadata"]["labels"] == {"team": "md"}
    assert manifest["spec"]["arguments"] == {"parameters": [
        {"name": "times", "value": "2"}, {"name": "suffix", "value": "bye"}]}
    templates = {t["name"]: t for t in manifest["spec"]["templates"]}
    entry = templates[manifest["spec"]["entrypoint"]]
    used = {s["template"] for group in entry["steps"] for s in group}
    used |= {t["template"] for t in templates["inner"]["dag"]["tasks"]}
    assert used <= set(templates)
    count = entry["steps"][0][0]
    assert count["arguments"]["parameters"] == [
        {"name": "times", "value": "{{workflow.parameters.times}}"}]
    tally = entry["steps"][1][0]
    assert tally["when"] == "{{steps.count.outputs.parameters.lines}} > 1"
    assert "inputs.parameters.who" in templates["greet"]["script"]["source"]

    wf.submit()
    assert wf.wait(timeout=150) == "Succeeded"
    from_yaml = Workflow.from_yaml(wf.to_yaml())
    from_json = Workflow.from_json(json.dumps(yaml.safe_load(Workflow(id=wf.id).to_yaml())))
    assert from_yaml.name == "manifest" and from_yaml.parameters == {"times": 2, "suffix": "bye"}
    for again in (from_yaml, from_json):
        again.submit()
        assert again.wait(timeout=150) == "Succeeded" and again.id != wf.id
        assert _outputs(again) == _outputs(wf)
    assert _outputs(wf)[("count", "count-lines")][0] == {"lines": 4}
    assert _outputs(wf)[("greet", None)][0] == {"said": "bye-bye"}
    with pytest.raises(HpcflowError, match="read from a manifest and takes no new steps"):
        Workflow.from_dict(manifest).add(
            Step("more", PythonOPTemplate(double), parameters={"x": 1}))


def test_a_manifest_that_cannot_round_trip_is_refused_in_one_line(hpc_home, tmp_path) -> None:
    import copy

    data = tmp_path / "text.txt"
    data.write_text("one\n")
    manifest = _manifest_workflow("manifest-edits", data).to_dict()

    edited = copy.deepcopy(manifest)
    entry = next(t for t in edited["spec"]["templates"] if t["name"] == "manifest-edits")
    entry["steps"][0][0]["arguments"]["parameters"][0]["value"] = "5"
    with pytest.raises(WorkflowDefinitionError,
                       match=r"^Workflow\.from_dict: template 'manifest-edits' differs from what "
                             r"hpcflow wrote .*dump it again$"):
        Workflow.from_dict(edited)

    foreign = copy.deepcopy(manifest)
    del foreign["metadata"]["annotations"]
    with pytest.raises(WorkflowDefinitionError, match=r"no 'hpcflow/workflow' annotation: "
                                                      r"hpcflow runs only manifests"):
        Workflow.from_dict(foreign)

    tampered = copy.deepcopy(manifest)
    script = next(t for t in tampered["spec"]["templates"] if t["name"] == "double")["script"]
    script["source"] = script["source"].replace('OP_PICKLE = """\n', 'OP_PICKLE = """\nAAAA')
    with pytest.raises(WorkflowDefinitionError, match=r"template 'double': the OP's pickled "
                                                      r"code .* does not match its sha256"):
        Workflow.from_dict(tampered)
    with pytest.raises(WorkflowDefinitionError, match="not an Argo Workflow manifest"):
        Workflow.from_dict({"kind": "CronWorkflow"})
