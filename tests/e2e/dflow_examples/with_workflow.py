"""dflow's context syntax (its python-sugar example's shape): a Step made inside
``with Workflow(...) as wf:`` joins wf, and leaving the block submits it."""

import time
from pathlib import Path

from dflow import Step, Workflow, download_artifact, upload_artifact
from dflow.python import OP, Artifact, PythonOPTemplate


@OP.function
def repeat(msg: str, num: int, foo: Artifact(Path), idir: Artifact(Path)
           ) -> {"msg": str, "bar": Artifact(Path), "odir": Artifact(Path)}:
    Path("bar.txt").write_text(Path(foo).read_text() * num)
    Path("odir").mkdir()
    for name in ("f1", "f2"):
        (Path("odir") / name).write_text((Path(idir) / name).read_text() * num)
    return {"msg": msg * num, "bar": Path("bar.txt"), "odir": Path("odir")}


Path("foo.txt").write_text("Hi")
Path("tidir").mkdir(exist_ok=True)
Path("tidir/f1").write_text("foo")
Path("tidir/f2").write_text("bar")
foo, idir = upload_artifact("foo.txt"), upload_artifact("tidir")

with Workflow(name="python-sugar") as wf:
    step = Step(name="step", template=PythonOPTemplate(repeat, image="python:3.8"),
                parameters={"msg": "Hello", "num": 3}, artifacts={"foo": foo, "idir": idir})

while wf.query_status() in ["Pending", "Running"]:
    time.sleep(0.2)
assert wf.query_status() == "Succeeded"
step = wf.query_step(name="step")[0]
assert step.phase == "Succeeded"
assert step.outputs.parameters["msg"].value == "HelloHelloHello"
download_artifact(step.outputs.artifacts["bar"], path="got")
download_artifact(step.outputs.artifacts["odir"], path="got")
assert Path("got/bar.txt").read_text() == "HiHiHi"
assert Path("got/odir/f2").read_text() == "barbarbar"
print("EXAMPLE OK")
