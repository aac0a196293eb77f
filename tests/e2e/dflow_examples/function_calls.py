"""dflow's function syntax (its dflow-function tutorial's shape): calling an @OP.function OP
inside ``with Workflow(...)`` adds a Task and returns its outputs for the next call."""

import sys
from pathlib import Path

from dflow import Workflow, download_artifact
from dflow.python import OP, Artifact

IMAGE = f"python:{sys.version_info.major}.{sys.version_info.minor}"


@OP.function(image=IMAGE)
def write_file(msg: str) -> {"out_art": Artifact(Path), "length": int}:
    Path("msg.txt").write_text(msg)
    return {"out_art": Path("msg.txt"), "length": len(msg)}


@OP.function(image=IMAGE)
def duplicate(in_art: Artifact(Path), in_num: int) -> {"out_art": Artifact(Path),
                                                       "out_num": int}:
    Path("bar.txt").write_text(Path(in_art).read_text() * 2)
    return {"out_art": Path("bar.txt"), "out_num": in_num * 2}


assert duplicate(Path(__file__), 2)["out_num"] == 4  # outside a block: runs here

with Workflow(name="python") as wf:
    out = write_file(msg="HelloWorld!")
    dup = duplicate(in_num=out["length"], in_art=out["out_art"])

assert wf.wait() == "Succeeded", wf.query_status()
tasks = {s.name.rsplit("-", 1)[0]: s for s in wf.query_step(type="Pod")}
assert sorted(tasks) == ["duplicate", "write-file"], sorted(tasks)
assert tasks["duplicate"].outputs.parameters["out_num"].value == 22
download_artifact(tasks["duplicate"].outputs.artifacts["out_art"], path="got")
assert Path("got/bar.txt").read_text() == "HelloWorld!HelloWorld!"
print("EXAMPLE OK")
