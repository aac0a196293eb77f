"""when, if_expression and recursion through the engine."""

from pathlib import Path

import pytest

from hpcflow import (
    InputParameter,
    OutputArtifact,
    OutputParameter,
    Step,
    Steps,
    Workflow,
    config,
    download_artifact,
    if_expression,
)
from hpcflow.errors import WorkflowDefinitionError
from hpcflow.python import OP, Artifact, PythonOPTemplate


@OP.function
def plus_one(i: int) -> {"i": int}:
    return {"i": i + 1}


@OP.function
def write(text: str) -> {"out": Artifact(Path), "n": int}:
    Path("out.txt").write_text(text)
    return {"out": Path("out.txt"), "n": len(text)}


def recursion(limit: int) -> Steps:
    loop = Steps(name="loop")
    loop.inputs.parameters["i"] = InputParameter()
    loop.outputs.parameters["last"] = OutputParameter()
    step = Step("plus-one", PythonOPTemplate(plus_one),
                parameters={"i": loop.inputs.parameters["i"]}, key="it-{{inputs.parameters.i}}")
    again = Step("again", loop, parameters={"i": step.outputs.parameters["i"]},
                 when="%s < %s" % (step.outputs.parameters["i"], limit))
    loop.add(step)
    loop.add(again)
    loop.outputs.parameters["last"].value_from_expression = if_expression(
        _if=step.outputs.parameters["i"] < limit, _then=again.outputs.parameters["last"],
        _else=step.outputs.parameters["i"])
    return loop


def test_when_skips_and_outputs_take_defaults(hpc_home):
    template = PythonOPTemplate(plus_one, output_parameter_default={"i": -1})
    yes = Step("yes", template, parameters={"i": 1}, when="2 > 1 && 'a' == 'a'")
    no = Step("no", template, parameters={"i": 1}, when="%s > 5" % yes.outputs.parameters["i"])
    after = Step("after", template, parameters={"i": no.outputs.parameters["i"]})
    wf = Workflow("when")
    wf.add(yes)
    wf.add(no)
    wf.add(after)
    wf.submit()
    assert wf.wait(timeout=60) == "Succeeded"
    assert wf.query_step(name="yes")[0].phase == "Succeeded"
    skipped = wf.query_step(name="no")[0]
    assert skipped.phase == "Skipped" and skipped.outputs.parameters["i"].value == -1
    assert "is false" in skipped.reason
    assert wf.query_step(name="after")[0].outputs.parameters["i"].value == 0


def test_if_expression_picks_an_artifact_and_a_parameter(hpc_home, tmp_path):
    choose = Steps(name="choose")
    choose.inputs.parameters["flag"] = InputParameter()
    choose.outputs.artifacts["picked"] = OutputArtifact()
    choose.outputs.parameters["n"] = OutputParameter()
    a = Step("a", PythonOPTemplate(write), parameters={"text": "from a"})
    b = Step("b", PythonOPTemplate(write), parameters={"text": "from bb"})
    choose.add([a, b])
    flag = choose.inputs.parameters["flag"]
    choose.outputs.artifacts["picked"].from_expression = if_expression(
        _if="%s == yes" % flag, _then=a.outputs.artifacts["out"], _else=b.outputs.artifacts["out"])
    choose.outputs.parameters["n"].value_from_expression = if_expression(
        _if="%s == yes" % flag, _then=a.outputs.parameters["n"], _else=b.outputs.parameters["n"])
    wf = Workflow("ifexpr")
    wf.add([Step("yes", choose, parameters={"flag": "yes"}),
            Step("no", choose, parameters={"flag": "no"})])
    wf.submit()
    assert wf.wait(timeout=60) == "Succeeded"
    for name, text in (("yes", "from a"), ("no", "from bb")):
        step = wf.query_step(name=name)[0]
        assert step.outputs.parameters["n"].value == len(text)
        files = download_artifact(step.outputs.artifacts["picked"], path=tmp_path / name)
        assert Path(files[0]).read_text() == text


def test_recursion_fifty_deep(hpc_home):
    wf = Workflow("deep")
    wf.add(Step("start", recursion(50), parameters={"i": 0}))
    wf.submit()
    assert wf.wait(timeout=240) == "Succeeded"
    assert wf.query_step(name="start")[0].outputs.parameters["last"].value == 50
    assert len(wf.query_step(key="it-49")) == 1
    assert len(wf.query_step(name="plus-one")) == 50


def test_recursion_depth_limit_is_a_clear_error(hpc_home, monkeypatch):
    monkeypatch.setitem(config, "max_recursion_depth", 5)
    wf = Workflow("too-deep")
    wf.add(Step("start", recursion(50), parameters={"i": 0}))
    wf.submit()
    assert wf.wait(timeout=120) == "Failed"
    [error] = wf.query_step(phase="Error")
    assert "max_recursion_depth=5" in error.reason and "when=" in error.reason


def test_unresolvable_expression_fails_the_step_quoting_it(hpc_home):
    template = PythonOPTemplate(plus_one)
    first = Step("first", template, parameters={"i": 1})
    odd = Step("odd", template, parameters={"i": 2},
               when="%s > 'x' * 2" % first.outputs.parameters["i"])
    wf = Workflow("bad-when")
    wf.add(first)
    wf.add(odd)
    wf.submit()
    assert wf.wait(timeout=60) == "Failed"
    step = wf.query_step(name="odd")[0]
    assert step.phase == "Error"
    assert "{{steps.first.outputs.parameters.i}} > 'x' * 2" in step.reason


def test_malformed_when_fails_the_submission(hpc_home):
    wf = Workflow("syntax")
    wf.add(Step("s", PythonOPTemplate(plus_one), parameters={"i": 1}, when="1 < < 2"))
    expected = r"step 's': cannot parse the when= condition '1 < < 2': unexpected"
    with pytest.raises(WorkflowDefinitionError, match=expected):
        wf.submit()
    assert wf.id is None
    if (hpc_home / "store.db").exists():
        from hpcflow.daemon import client

        assert client.store_for(hpc_home).workflows() == []
