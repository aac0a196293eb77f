"""One workflow across a Slurm cluster and a Kubernetes cluster: a simulation runs as a Slurm
job, its post-processing runs in a container image on Argo Workflows, and the analysis runs
as a Slurm job again. Artifacts flow between them through the S3 bucket both clusters reach.

Declare both in $HPCFLOW_HOME/config.toml (config/README.md, "Argo clusters"):

    [storage]
    kind = "s3"
    bucket = "hpcflow"
    endpoint = "https://s3.example.org"

    [argo.k8s]
    server = "https://argo.example.org:2746"
    namespace = "hpcflow"
    token_file = "~/.hpcflow/secrets/argo-k8s.token"
    artifact_secret = "hpcflow-s3"

then, on the cluster's login node:

    hpcflow run examples/argo_offload.py

HPCFLOW_MACHINE names a [machines.NAME] (default: this machine's Slurm) and
HPCFLOW_ARGO_CLUSTER an [argo.NAME] (default: k8s).
"""

import os
from pathlib import Path

from hpcflow import ArgoExecutor, SlurmExecutor, Step, Workflow
from hpcflow.python import OP, Artifact, PythonOPTemplate


@OP.function
def simulate(steps: int) -> {"trajectory": Artifact(Path)}:
    import random

    rng = random.Random(7)
    position, lines = 0.0, []
    for step in range(steps):
        position += rng.gauss(0.0, 1.0)
        lines.append(f"{step},{position:.6f}")
    Path("trajectory.csv").write_text("\n".join(lines) + "\n")
    return {"trajectory": Path("trajectory.csv")}


@OP.function
def postprocess(trajectory: Artifact(Path)) -> {"squared": Artifact(Path), "frames": int}:
    # runs in the container image on Kubernetes: only the standard library is needed
    import csv

    with open(trajectory) as f:
        rows = [(int(step), float(x)) for step, x in csv.reader(f)]
    Path("squared.csv").write_text("".join(f"{step},{x * x:.6f}\n" for step, x in rows))
    return {"squared": Path("squared.csv"), "frames": len(rows)}


@OP.function
def analyse(squared: Artifact(Path)) -> {"msd": float}:
    values = [float(line.split(",")[1]) for line in Path(squared).read_text().splitlines()]
    return {"msd": sum(values) / len(values)}


slurm = SlurmExecutor(machine=os.environ.get("HPCFLOW_MACHINE"),
                      partition=os.environ.get("HPCFLOW_PARTITION", "debug"), time="0:05:00")
argo = ArgoExecutor(cluster=os.environ.get("HPCFLOW_ARGO_CLUSTER", "k8s"), cpu="1",
                    memory="512Mi")

wf = Workflow("argo-offload")
sim = Step("simulate", PythonOPTemplate(simulate), parameters={"steps": 1000}, executor=slurm)
post = Step("postprocess", PythonOPTemplate(postprocess, image="python:3.11-slim"),
            artifacts={"trajectory": sim.outputs.artifacts["trajectory"]}, executor=argo)
ana = Step("analyse", PythonOPTemplate(analyse),
           artifacts={"squared": post.outputs.artifacts["squared"]}, executor=slurm)
wf.add(sim)
wf.add(post)
wf.add(ana)
wf.submit()
wf.wait()

print("phase:", wf.query_status())
print("frames:", wf.query_step(name="postprocess")[0].outputs.parameters["frames"].value)
print("msd positive:", wf.query_step(name="analyse")[0].outputs.parameters["msd"].value > 0)
