"""A small HPC campaign: 40 "simulations" as Slurm jobs, packed 10 to a job, then an
analysis on the login node. Run on a login node with Slurm:

    hpcflow run examples/hpc/slurm_campaign.py

From a workstation, declare the cluster in $HPCFLOW_HOME/config.toml and set
HPCFLOW_MACHINE to its name (see config/config.example.toml):

    [machines.mycluster]
    scheduler = "slurm"
    host = "login.cluster.example"
    work_root = "/scratch/me/hpcflow"

    HPCFLOW_MACHINE=mycluster hpcflow run examples/hpc/slurm_campaign.py
"""

import os
from pathlib import Path

from hpcflow import SlurmExecutor, Step, Workflow, argo_range
from hpcflow.python import OP, Artifact, PythonOPTemplate


@OP.function
def simulate(seed: int) -> {"energy": float, "trajectory": Artifact(Path)}:
    import random

    rng = random.Random(seed)
    energies = [rng.gauss(-10.0, 1.0) for _ in range(100)]
    Path("traj.txt").write_text("\n".join(f"{e:.6f}" for e in energies))
    return {"energy": min(energies), "trajectory": Path("traj.txt")}


@OP.function
def analyse(energies: list, trajectories: Artifact(list[Path])) -> {"best": float,
                                                                     "frames": int}:
    frames = sum(len(Path(t).read_text().split()) for t in trajectories)
    return {"best": min(energies), "frames": frames}


cluster = SlurmExecutor(machine=os.environ.get("HPCFLOW_MACHINE"),
                        partition=os.environ.get("HPCFLOW_PARTITION", "debug"),
                        time="0:10:00", cpus_per_task=1, group_size=10)
wf = Workflow("slurm-campaign")
sims = Step("simulate", PythonOPTemplate(simulate), parameters={"seed": "{{item}}"},
            with_param=argo_range(40), executor=cluster)
wf.add(sims)
wf.add(Step("analyse", PythonOPTemplate(analyse),
            parameters={"energies": sims.outputs.parameters["energy"]},
            artifacts={"trajectories": sims.outputs.artifacts["trajectory"]}))
wf.submit()
wf.wait()

result = wf.query_step(name="analyse")[0].outputs.parameters
print("best energy below -12:", result["best"].value < -12)
print("frames:", result["frames"].value)
