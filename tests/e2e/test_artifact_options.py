"""Optional input artifacts, modified reused artifacts, dict items in loops, symlinks that
lead out of an output artifact."""

from pathlib import Path

import pytest

from hpcflow import Step, Workflow, upload_artifact
from hpcflow.python import OP, Artifact, PythonOPTemplate


@OP.function
def maybe_read(tag: str, data: Artifact(Path, optional=True)) -> {"text": str}:
    return {"text": "none" if data is None else Path(data).read_text()}


@OP.function
def make(text: str) -> {"out": Artifact(Path)}:
    Path("out.txt").write_text(text)
    return {"out": Path("out.txt")}


@OP.function
def read(data: Artifact(Path)) -> {"text": str}:
    return {"text": Path(data).read_text()}


def test_optional_input_artifact_receives_none(hpc_home):
    Path("d.txt").write_text("data")
    wf = Workflow("optional")
    wf.add([Step("without", PythonOPTemplate(maybe_read), parameters={"tag": "a"}),
            Step("with", PythonOPTemplate(maybe_read), parameters={"tag": "b"},
                 artifacts={"data": upload_artifact("d.txt")})])
    wf.submit()
    assert wf.wait(timeout=60) == "Succeeded"
    assert wf.query_step(name="without")[0].outputs.parameters["text"].value == "none"
    assert wf.query_step(name="with")[0].outputs.parameters["text"].value == "data"


def test_modified_output_artifact_is_what_the_reusing_workflow_sees(hpc_home):
    def build() -> Workflow:
        made = Step("make", PythonOPTemplate(make), parameters={"text": "original"},
                    key="make")
        wf = Workflow("modify")
        wf.add(made)
        wf.add(Step("read", PythonOPTemplate(read),
                    artifacts={"data": made.outputs.artifacts["out"]}))
        return wf

    first = build()
    first.submit()
    assert first.wait(timeout=60) == "Succeeded"
    step = first.query_step(key="make")[0]
    Path("replacement.txt").write_text("replaced")
    step.modify_output_artifact("out", upload_artifact("replacement.txt"))
    second = build()
    second.submit(reuse_step=[step])
    assert second.wait(timeout=60) == "Succeeded"
    assert second.query_step(name="read")[0].outputs.parameters["text"].value == "replaced"


def test_item_fields_in_parameters_and_keys(hpc_home):
    wf = Workflow("items")
    wf.add(Step("m", PythonOPTemplate(maybe_read), parameters={"tag": "{{item.name}}"},
                with_param=[{"name": "first", "n": 1}, {"name": "second", "n": 2}],
                key="item-{{item.n}}"))
    wf.submit()
    assert wf.wait(timeout=60) == "Succeeded"
    assert [s.inputs.parameters["tag"].value for s in wf.query_step(key=["item-1", "item-2"])] \
        == ["first", "second"]


@OP.function
def link_out(secret: str) -> {"tar": Artifact(Path), "plain": Artifact(Path, archive=None)}:
    for name in ("tar", "plain"):
        Path(name).mkdir()
        Path(name, "result.txt").write_text("mine")
        Path(name, "peek").symlink_to(secret)
    return {"tar": Path("tar"), "plain": Path("plain")}


@pytest.mark.parametrize("first", ["tar", "plain"])
def test_an_output_artifact_holding_a_symlink_out_of_it_fails_its_step(hpc_home, tmp_path,
                                                                       first):
    """Both archive modes refuse the link when the producer packs it: archive=None used to
    upload the linked file, the tar mode left the consumer to refuse it."""
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the artifact")
    template = PythonOPTemplate(link_out)
    # one output declared: each archive mode on its own
    template.outputs.artifacts = {first: template.outputs.artifacts[first]}
    wf = Workflow("link-out")
    wf.add(Step("peek", template, parameters={"secret": str(secret)}))
    wf.submit()
    assert wf.wait(timeout=60) == "Failed"
    step = wf.query_step(name="peek")[0]
    assert step.phase == "Failed"
    assert (f"output artifact {first!r}: artifact path '{first}/peek' is a symlink to "
            f"'{secret}', outside the artifact") in step.reason, step.reason
    storage = hpc_home / "artifacts"
    if storage.exists():
        assert not [p for p in storage.rglob("*") if p.is_file()
                    and p.read_bytes() == b"not for the artifact"]
