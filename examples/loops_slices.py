"""Loops and slices: each parallel step handles one slice of list inputs; outputs are
stacked (parameters) and merged (artifacts) in item order.

Run: hpcflow run examples/loops_slices.py
"""

from pathlib import Path
from typing import List

from hpcflow import Step, Workflow, argo_range, download_artifact, upload_artifact
from hpcflow.python import OP, Artifact, PythonOPTemplate, Slices


@OP.function
def count_words(name: str, text: Artifact(Path)) -> {"words": int,
                                                     "report": Artifact(Path, archive=None)}:
    words = len(Path(text).read_text().split())
    Path("report.txt").write_text(f"{name}: {words}\n")
    return {"words": words, "report": Path("report.txt")}


@OP.function
def shout(report: Artifact(Path)) -> {"line": str}:
    return {"line": Path(report).read_text().strip().upper()}


@OP.function
def summarise(words: List[int], lines: List[str]) -> {"total": int, "summary": str}:
    return {"total": sum(words), "summary": "; ".join(lines)}


if __name__ == "__main__":
    names = ["alpha", "beta", "gamma", "delta"]
    for i, name in enumerate(names):
        Path(f"{name}.txt").write_text(" ".join(["word"] * (i + 1)))
    texts = upload_artifact([f"{n}.txt" for n in names], archive=None)

    count = Step(
        "count",
        PythonOPTemplate(count_words, slices=Slices(
            sub_path=True, input_parameter=["name"], input_artifact=["text"],
            output_parameter=["words"], output_artifact=["report"], create_dir=True)),
        parameters={"name": names}, artifacts={"text": texts},
    )
    loud = Step(
        "loud",
        PythonOPTemplate(shout, slices=Slices("{{item}}", input_artifact=["report"],
                                              output_parameter=["line"])),
        artifacts={"report": count.outputs.artifacts["report"]},
        with_param=argo_range(len(names)),
    )
    summary = Step("summary", PythonOPTemplate(summarise),
                   parameters={"words": count.outputs.parameters["words"],
                               "lines": loud.outputs.parameters["line"]})
    wf = Workflow(name="loops-slices")
    wf.add(count)
    wf.add(loud)
    wf.add(summary)
    wf.submit()
    wf.wait()
    print("phase:", wf.query_status())
    step = wf.query_step(name="summary")[0]
    print("total:", step.outputs.parameters["total"].value)
    print("summary:", step.outputs.parameters["summary"].value)
    reports = download_artifact(wf.query_step(name="count", type="StepGroup")[0]
                                .outputs.artifacts["report"], path="reports")
    print("reports:", sorted(str(Path(p).relative_to("reports")) for p in reports))
