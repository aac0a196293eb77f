"""What the spec builder refuses at submission and what it leaves to run time: literal keys
against the key rule, keys with references untouched; references to a step's inputs and
outputs against what its template declares."""

import re
from pathlib import Path

import pytest

from hpcflow import InputParameter, Step, Steps, Workflow, argo_range
from hpcflow.errors import WorkflowDefinitionError
from hpcflow.python import OP, Artifact, PythonOPTemplate
from hpcflow.spec import build_spec


@OP.function
def make(x: int) -> {"y": int, "file": Artifact(Path)}:
    return {"y": x, "file": Path("f")}


@OP.function
def use(x: int, data: Artifact(Path, optional=True)) -> {"y": int}:
    return {"y": x}


def _build(wf: Workflow) -> dict:
    assert wf.entry is not None
    return build_spec(wf.name, wf.entry)[0]


def test_keys_are_checked_as_written_with_references_stood_in_for():
    """dflow checks a key with each {{...}} stood in for by a letter; these pass (what they
    resolve to is not checked, see tests/e2e/test_dflow_loops.py)."""
    block = Steps("block")
    block.inputs.parameters["block_id"] = InputParameter()
    block.add(Step("prep", PythonOPTemplate(use), parameters={"x": 1},
                   key="{{inputs.parameters.block_id}}--prep-train"))
    wf = Workflow("keys")
    wf.add(Step("block", block, parameters={"block_id": "iter-000"}, key="block-0-"))
    wf.add(Step("evo", PythonOPTemplate(use), parameters={"x": "{{item}}"},
                with_param=argo_range(2), key="evo-{{item}}"))
    spec = _build(wf)
    assert spec["templates"]["block"]["steps"][0][0]["key"] == (
        "{{inputs.parameters.block_id}}--prep-train")


@pytest.mark.parametrize("key", ["Prep", "a_b", "-a", "a.b", "", "Step_{{item}}",
                                 "{{item}}.{{item}}"])
def test_a_key_that_breaks_the_rule_is_refused(key):
    wf = Workflow("keys")
    wf.add(Step("s", PythonOPTemplate(use), parameters={"x": 1}, key=key))
    with pytest.raises(WorkflowDefinitionError,
                       match=rf"step 's': key name '{re.escape(key)}' breaks the naming rule"):
        _build(wf)


def test_references_to_declared_inputs_and_outputs_pass():
    a = Step("a", PythonOPTemplate(make), parameters={"x": 1})
    b = Step("b", PythonOPTemplate(use),
             parameters={"x": "{{steps.a.outputs.parameters.y}}"},
             artifacts={"data": a.outputs.artifacts["file"]},
             when="%s > 0 && %s < 5" % (a.outputs.parameters["y"], a.inputs.parameters["x"]))
    wf = Workflow("refs")
    wf.add(a)
    wf.add(b)
    assert _build(wf)["templates"]


@pytest.mark.parametrize("value,message", [
    ("{{steps.a.inputs.parameters.z}}",
     r"uses \{\{steps.a.inputs.parameters.z\}\}, but step 'a' \(template 'make'\) has no "
     r"input parameter 'z' \(it has: x\)$"),
    ("{{steps.a.outputs.parameters.file}}",
     r"uses \{\{steps.a.outputs.parameters.file\}\}, but step 'a' \(template 'make'\) has no "
     r"output parameter 'file' \(it has: y\); 'file' is an output artifact: use "
     r"outputs.artifacts\['file'\]$"),
])
def test_an_undeclared_input_or_output_is_refused_naming_what_exists(value, message):
    a = Step("a", PythonOPTemplate(make), parameters={"x": 1})
    wf = Workflow("refs")
    wf.add(a)
    wf.add(Step("b", PythonOPTemplate(use), parameters={"x": value}))
    with pytest.raises(WorkflowDefinitionError, match=r"^step 'b' " + message):
        _build(wf)
