"""dflow's DispatcherExecutor example, ported: only the imports changed.

In dflow this script needs Kubernetes and Argo to run the dispatcher pod; with hpcflow the
daemon drives dpdispatcher itself. As it stands it runs anywhere, with dpdispatcher's Shell
batch type on this machine (``pip install 'hpcflow[dispatcher]'``):

    hpcflow run examples/dispatcher_executor.py

On a Slurm cluster reached over SSH, as the dflow original does, give the host (the host key
must be in ~/.ssh/known_hosts: hpcflow checks it, dpdispatcher does not):

    export DISPATCHER_HOST=login.cluster.example DISPATCHER_USER=me DISPATCHER_QUEUE=debug
    DISPATCHER_KEY=~/.ssh/id_ed25519 hpcflow run examples/dispatcher_executor.py
"""

import os
from pathlib import Path

from hpcflow import (
    InputArtifact,
    OutputParameter,
    ShellOPTemplate,
    Step,
    Workflow,
    download_artifact,
    upload_artifact,
)
from hpcflow.connectors.dispatcher import DispatcherExecutor
from hpcflow.python import OP, OPIO, Artifact, OPIOSign, PythonOPTemplate


class Duplicate(OP):
    @classmethod
    def get_input_sign(cls):
        return OPIOSign({"msg": str, "num": int, "foo": Artifact(Path)})

    @classmethod
    def get_output_sign(cls):
        return OPIOSign({"msg": str, "bar": Artifact(Path)})

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        with open(op_in["foo"]) as f:
            content = f.read()
        out = Path(f"output{op_in['num']}.txt")
        with open(out, "w") as f:
            f.write(content * op_in["num"])
        return OPIO({"msg": op_in["msg"] * op_in["num"], "bar": out})


if os.environ.get("DISPATCHER_HOST"):
    dispatcher_executor = DispatcherExecutor(
        host=os.environ["DISPATCHER_HOST"], username=os.environ.get("DISPATCHER_USER", "root"),
        private_key_file=os.environ.get("DISPATCHER_KEY"),
        queue_name=os.environ.get("DISPATCHER_QUEUE"))
else:
    dispatcher_executor = DispatcherExecutor(
        machine_dict={"batch_type": "Shell", "context_type": "LocalContext"})

count = ShellOPTemplate(name="count", image="alpine:3.20",
                        script="cat /tmp/bars/* | wc -c | tr -d ' ' > /tmp/chars.txt\n")
count.inputs.artifacts = {"bars": InputArtifact(path="/tmp/bars")}
count.outputs.parameters = {"chars": OutputParameter(value_from_path="/tmp/chars.txt",
                                                     type=int)}

if __name__ == "__main__":
    Path("foo.txt").write_text("Hello")
    wf = Workflow(name="dispatcher")
    duplicate = Step("duplicate", PythonOPTemplate(Duplicate, image="python:3.11"),
                     parameters={"msg": "Hello", "num": "{{item}}"},
                     artifacts={"foo": upload_artifact("foo.txt")},
                     with_param=[1, 2, 3], executor=dispatcher_executor)
    wf.add(duplicate)
    wf.add(Step("count", count, artifacts={"bars": duplicate.outputs.artifacts["bar"]},
                executor=dispatcher_executor))
    wf.submit()
    wf.wait()
    print("phase:", wf.query_status())
    print("msgs:", wf.query_step(name="duplicate")[0].outputs.parameters["msg"].value)
    print("chars:", wf.query_step(name="count")[0].outputs.parameters["chars"].value)
    bar = download_artifact(wf.query_step(name="duplicate(2:3)")[0].outputs.artifacts["bar"],
                            path="downloaded")
    print("bar:", Path(bar[0]).read_text())
