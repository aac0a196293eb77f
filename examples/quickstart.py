"""The README's main job: a small workflow with every basic part (a class OP with artifacts,
function OPs in sequence and in parallel), run on the embedded default (SQLite + local
processes + local artifact storage).

Run: hpcflow run examples/quickstart.py
"""

import os
from pathlib import Path

from hpcflow import Step, Workflow, download_artifact, upload_artifact
from hpcflow.python import OP, OPIO, Artifact, OPIOSign, PythonOPTemplate


class CountWords(OP):
    @classmethod
    def get_input_sign(cls):
        return OPIOSign({"text": Artifact(Path)})

    @classmethod
    def get_output_sign(cls):
        return OPIOSign({"words": int, "report": Artifact(Path)})

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        words = len(Path(op_in["text"]).read_text().split())
        Path("report.txt").write_text(f"{words} words\n")
        return OPIO({"words": words, "report": Path("report.txt")})


@OP.function
def multiply(x: int, factor: int) -> {"y": int}:
    return {"y": x * factor}


@OP.function
def add(a: int, b: int) -> {"total": int}:
    return {"total": a + b}


if __name__ == "__main__":
    work = Path("hpcflow-quickstart")  # inputs and downloaded outputs land here
    work.mkdir(exist_ok=True)
    os.chdir(work)
    Path("poem.txt").write_text("the quick brown fox jumps over the lazy dog\n")
    count = Step("count", PythonOPTemplate(CountWords),
                 artifacts={"text": upload_artifact("poem.txt")})
    double = Step("double", PythonOPTemplate(multiply),
                  parameters={"x": count.outputs.parameters["words"], "factor": 2})
    triple = Step("triple", PythonOPTemplate(multiply),
                  parameters={"x": count.outputs.parameters["words"], "factor": 3})
    total = Step("total", PythonOPTemplate(add),
                 parameters={"a": double.outputs.parameters["y"],
                             "b": triple.outputs.parameters["y"]})
    wf = Workflow(name="quickstart")
    wf.add(count)
    wf.add([double, triple])
    wf.add(total)
    wf.submit()
    print("submitted", wf.id, "- phase:", wf.wait())
    print("total:", wf.query_step(name="total")[0].outputs.parameters["total"].value)
    report = download_artifact(wf.query_step(name="count")[0].outputs.artifacts["report"])
    report_file = Path(report[0])
    print("report:", report_file.read_text().strip(), f"(downloaded to {report_file.resolve()})")
