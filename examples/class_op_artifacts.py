"""A class OP with an input and an output artifact (the seed's SimpleExample).

Run: hpcflow run examples/class_op_artifacts.py
"""

import shutil
import time
from pathlib import Path

from hpcflow import Step, Workflow, download_artifact, upload_artifact
from hpcflow.python import OP, OPIO, Artifact, OPIOSign, PythonOPTemplate


class SimpleExample(OP):
    """Copies the input artifact ``foo`` to ``bar`` and echoes ``msg``."""

    @classmethod
    def get_input_sign(cls):
        return OPIOSign({"msg": str, "foo": Artifact(Path)})

    @classmethod
    def get_output_sign(cls):
        return OPIOSign({"msg": str, "bar": Artifact(Path)})

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        shutil.copy(op_in["foo"], "bar.txt")
        with open("bar.txt", "a") as f:
            f.write(" (copied by step0)")
        return OPIO({"msg": op_in["msg"], "bar": Path("bar.txt")})


if __name__ == "__main__":
    Path("foo.txt").write_text("Hi")
    foo = upload_artifact("foo.txt")
    step = Step(
        name="step0",
        template=PythonOPTemplate(SimpleExample, image="python:3.10"),
        parameters={"msg": "HelloWorld!"},
        artifacts={"foo": foo},
    )
    wf = Workflow(name="class-op")
    wf.add(step)
    wf.submit()

    while wf.query_status() in ["Pending", "Running"]:
        time.sleep(0.2)
    assert wf.query_status() == "Succeeded", wf.query_status()

    step0 = wf.query_step(name="step0")[0]
    print("msg:", step0.outputs.parameters["msg"].value)
    paths = download_artifact(step0.outputs.artifacts["bar"], path="downloaded")
    print("bar:", Path(paths[0]).read_text())
