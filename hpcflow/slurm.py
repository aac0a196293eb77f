"""dflow's ``dflow.slurm``: ``SlurmRemoteExecutor`` (a step as a Slurm job on a cluster
reached over SSH), ``SlurmJobTemplate`` and ``SlurmJob`` (a step as a Slurm job; in dflow
through wlm-operator's virtual nodes, here on a machine of the config file).

A dflow ``header`` is the top of the job script: its ``#SBATCH`` lines become the job's
directives (hpcflow's ``extra_directives``), other lines are shell commands run before the
step (``module load ...``). hpcflow names the job, its directory and its output file itself
(``hpcflow logs`` shows it), so ``#SBATCH`` options for those are left out.
"""

from __future__ import annotations

import os
import re
from typing import Any

from hpcflow.errors import WorkflowDefinitionError
from hpcflow.executor import (
    RemoteExecutor,
    Resource,
    container_settings,
    python_of,
    refuse_unknown,
)

#: sbatch options hpcflow sets itself: the job's name, output, error file and directory.
_OWN_OPTIONS = re.compile(r"^(-[oeJD]|--(output|error|job-name|chdir|open-mode)(=|\s|$))")


def split_header(header: str, who: str) -> tuple[list[str], list[str]]:
    """(the ``#SBATCH`` directives, the shell lines) of a dflow header.

    >>> split_header("#!/bin/bash\\n  #SBATCH -N 1\\n#SBATCH --output=x.out\\n"
    ...              "#SBATCH -p debug # the queue\\nmodule load gcc\\n# a comment\\n", "S")
    (['-N 1', '-p debug'], ['module load gcc'])
    """
    if not isinstance(header, str):
        raise WorkflowDefinitionError(f"{who}(header=...) must be the text of the job "
                                      f"script's header, not {header!r}")
    directives, shell = [], []
    for raw in header.splitlines():
        line = raw.strip()
        if not line or line.startswith("#!"):
            continue
        if re.match(r"^#SBATCH\s", line):
            option = line[len("#SBATCH"):].split(" #", 1)[0].strip()
            if option and not _OWN_OPTIONS.match(option):
                directives.append(option)
        elif not line.startswith("#"):
            shell.append(line)
    return directives, shell


class SlurmRemoteExecutor(RemoteExecutor):
    """A step as a Slurm job on ``host``, submitted over SSH: dflow's arguments, plus
    ``header`` (``#SBATCH`` lines and shell lines, see ``split_header``). ``interval`` and
    ``pvc`` (where dflow's pod keeps the job id) have nothing to do here: hpcflow polls every
    job of the machine with one ``squeue`` and keeps job ids in its store."""

    scheduler = "slurm"
    prefix = "ssh-slurm"

    def __init__(self, host: str, port: int = 22, username: str = "root",
                 password: str | None = None,
                 private_key_file: os.PathLike | str | None = None,
                 workdir: str = "~/dflow/workflows/{{workflow.name}}/{{pod.name}}",
                 command: str | list[str] | None = None,
                 remote_command: str | list[str] | None = None, image: str | None = None,
                 image_pull_policy: str | None = None, map_tmp_dir: bool = True,
                 docker_executable: str | None = None,
                 singularity_executable: str | None = None,
                 podman_executable: str | None = None, action_retries: int = -1,
                 header: str = "", interval: int = 3, pvc: Any = None,
                 **unknown: Any) -> None:
        refuse_unknown("SlurmRemoteExecutor", unknown)
        super().__init__(host=host, port=port, username=username, password=password,
                         private_key_file=private_key_file, workdir=workdir, command=command,
                         remote_command=remote_command, image=image,
                         image_pull_policy=image_pull_policy, map_tmp_dir=map_tmp_dir,
                         docker_executable=docker_executable,
                         singularity_executable=singularity_executable,
                         podman_executable=podman_executable, action_retries=action_retries)
        self.header, self.interval, self.pvc = header, interval, pvc
        self.directives, self.header_commands = split_header(header, "SlurmRemoteExecutor")

    def _settings(self) -> dict[str, Any]:
        settings = super()._settings()
        settings["prepare"] = self.header_commands
        return settings

    def _resources(self) -> dict[str, Any]:
        return {"extra_directives": self.directives} if self.directives else {}


class SlurmJobTemplate:
    """A step as a Slurm job on a machine of the config file (``machine=``, hpcflow's own
    argument; by default this machine's Slurm). dflow picks the cluster with a Kubernetes
    ``node_selector`` (wlm-operator's virtual node): accepted, the machine says where."""

    def __init__(self, header: str = "", node_selector: dict[str, str] | None = None,
                 prepare_image: str | None = None, prepare_image_pull_policy: str | None = None,
                 collect_image: str | None = None, collect_image_pull_policy: str | None = None,
                 workdir: str = "dflow/workflows/{{workflow.name}}/{{pod.name}}",
                 remote_command: str | list[str] | None = None,
                 docker_executable: str | None = None,
                 singularity_executable: str | None = None,
                 podman_executable: str | None = None, machine: str | None = None,
                 **unknown: Any) -> None:
        who = type(self).__name__
        refuse_unknown(who, unknown)
        self.header, self.node_selector, self.workdir = header, node_selector, workdir
        directives, shell = split_header(header, who)
        where = f"[machines.{machine or 'slurm'}]"
        if shell:
            raise WorkflowDefinitionError(
                f"{who}(header=...) line {shell[0]!r} is a shell command: the job runs on "
                f"a machine of the config file, so put it in {where}'s prepare = [...]")
        if container_settings(who, docker_executable, singularity_executable,
                              podman_executable):
            raise WorkflowDefinitionError(
                f"{who}: the container executable is the machine's setting: set "
                f"container = \"...\" in {where} (steps with an image then run in it)")
        if python_of(remote_command) is not None:
            raise WorkflowDefinitionError(
                f"{who}(remote_command=...): the Python of the job is the machine's "
                f"setting: set python = \"...\" in {where}")
        from hpcflow.executors import SlurmExecutor

        self.spec = SlurmExecutor(machine=machine, extra_directives=directives or None)

    def to_spec(self) -> dict[str, Any]:
        return self.spec.to_spec()


class SlurmJob(Resource, SlurmJobTemplate):
    """dflow's Slurm job resource: ``Step(use_resource=SlurmJob(header=...))`` (or as the
    step's executor) runs the step as a Slurm job, as ``SlurmJobTemplate`` does.
    ``prepare``/``results`` (wlm-operator's volume mounts) have nothing to do here."""

    action = "create"
    success_condition = "status.status == Succeeded"
    failure_condition = "status.status == Failed"

    def __init__(self, header: str = "", node_selector: dict[str, str] | None = None,
                 prepare: Any = None, results: Any = None, map_tmp_dir: bool = True,
                 workdir: str = ".", remote_command: str | list[str] | None = None,
                 docker_executable: str | None = None,
                 singularity_executable: str | None = None,
                 podman_executable: str | None = None, machine: str | None = None,
                 **unknown: Any) -> None:
        SlurmJobTemplate.__init__(
            self, header=header, node_selector=node_selector, workdir=workdir,
            remote_command=remote_command, docker_executable=docker_executable,
            singularity_executable=singularity_executable,
            podman_executable=podman_executable, machine=machine, **unknown)
        self.prepare, self.results, self.map_tmp_dir = prepare, results, map_tmp_dir

    def to_spec(self) -> dict[str, Any]:
        return SlurmJobTemplate.to_spec(self)
