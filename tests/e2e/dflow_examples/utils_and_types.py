"""dflow's utilities, types, settings and module paths, as a dflow application uses them."""

from pathlib import Path
from typing import List

import dflow
from dflow import (
    ArgoStep,
    S3Artifact,
    Step,
    Workflow,
    copy_artifact,
    query_workflows,
    upload_artifact,
)
from dflow.config import config, s3_config, set_config
from dflow.executor import ContainerExecutor
from dflow.plugins.dispatcher import DispatcherExecutor
from dflow.python import OP, Artifact, HDF5Datasets, PythonOPTemplate
from dflow.python.opio import OPIOSign
from dflow.slurm import SlurmJobTemplate, SlurmRemoteExecutor
from dflow.step import argo_len
from dflow.utils import path_list_of_artifact, randstr, run_command, set_directory

assert dflow.config is config and isinstance(config, dict)
config["host"] = "https://argo.example.org:2746"   # dflow's Argo settings: accepted
config["namespace"] = "science"
set_config(k8s_api_server="https://k8s.example.org:6443")
assert callable(DispatcherExecutor) and HDF5Datasets and OPIOSign and argo_len
assert ContainerExecutor and SlurmJobTemplate and SlurmRemoteExecutor
assert s3_config["storage_client"] is None


@OP.function
def cat(files: Artifact(List[Path])) -> {"text": str}:
    return {"text": "".join(Path(f).read_text() for f in files)}


with set_directory("inputs", mkdir=True):
    Path("a.txt").write_text("A")
    Path("b.txt").write_text("B")
    first = upload_artifact(["a.txt"], archive=None)
    copy_artifact(upload_artifact(["b.txt"], archive=None), first, sort=True)
assert path_list_of_artifact(first) == ["a.txt", "b.txt"]
assert run_command("echo ok")[1] == "ok\n"

tag = randstr()
wf = Workflow(name="utils-and-types", labels={"tag": tag})
wf.add(Step("cat", PythonOPTemplate(cat), artifacts={"files": S3Artifact(key=first.key)}))
wf.submit()
wf.wait()
step = wf.query_step(name="cat")[0]
assert isinstance(step, ArgoStep)
assert step.outputs.parameters["text"].value == "AB", step.outputs.parameters["text"].value
assert [w.metadata.name for w in query_workflows(labels={"tag": tag})] == [wf.id]
print("EXAMPLE OK")
