"""Where a step runs: ``Step(executor=SlurmExecutor(...))``; without one, on this machine.

An executor names a machine of the daemon's config file (``[machines.NAME]``; with no name,
this machine's own scheduler) and the resources of the step's job, which override the
machine's defaults.
"""

from __future__ import annotations

from typing import Any

from hpcflow.errors import WorkflowDefinitionError


class SlurmExecutor:
    """A step as a Slurm job: ``SlurmExecutor(machine="mycluster", partition="cpu", time="1:00:00",
    cpus_per_task=4, mem="8G", gpus=1, account=..., qos=..., extra_directives=["--exclusive"])``.
    """

    scheduler = "slurm"
    RESOURCES = ("partition", "nodes", "ntasks", "ntasks_per_node", "cpus_per_task", "gpus",
                 "mem", "mem_per_cpu", "time", "account", "qos", "constraint", "reservation",
                 "exclusive")

    def __init__(self, machine: str | None = None, extra_directives: list[str] | None = None,
                 **resources: Any) -> None:
        unknown = sorted(set(resources) - set(self.RESOURCES))
        if unknown:
            raise WorkflowDefinitionError(
                f"{type(self).__name__} has no resource {unknown[0]!r} (known: "
                f"{', '.join(self.RESOURCES)}, extra_directives)")
        if machine is not None and not isinstance(machine, str):
            raise WorkflowDefinitionError(f"machine must be a name, not {machine!r}")
        self.machine = machine
        self.resources = {k: v for k, v in resources.items() if v is not None}
        if extra_directives:
            self.resources["extra_directives"] = list(extra_directives)

    def to_spec(self) -> dict[str, Any]:
        return {"kind": "batch", "scheduler": self.scheduler,
                "machine": self.machine or self.scheduler, "resources": self.resources}
