"""``DispatcherExecutor``: a step as a dpdispatcher job, with dflow's constructor.

A dflow script's ``from dflow.plugins.dispatcher import DispatcherExecutor`` becomes
``from hpcflow.connectors.dispatcher import DispatcherExecutor`` and works as it is: the
machine, resources and task dicts are built as dflow builds them (an SSH Slurm machine from
``host``/``username``/``port``, dicts merged over it), then handed to dpdispatcher by the
daemon (``hpcflow.connectors.executors.dispatcher``). ``machine="NAME"`` (hpcflow's own
argument) names a ``[dispatchers.NAME]`` machine of the daemon's config file instead.

What dflow needs only because it runs dpdispatcher in a Kubernetes pod (``image``,
``image_pull_policy``, ``command``, ``map_tmp_dir``, ``remove_scheduling_strategies``,
``terminate_grace_period``) is accepted and has nothing to do here. Secrets (``password``, or
a password, ticket or key inside ``machine_dict["remote_profile"]``) never reach the store:
they are kept in ``$HPCFLOW_HOME/secrets`` (``hpcflow.secrets``) and the store holds a
reference.
"""

from __future__ import annotations

import hashlib
import json
import os
from copy import deepcopy
from typing import Any

from hpcflow.connectors.executors.kinds import DISPATCHER_KIND
from hpcflow.errors import WorkflowDefinitionError

#: Keys of a remote profile whose values are credentials.
SECRET_KEYS = frozenset({"password", "passphrase", "totp_secret", "ticket", "access_key",
                         "app_key", "secret_key", "token", "authorization"})
#: dflow's arguments that only concern its dispatcher pod on Kubernetes.
POD_ONLY = ("image", "image_pull_policy", "command", "map_tmp_dir",
            "remove_scheduling_strategies", "terminate_grace_period")
CONTAINER_KINDS = ("docker", "singularity", "podman")


def merge_dicts(base: dict, update: dict) -> None:
    """Merge ``update`` into ``base``, tables key by key (dflow's ``update_dict``)."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge_dicts(base[key], value)
        else:
            base[key] = deepcopy(value)


def split_secrets(profile: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the profile without credentials, the credentials), at any depth.

    >>> split_secrets({"hostname": "h", "password": "pw", "input_data": {"token": "t"}})
    ({'hostname': 'h', 'input_data': {}}, {'password': 'pw', 'input_data': {'token': 't'}})
    """
    kept: dict[str, Any] = {}
    secret: dict[str, Any] = {}
    for key, value in profile.items():
        if key in SECRET_KEYS and value not in (None, ""):
            secret[key] = value
        elif isinstance(value, dict):
            kept[key], inner = split_secrets(value)
            if inner:
                secret[key] = inner
        else:
            kept[key] = value
    return kept, secret


