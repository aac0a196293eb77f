"""The dpdispatcher machine an executor name stands for: a ``[dispatchers.NAME]`` table of the
config file, or the machine dict a ``DispatcherExecutor`` stored with its steps. Credentials
are put back here, in the daemon: from ``hpcflow.secrets``, and for Bohrium from the
environment (dflow's ``BOHRIUM_*`` variables) or the config file's ``[bohrium]`` table.
Nothing here does I/O beyond reading those; ``environ`` and the secrets are arguments so
that tests can give their own.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from copy import deepcopy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpcflow.config_file import DaemonConfig
from hpcflow.connectors.dispatcher import merge_dicts
from hpcflow.errors import HpcflowError

BOHRIUM_CONTEXTS = ("Bohrium", "BohriumContext", "DpCloudServerContext", "LebesgueContext")
OPENAPI_CONTEXTS = ("OpenAPI", "OpenAPIContext")
LOCAL_CONTEXTS = ("LocalContext", "Local", "LazyLocalContext", "LazyLocal")
SSH_CONTEXTS = ("SSHContext", "SSH")
#: Where a Bohrium job's log goes: the runner's log, as with every other executor.
LOG_FILE = "log.txt"


@dataclass(frozen=True)
class DispatcherMachine:
    """Everything the executor needs to talk to one dpdispatcher machine."""

    name: str
    #: The complete machine dict handed to ``Machine.load_from_dict`` (credentials included:
    #: it lives in memory only).
    machine_dict: dict[str, Any]
    python: str
    clean: bool = True
    known_hosts: str | None = None
    allow_new_host_keys: bool = False
    #: Default dpdispatcher resources of every step (``[dispatchers.NAME.resources]``).
    resources: dict[str, Any] = field(default_factory=dict)
    max_submissions: int = 100
    max_parallel_calls: int = 4
    #: Failed attempts of a dpdispatcher call (other than a lost connection) before the
    #: steps of that submission fail.
    submission_retries: int = 3
    #: A Bohrium ticket, which dpdispatcher reads from ``BOHR_TICKET`` only.
    bohrium_ticket: str | None = None

    @property
    def context_type(self) -> str:
        return str(self.machine_dict.get("context_type", ""))

    @property
    def batch_type(self) -> str:
        return str(self.machine_dict.get("batch_type", ""))


def _bohrium_setting(key: str, environ: Mapping[str, str], config: DaemonConfig) -> str | None:
    return environ.get(f"BOHRIUM_{key.upper()}") or config.bohrium.get(key)


def _need(value: str | None, what: str, key: str, name: str) -> str:
    if not value:
        raise HpcflowError(f"dispatcher machine {name!r} ({what}) needs {key}: set "
                           f"BOHRIUM_{key.upper()} in the daemon's environment or {key} in "
                           "the config file's [bohrium] table")
    return value


def fill_bohrium(name: str, machine_dict: dict[str, Any], environ: Mapping[str, str],
                 config: DaemonConfig) -> str | None:
    """Complete a Bohrium or OpenAPI machine dict as dflow does, credentials from the
    environment or the config file (never from the workflow); the Bohrium ticket, if one
    is given (it replaces the password)."""
    ticket = None
    context = machine_dict.get("context_type")
    profile = machine_dict.setdefault("remote_profile", {})
    if context in BOHRIUM_CONTEXTS:
        machine_dict.setdefault("batch_type", "Bohrium")
        ticket = _bohrium_setting("ticket", environ, config)
        if ticket:
            # dpdispatcher's Bohrium context reads the ticket from BOHR_TICKET itself.
            profile.setdefault("email", "")
            profile.setdefault("password", "")
        else:
            if "email" not in profile and "phone" not in profile:
                phone = _bohrium_setting("phone", environ, config)
                if phone:
                    profile["phone"] = phone
                else:
                    profile["email"] = _need(_bohrium_setting("username", environ, config),
                                             "Bohrium", "username", name)
            if "password" not in profile:
                profile["password"] = _need(_bohrium_setting("password", environ, config),
                                            "Bohrium", "password", name)
        if "program_id" not in profile and "project_id" not in profile:
            project = _need(_bohrium_setting("project_id", environ, config), "Bohrium",
                            "project_id", name)
            profile["program_id"] = _int_project(project, name)
        input_data = profile.setdefault("input_data", {})
        input_data["log_file"] = LOG_FILE
        for key, default in (("job_type", "container"), ("platform", "ali"),
                             ("scass_type", "c4_m8_cpu"), ("job_name", f"hpcflow-{name}"),
                             ("output_log", True)):
            input_data.setdefault(key, default)
    elif context in OPENAPI_CONTEXTS:
        for key in ("access_key", "app_key"):
            if key not in profile:
                profile[key] = _need(_bohrium_setting(key, environ, config), "OpenAPI", key,
                                     name)
        if "project_id" not in profile:
            profile["project_id"] = _int_project(
                _need(_bohrium_setting("project_id", environ, config), "OpenAPI",
                      "project_id", name), name)
        for key, default in (("platform", "ali"), ("machine_type", "c4_m8_cpu"),
                             ("job_name", f"hpcflow-{name}")):
            profile.setdefault(key, default)
    return ticket


def _int_project(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise HpcflowError(f"dispatcher machine {name!r}: the Bohrium project id must be a "
                           f"number, not {value!r}") from None


def dispatcher_machine(name: str, config: DaemonConfig, step_executor: dict | None,
                       home: Path, secrets: dict[str, Any] | None,
                       environ: Mapping[str, str]) -> DispatcherMachine:
    """The machine called ``name``: from the config file, else from ``step_executor`` (the
    executor spec of one of its steps) with ``secrets`` (revealed from its reference)."""
    declared = config.dispatchers.get(name)
    runs_root = str(home / "runs")
    if declared is not None:
        machine_dict = deepcopy(declared.machine)
        settings: dict[str, Any] = {
            "python": declared.python, "clean": declared.clean,
            "resources": dict(declared.resources),
            "known_hosts": declared.known_hosts,
            "allow_new_host_keys": declared.allow_new_host_keys,
            "max_submissions": declared.max_submissions,
            "max_parallel_calls": declared.max_parallel_calls}
    elif step_executor is not None and step_executor.get("machine_dict") is not None:
        machine_dict = deepcopy(step_executor["machine_dict"])
        if secrets:
            merge_dicts(machine_dict.setdefault("remote_profile", {}), secrets)
        settings = {"python": step_executor.get("python"),
                    "clean": bool(step_executor.get("clean", True))}
        if step_executor.get("submission_retries") is not None:
            settings["submission_retries"] = int(step_executor["submission_retries"])
    else:
        where = config.path or home / "config.toml"
        raise HpcflowError(f"no dispatcher machine {name!r} in the config file ({where}): "
                           f"declare it as [dispatchers.{name}]")
    if not machine_dict.get("batch_type") and machine_dict.get("context_type") not in \
            BOHRIUM_CONTEXTS:
        raise HpcflowError(f"dispatcher machine {name!r} has no batch_type")
    settings["bohrium_ticket"] = fill_bohrium(name, machine_dict, environ, config)
    # Step files live under the daemon's runs directory; dpdispatcher copies them from there.
    machine_dict["local_root"] = runs_root
    if machine_dict.get("context_type") in LOCAL_CONTEXTS:
        machine_dict.setdefault("remote_root", str(home / "dispatcher" / name / "remote"))
    elif machine_dict.get("context_type") in SSH_CONTEXTS:  # dflow's default, for hpcflow
        user = (machine_dict.get("remote_profile") or {}).get("username") or "root"
        machine_dict.setdefault("remote_root", "/root/hpcflow/workflows" if user == "root"
                                else f"/home/{user}/hpcflow/workflows")
    # hpcflow retries steps itself (retry_on_transient_error, node failures): a job that
    # ended without hpcflow's result is reported at once, not resubmitted by dpdispatcher.
    machine_dict["retry_count"] = 0
    if not settings.get("python"):
        local = machine_dict.get("context_type") in LOCAL_CONTEXTS
        settings["python"] = sys.executable if local else "python3"
    return DispatcherMachine(name=name, machine_dict=machine_dict,
                             **{k: v for k, v in settings.items() if v is not None})
