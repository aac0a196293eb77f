"""dflow's ``dflow.executor``: ``RemoteExecutor`` (a step as a process on a host reached over
SSH), ``ContainerExecutor`` (a step in a container on the machine that runs it), and the
``Executor`` and ``Resource`` base classes.

dflow renders these into Argo templates run by a pod; hpcflow runs the step itself on the
machine they describe (``hpcflow.connectors.executors.step_machine``): over SSH with the
host key checked against ``~/.ssh/known_hosts`` of the daemon's user, a password kept out of
the store (``hpcflow.secrets``), artifacts relayed and hpcflow's runner shipped as for any
machine that does not share the daemon's files. What concerns only dflow's pod (``image``,
``image_pull_policy``, ``command``, ``map_tmp_dir``, ``action_retries``) is accepted and has
nothing to do here.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from hpcflow.connectors.executors.kinds import STEP_MACHINE_KIND
from hpcflow.errors import WorkflowDefinitionError

CONTAINER_KINDS = ("docker", "singularity", "podman")


def refuse_unknown(who: str, unknown: dict[str, Any]) -> None:
    """One line naming the arguments ``who`` does not have."""
    if unknown:
        raise WorkflowDefinitionError(
            f"{who} got unknown argument{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(k) for k in sorted(unknown))}: check the spelling against "
            f"dflow's {who}")


def workdir_root(workdir: str | None) -> str | None:
    """The root under which hpcflow puts each workflow's step directories, from dflow's
    ``workdir`` (the part before its first ``{{...}}``); relative means under ``~``.

    >>> workdir_root("~/dflow/workflows/{{workflow.name}}/{{pod.name}}")
    '~/dflow/workflows'
    >>> workdir_root("/data/dflow/workflows/{{workflow.name}}/{{pod.name}}")
    '/data/dflow/workflows'
    >>> workdir_root("runs/{{pod.name}}"), workdir_root("{{pod.name}}"), workdir_root(None)
    ('~/runs', '~', None)
    """
    if workdir is None:
        return None
    root = str(workdir).split("{{", 1)[0].rstrip("/")
    if not root or root == "~":
        return "~"
    if any(c in root for c in "\n\r'\"$`\\;&|<>* "):
        raise WorkflowDefinitionError(f"workdir {workdir!r}: use a plain path (letters, "
                                      "digits, ._-/ and a leading ~)")
    return root if root.startswith(("/", "~/")) else f"~/{root}"


def python_of(remote_command: str | list[str] | None) -> str | None:
    """The Python that runs hpcflow's runner on the machine, from dflow's ``remote_command``
    when it names one (a shell such as ``bash`` stays the script templates' own command).

    >>> python_of("python3.11"), python_of(["/opt/conda/bin/python"]), python_of("bash")
    ('python3.11', '/opt/conda/bin/python', None)
    """
    command = [remote_command] if isinstance(remote_command, str) else remote_command
    if not command:
        return None
    first = str(command[0])
    return first if os.path.basename(first).startswith("python") else None


def container_settings(who: str, docker: str | None, singularity: str | None,
                       podman: str | None, pull_policy: str | None = None) -> dict[str, Any]:
    """The machine's container settings from dflow's ``docker``/``singularity``/``podman``
    executables (at most one); empty for none.

    >>> container_settings("X", "docker", None, None, "Always")
    {'container': 'docker', 'container_options': ['--pull', 'always'], 'container_kind': \
'docker'}
    >>> container_settings("X", None, "/usr/bin/singularity", None)["container_kind"]
    'apptainer'
    """
    given = {k: v for k, v in zip(CONTAINER_KINDS, (docker, singularity, podman),
                                  strict=True) if v}
    if len(given) > 1:
        raise WorkflowDefinitionError(f"{who} takes one of docker, singularity and podman, "
                                      f"not {' and '.join(sorted(given))}")
    if not given:
        return {}
    kind, executable = next(iter(given.items()))
    if not isinstance(executable, str) or "\n" in executable:
        raise WorkflowDefinitionError(f"{who}: the {kind} executable must be a command name "
                                      f"or path, not {executable!r}")
    options: list[str] = []
    if kind in ("docker", "podman") and pull_policy in ("Always", "Never"):
        options = ["--pull", pull_policy.lower()]
    return {"container": executable, "container_options": options,
            "container_kind": "apptainer" if kind == "singularity" else kind}


def machine_name(prefix: str, settings: dict[str, Any]) -> str:
    """Steps whose executors describe the same machine share one executor (and its SSH
    connection): the name is a digest of the settings."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    return f"{prefix}-{digest}"


class Executor:
    """dflow's base of executors, which rewrite a step's Argo template (``render``). A
    subclass of a script's own cannot run here: hpcflow runs no Argo templates."""

    def render(self, template: Any) -> Any:
        raise NotImplementedError

    def to_spec(self) -> dict[str, Any] | None:
        raise WorkflowDefinitionError(
            f"{type(self).__name__} is a custom dflow Executor (it rewrites Argo templates "
            "with render()), which hpcflow cannot run: use SlurmRemoteExecutor, "
            "RemoteExecutor, ContainerExecutor, DispatcherExecutor or hpcflow's SlurmExecutor")


class Resource:
    """dflow's base of Kubernetes resources a step creates (``Step(use_resource=...)``);
    only ``SlurmJob`` means something here."""

    action: str | None = None
    success_condition: str | None = None
    failure_condition: str | None = None

    def get_manifest(self, template: Any) -> Any:
        raise NotImplementedError

    def to_spec(self) -> dict[str, Any] | None:
        raise WorkflowDefinitionError(
            f"{type(self).__name__} is a Kubernetes resource (use_resource applies its "
            "manifest to a cluster), and hpcflow runs no Kubernetes: use SlurmJob, or an "
            "executor")


class RemoteExecutor(Executor):
    """A step as a process on ``host``, reached over SSH, with no scheduler.

    ``workdir`` (dflow's ``~/dflow/workflows/{{workflow.name}}/{{pod.name}}``) becomes the
    root of the step directories: ``ROOT/WORKFLOW_ID/STEP``. ``remote_command`` naming a
    Python (``python3.11``) is the Python that runs the step there (default ``python3``);
    with ``docker_executable`` (or ``singularity_executable``, ``podman_executable``) a step
    whose template has an ``image`` runs in it.
    """

    scheduler = "shell"
    prefix = "ssh"

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
                 **unknown: Any) -> None:
        refuse_unknown(type(self).__name__, unknown)
        if not isinstance(host, str) or not host or any(c.isspace() for c in host):
            raise WorkflowDefinitionError(f"{type(self).__name__}(host=...) must be a host "
                                          f"name or address, not {host!r}")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise WorkflowDefinitionError(f"{type(self).__name__}(port=...) must be a port "
                                          f"number, not {port!r}")
        self.host, self.port, self.username = host, port, username
        self.password = password
        self.private_key_file = private_key_file
        self.workdir = workdir
        self.work_root = workdir_root(workdir)
        self.remote_command = remote_command
        self.command, self.image, self.image_pull_policy = command, image, image_pull_policy
        self.map_tmp_dir, self.action_retries = map_tmp_dir, action_retries
        self.container = container_settings(type(self).__name__, docker_executable,
                                            singularity_executable, podman_executable)

    def _settings(self) -> dict[str, Any]:
        """The machine, without its credential."""
        key = os.path.abspath(os.path.expanduser(str(self.private_key_file))) \
            if self.private_key_file is not None else None
        return {"scheduler": self.scheduler, "host": self.host, "port": self.port,
                "user": self.username, "key_filename": key,
                "work_root": self.work_root,
                "python": python_of(self.remote_command), **self.container}

    def _resources(self) -> dict[str, Any]:
        return {}

    def to_spec(self) -> dict[str, Any]:
        """The step's executor as stored: the password only as a reference."""
        settings = self._settings()
        if self.password is not None:
            from hpcflow.secrets import stash
            from hpcflow.settings import home

            settings["secret"] = stash(home(), {"password": str(self.password)})
        return {"kind": STEP_MACHINE_KIND, "machine": machine_name(self.prefix, settings),
                **settings, "resources": self._resources()}


class ContainerExecutor(Executor):
    """A step whose template has an ``image`` runs in a container on this machine:
    ``ContainerExecutor(docker="docker")`` (or ``singularity=``, ``podman=``: the
    executable). A template without an image runs on the host, as with no executor."""

    def __init__(self, docker: str | None = None, singularity: str | None = None,
                 podman: str | None = None, image_pull_policy: str | None = None,
                 **unknown: Any) -> None:
        refuse_unknown("ContainerExecutor", unknown)
        self.docker, self.singularity, self.podman = docker, singularity, podman
        self.image_pull_policy = image_pull_policy
        self.container = container_settings("ContainerExecutor", docker, singularity, podman,
                                            image_pull_policy)

    def to_spec(self) -> dict[str, Any] | None:
        if not self.container:
            return None  # dflow leaves the template as it is
        settings = {"scheduler": "shell", **self.container}
        return {"kind": STEP_MACHINE_KIND, "machine": machine_name("container", settings),
                **settings, "resources": {}}
