"""A ``Steps`` used as a template: a sub-workflow with its own inputs and outputs.

Run: hpcflow run examples/nested_steps.py
"""

from pathlib import Path

from hpcflow import (
    InputArtifact,
    InputParameter,
    OutputArtifact,
    OutputParameter,
    Step,
    Steps,
    Workflow,
    download_artifact,
    upload_artifact,
)
from hpcflow.python import OP, Artifact, PythonOPTemplate


@OP.function
def shout(msg: str, text: Artifact(Path)) -> {"msg": str, "out": Artifact(Path)}:
    Path("out.txt").write_text(Path(text).read_text().upper())
    return {"msg": msg.upper() + "!", "out": Path("out.txt")}


@OP.function
def repeat(msg: str, times: int) -> {"msg": str}:
    return {"msg": " ".join([msg] * times)}


def make_loud() -> Steps:
    loud = Steps(name="loud")
    loud.inputs.parameters["msg"] = InputParameter()
    loud.inputs.parameters["times"] = InputParameter(value=2)
    loud.inputs.artifacts["text"] = InputArtifact()
    loud.outputs.parameters["msg"] = OutputParameter()
    loud.outputs.artifacts["out"] = OutputArtifact()
    a = Step("shout", PythonOPTemplate(shout),
             parameters={"msg": loud.inputs.parameters["msg"]},
             artifacts={"text": loud.inputs.artifacts["text"]})
    b = Step("repeat", PythonOPTemplate(repeat),
             parameters={"msg": a.outputs.parameters["msg"],
                         "times": loud.inputs.parameters["times"]})
    loud.add(a)
    loud.add(b)
    loud.outputs.parameters["msg"].value_from_parameter = b.outputs.parameters["msg"]
    loud.outputs.artifacts["out"]._from = a.outputs.artifacts["out"]
    return loud


if __name__ == "__main__":
    Path("text.txt").write_text("quiet words")
    loud = make_loud()
    wf = Workflow(name="nested-steps")
    wf.add(Step("outer", loud, parameters={"msg": "hello", "times": 3},
                artifacts={"text": upload_artifact("text.txt")}))
    wf.submit()
    wf.wait()
    print("phase:", wf.query_status())
    outer = wf.query_step(name="outer")[0]
    print("msg:", outer.outputs.parameters["msg"].value)
    files = download_artifact(outer.outputs.artifacts["out"], path="downloaded")
    print("out:", Path(files[0]).read_text())
