"""Where a step runs: ``Step(executor=SlurmExecutor(...))``; without one, on this machine.

An executor names a machine of the daemon's config file (``[machines.NAME]``; with no name,
this machine's own scheduler) and the resources of the step's job, which override the
machine's defaults.
"""

from __future__ import annotations

from typing import Any

from hpcflow.errors import WorkflowDefinitionError


class BatchExecutorSpec:
    """A step as a job of a batch scheduler: a machine of the config file and the job's
    resources (checked against the scheduler plugin's resource names), plus how Ready
    steps share submissions: ``array_size`` (and ``array_throttle``) or ``group_size``."""

    scheduler = ""

    def __init__(self, machine: str | None = None, extra_directives: list[str] | None = None,
                 group_size: int | None = None, array_size: int | None = None,
                 array_throttle: int | None = None, **resources: Any) -> None:
        known = self.resource_names()
        unknown = sorted(set(resources) - set(known))
        if unknown:
            raise WorkflowDefinitionError(
                f"{type(self).__name__} has no resource {unknown[0]!r} (known: "
                f"{', '.join(known)}, extra_directives, group_size, array_size, "
                "array_throttle)")
        if machine is not None and not isinstance(machine, str):
            raise WorkflowDefinitionError(f"machine must be a name, not {machine!r}")
        self.machine = machine
        self.resources = {k: v for k, v in resources.items() if v is not None}
        if extra_directives:
            self.resources["extra_directives"] = list(extra_directives)
        # Steps of a loop (or any Ready steps with the same resources) share submissions, so
        # that 1000 tiny steps are not 1000 sbatch calls: an array job with an element per
        # step (array_size), or one job running group_size steps in turn.
        grouping = {"group_size": group_size, "array_size": array_size,
                    "array_throttle": array_throttle}
        for key, value in grouping.items():
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise WorkflowDefinitionError(f"{key} must be a positive integer, not "
                                              f"{value!r}")
            self.resources[key] = value
        from hpcflow.config_file import ConfigError, check_grouping

        try:
            check_grouping({k: v for k, v in grouping.items() if v is not None}, self.scheduler,
                           type(self).__name__)
        except ConfigError as exc:
            raise WorkflowDefinitionError(str(exc)) from None

    @classmethod
    def resource_names(cls) -> tuple[str, ...]:
        """The resources the scheduler takes, as its plugin names them (written once, in the
        scheduler's module)."""
        from hpcflow.connectors.plugins import scheduler

        return scheduler(cls.scheduler).resources

    def to_spec(self) -> dict[str, Any]:
        from hpcflow.connectors.executors.kinds import BATCH_KIND

        return {"kind": BATCH_KIND, "scheduler": self.scheduler,
                "machine": self.machine or self.scheduler, "resources": self.resources}


class SlurmExecutor(BatchExecutorSpec):
    """A step as a Slurm job: ``SlurmExecutor(machine="mycluster", partition="cpu", time="1:00:00",
    cpus_per_task=4, mem="8G", gpus=1, account=..., qos=..., extra_directives=["--exclusive"],
    group_size=100)``.
    """

    scheduler = "slurm"


class PBSExecutor(BatchExecutorSpec):
    """A step as a PBS (OpenPBS, PBS Professional) job: ``PBSExecutor(machine="mycluster",
    queue="workq", walltime="1:00:00", ncpus=4, mem="8gb", ngpus=1, account=...,
    extra_directives=["-l place=excl"])``. ``ncpus``, ``mem`` and ``ngpus`` form one
    ``select`` chunk; ``mem`` is a PBS size (``8gb``), ``walltime`` ``[[H:]M:]S``.
    """

    scheduler = "pbs"


class LSFExecutor(BatchExecutorSpec):
    """A step as an LSF job: ``LSFExecutor(machine="mycluster", queue="normal", runlimit=90,
    ntasks=4, mem="8GB", gpus=1, project=..., exclusive=True,
    extra_directives=['-R "span[hosts=1]"'])``. ``runlimit`` is LSF's ``-W``: minutes or
    ``hours:minutes``.
    """

    scheduler = "lsf"


class SGEExecutor(BatchExecutorSpec):
    """A step as a Grid Engine job: ``SGEExecutor(machine="mycluster", queue="all.q",
    time="1:00:00", mem="4G", pe="smp", slots=4, account=..., project=...,
    extra_directives=["-l gpu=1"])``. ``time`` is h_rt (seconds or ``H:MM:SS``); ``mem`` is
    h_vmem, per slot; ``slots`` (or ``cpus_per_task``) need a parallel environment ``pe``.
    """

    scheduler = "sge"


class ArgoExecutor:
    """A step as a pod of an Argo Workflows cluster of the config file (``[argo.NAME]``), in
    its template's ``image=``: ``ArgoExecutor(cluster="k8s", cpu="2", memory="4Gi",
    gpus=1)``. ``cpu``, ``memory`` and ``gpus`` (``nvidia.com/gpu``) are both requested
    and the limit; ``requests=``/``limits=`` set either alone. The cluster's own defaults
    apply to what a step does not say. ``group_size=N`` runs N Ready steps of one template
    as one Argo Workflow (one pod each), to cut the per-workflow overhead."""

    def __init__(self, cluster: str, cpu: str | int | float | None = None,
                 memory: str | None = None, gpus: int | str | None = None,
                 requests: dict[str, Any] | None = None, limits: dict[str, Any] | None = None,
                 node_selector: dict[str, str] | None = None,
                 tolerations: list[dict[str, Any]] | None = None,
                 service_account: str | None = None, image_pull_policy: str | None = None,
                 envs: dict[str, str] | None = None, group_size: int | None = None) -> None:
        from hpcflow.config_file import ConfigError
        from hpcflow.connectors.executors.argo_config import PULL_POLICIES, check_pod_settings

        if not isinstance(cluster, str) or not cluster:
            raise WorkflowDefinitionError(f"ArgoExecutor(cluster=...) must name an [argo.NAME] "
                                          f"of the config file, not {cluster!r}")
        pods = {k: v for k, v in (("cpu", cpu), ("memory", memory), ("gpus", gpus),
                                  ("requests", requests), ("limits", limits),
                                  ("node_selector", node_selector),
                                  ("tolerations", tolerations),
                                  ("service_account", service_account),
                                  ("image_pull_policy", image_pull_policy), ("envs", envs))
                if v is not None}
        try:
            self.resources: dict[str, Any] = check_pod_settings(pods, "ArgoExecutor")
        except ConfigError as exc:
            raise WorkflowDefinitionError(str(exc)) from None
        if image_pull_policy is not None and image_pull_policy not in PULL_POLICIES:
            raise WorkflowDefinitionError(f"ArgoExecutor.image_pull_policy must be one of "
                                          f"{', '.join(PULL_POLICIES)}, not "
                                          f"{image_pull_policy!r}")
        if group_size is not None:
            if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
                raise WorkflowDefinitionError(f"group_size must be a positive integer, not "
                                              f"{group_size!r}")
            self.resources["group_size"] = group_size
        self.cluster = cluster

    def to_spec(self) -> dict[str, Any]:
        from hpcflow.connectors.executors.argo_kind import ARGO_KIND

        return {"kind": ARGO_KIND, "cluster": self.cluster, "resources": self.resources}