class DispatcherExecutor:
    """Run a step through dpdispatcher (every batch type and context it has, Bohrium too)."""

    def __init__(self, host: str | None = None, queue_name: str | None = None, port: int = 22,
                 username: str = "root", password: str | None = None,
                 private_key_file: os.PathLike | str | None = None, image: str | None = None,
                 image_pull_policy: str | None = None, command: str | list[str] = "python3",
                 remote_command: str | list[str] | None = None, map_tmp_dir: bool = True,
                 machine_dict: dict | None = None, resources_dict: dict | None = None,
                 task_dict: dict | None = None, json_file: os.PathLike | str | None = None,
                 docker_executable: str | None = None,
                 singularity_executable: str | None = None, container_args: str = "",
                 podman_executable: str | None = None, remote_root: str | None = None,
                 retry_on_submission_error: int | None = None, merge_sliced_step: bool = False,
                 pre_script: str = "", post_script: str = "", clean: bool = True,
                 remove_scheduling_strategies: bool = True, envs: dict[str, str] | None = None,
                 merge_bohrium_job_group: bool = False,
                 terminate_grace_period: int | None = None, machine: str | None = None,
                 **unknown: Any) -> None:
        if unknown:
            raise WorkflowDefinitionError(
                f"DispatcherExecutor got unknown argument{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(repr(k) for k in sorted(unknown))}: check the spelling against "
                "dflow's DispatcherExecutor")
        for name, value, what in (("pre_script", pre_script, "a non-empty pre_script"),
                                  ("post_script", post_script, "a non-empty post_script"),
                                  ("merge_sliced_step", merge_sliced_step, "merge_sliced_step"),
                                  ("merge_bohrium_job_group", merge_bohrium_job_group,
                                   "merge_bohrium_job_group")):
            if value:
                raise WorkflowDefinitionError(
                    f"DispatcherExecutor({name}=...): hpcflow does not support {what}; "
                    "remove it (Slices(group_size=) batches slices, resources_dict's "
                    "prepend_script/append_script add shell lines to the job)")
        if machine is not None and (host is not None or machine_dict is not None
                                    or json_file is not None):
            raise WorkflowDefinitionError(
                f"DispatcherExecutor(machine={machine!r}) names a [dispatchers.{machine}] "
                "machine of the config file: do not also give host, machine_dict or json_file")
        if retry_on_submission_error is not None and (
                isinstance(retry_on_submission_error, bool)
                or not isinstance(retry_on_submission_error, int)
                or retry_on_submission_error < 0):
            raise WorkflowDefinitionError("retry_on_submission_error must be a non-negative "
                                          f"integer, not {retry_on_submission_error!r}")
        self.machine = machine
        self.host, self.port, self.username = host, port, username
        self.queue_name = queue_name
        self.remote_root = remote_root
        self.clean = bool(clean)
        self.retry_on_submission_error = retry_on_submission_error
        self.remote_command = [remote_command] if isinstance(remote_command, str) \
            else remote_command
        containers = {k: v for k, v in (("docker", docker_executable),
                                        ("singularity", singularity_executable),
                                        ("podman", podman_executable)) if v}
        if len(containers) > 1:
            raise WorkflowDefinitionError("DispatcherExecutor takes one of docker_executable, "
                                          "singularity_executable and podman_executable")
        self.container = ({"kind": next(iter(containers)), "executable": next(
            iter(containers.values())), "args": container_args} if containers else None)

        conf: dict[str, Any] = {}
        if json_file is not None:
            try:
                with open(json_file) as f:
                    conf = json.load(f)
            except (OSError, ValueError) as exc:
                raise WorkflowDefinitionError(f"DispatcherExecutor(json_file={str(json_file)!r}"
                                              f"): cannot read it: {exc}") from None
        self.machine_dict: dict[str, Any] | None = None
        if machine is None:
            self.machine_dict = self._machine_dict(password, private_key_file)
            merge_dicts(self.machine_dict, conf.get("machine") or {})
            merge_dicts(self.machine_dict, machine_dict or {})
        # A machine of the config file brings its own default resources (the daemon puts
        # this step's over them): only what the script says is kept here.
        self.resources_dict: dict[str, Any] = {} if machine is not None else {
            "number_node": 1, "cpu_per_node": 1, "group_size": 1,
            "envs": {"PYTHONUNBUFFERED": "true"}}
        if queue_name is not None:
            self.resources_dict["queue_name"] = queue_name
        merge_dicts(self.resources_dict, conf.get("resources") or {})
        merge_dicts(self.resources_dict, resources_dict or {})
        if envs:
            merge_dicts(self.resources_dict, {"envs": dict(envs)})
        group_size = self.resources_dict.get("group_size", 1)
        if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
            raise WorkflowDefinitionError(f"resources_dict group_size must be a positive "
                                          f"integer, not {group_size!r}")
        self.task_dict: dict[str, Any] = dict(task_dict or {})

    def _machine_dict(self, password: str | None,
                      private_key_file: os.PathLike | str | None) -> dict[str, Any]:
        """dflow's default: Slurm over SSH to ``host`` as ``username``."""
        profile: dict[str, Any] = {"hostname": self.host, "username": self.username,
                                   "port": self.port, "timeout": 10}
        if password is not None:
            profile["password"] = password
        if private_key_file is not None:
            profile["key_filename"] = os.path.expanduser(str(private_key_file))
        machine: dict[str, Any] = {"batch_type": "Slurm", "context_type": "SSHContext",
                                   "remote_profile": profile}
        if self.remote_root is not None:  # else the daemon picks one for the context
            machine["remote_root"] = self.remote_root
        return machine

    def to_spec(self) -> dict[str, Any]:
        """The step's executor as stored: no credential in it (see ``hpcflow.secrets``)."""
        machine_dict, secret_ref = None, None
        if self.machine_dict is not None:
            machine_dict = deepcopy(self.machine_dict)
            profile, secret = split_secrets(machine_dict.get("remote_profile") or {})
            machine_dict["remote_profile"] = profile
            if secret:
                from hpcflow.secrets import stash
                from hpcflow.settings import home

                secret_ref = stash(home(), secret)
        python = self.remote_command[0] if self.remote_command else None
        spec = {"kind": DISPATCHER_KIND, "machine_dict": machine_dict, "secret": secret_ref,
                "python": python, "container": self.container, "clean": self.clean,
                "submission_retries": self.retry_on_submission_error,
                "resources": self.resources_dict, "task": self.task_dict}
        if self.machine is not None:
            spec["machine"] = self.machine
        else:
            # Steps with the same machine share one executor (and its connections).
            identity = json.dumps({k: spec[k] for k in ("machine_dict", "secret", "python",
                                                        "container", "clean",
                                                        "submission_retries")},
                                  sort_keys=True)
            spec["machine"] = "dispatcher-" + hashlib.sha256(identity.encode()).hexdigest()[:12]
        return spec
