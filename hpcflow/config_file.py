"""The daemon's config file: ``$HPCFLOW_CONFIG``, else ``$HPCFLOW_HOME/config.toml``.

Read when the daemon starts and again on SIGHUP. Every key is documented in
``config/README.md`` and shown in ``config/config.example.toml``. An unknown key
or a value of the wrong type is an error that names the file and the key, so a
typo never silently falls back to a default.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpcflow.connectors.plugins import LOCAL
from hpcflow.errors import HpcflowError, nearest
from hpcflow.privacy import UntrustedPathError, check_private_file

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CONFIG_FILE = "config.toml"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")
LOG_LEVELS = ("debug", "info", "warning", "error")


class ConfigError(HpcflowError):
    """The config file cannot be used as it is."""


@dataclass(frozen=True)
class PollBounds:
    """How often an executor is polled while it has live jobs: ``min`` seconds after a
    submission or a change, backing off to ``max`` while nothing changes."""

    min: float = 0.5
    max: float = 5.0


def machine_schedulers() -> tuple[str, ...]:
    """The schedulers a machine can name: the registered scheduler plugins."""
    from hpcflow.connectors.plugins import machine_schedulers as registered

    return tuple(registered())


#: A cluster's scheduler is asked less often than the local process table.
BATCH_POLL = PollBounds(1.0, 30.0)


@dataclass(frozen=True)
class MachineConfig:
    """A ``[machines.NAME]`` table: where and how a step's batch job runs."""

    name: str
    scheduler: str
    #: None: this machine (the daemon runs on the login node); else reached over SSH with
    #: these settings (None: from ~/.ssh/config).
    host: str | None = None
    user: str | None = None
    port: int | None = None
    key_filename: str | None = None
    known_hosts: str | None = None
    allow_new_host_keys: bool = False
    proxy_jump: str | None = None
    #: How the host is reached: "paramiko" (hpcflow's own connection, key-only sites) or
    #: "openssh" (the user's OpenSSH master connection, made by ``hpcflow ssh login``: sites
    #: that ask for a one-time code).
    transport: str = "paramiko"
    #: With "openssh": how long the login lasts with no command through it (ssh's
    #: ``ControlPersist``: seconds, or a time like "12h"; "yes": until it drops).
    control_persist: str = "12h"
    #: Step directories go under it; None: ``$HPCFLOW_HOME/runs``.
    work_root: str | None = None
    #: The Python that runs hpcflow's runner in the job; None: the daemon's own.
    python: str | None = None
    #: Lines run in the job before the runner (module load, conda activate, ...).
    prepare: tuple[str, ...] = ()
    #: Default resources of every job (each step's executor may override them).
    resources: dict[str, Any] = field(default_factory=dict)
    #: Jobs of this machine in the queue at once.
    max_jobs: int = 500
    #: Submissions in any 60 s (sites throttle sbatch storms); None: no limit.
    submit_per_minute: int | None = None
    #: Seconds a scheduler command (sbatch, squeue, sacct...) may take before it is killed
    #: and counted as the scheduler's slowness (polls of the machine back off).
    scheduler_timeout: float = 60.0
    #: Not declared: the default machine named after its scheduler.
    implicit: bool = False
    #: Run steps that name an ``image`` in it with this command (apptainer, singularity).
    container: str | None = None
    container_options: tuple[str, ...] = ()
    #: The Python inside the images.
    container_python: str = "python3"
    #: How ``container`` is called: "apptainer" (``exec``, also Singularity's form),
    #: "docker" or "podman" (``run``: dflow's ``ContainerExecutor(docker=|podman=)``).
    container_kind: str = "apptainer"
    #: How the job gets its artifacts: "direct" (its runner reads and writes the storage
    #: itself: S3 from the compute nodes, or a local storage directory they share), "relay"
    #: (the daemon copies them in and out of the step directory), "auto": direct for S3
    #: storage and for a local directory on this machine, relay otherwise.
    storage_access: str = "auto"
    #: How this machine's steps share submissions unless a step says otherwise:
    #: ``{"array_size": N, "array_throttle": K}`` (array jobs) or ``{"group_size": N}``
    #: (packs); empty: a job per step. ``array_throttle`` also caps the arrays steps ask for.
    grouping: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DispatcherConfig:
    """A ``[dispatchers.NAME]`` table: a dpdispatcher machine, as its users already write it
    (``machine`` and ``resources`` are dpdispatcher's own dicts)."""

    name: str
    machine: dict[str, Any]
    resources: dict[str, Any] = field(default_factory=dict)
    #: Overrides of the dpdispatcher Task fields hpcflow does not set itself.
    task: dict[str, Any] = field(default_factory=dict)
    #: The Python that runs hpcflow's (shipped) runner on the machine; None: the daemon's
    #: own with a LocalContext, ``python3`` elsewhere.
    python: str | None = None
    known_hosts: str | None = None
    allow_new_host_keys: bool = False
    #: dpdispatcher submissions of this machine in flight at once.
    max_submissions: int = 100
    #: dpdispatcher calls (uploads, sbatch, squeue, downloads) running at once, off the loop.
    max_parallel_calls: int = 4
    #: Remove a submission's remote directory once its results are downloaded.
    clean: bool = True


#: Bohrium credentials the ``[bohrium]`` table may hold (else ``BOHRIUM_*`` variables).
BOHRIUM_KEYS = ("username", "phone", "password", "ticket", "project_id", "access_key",
                "app_key")


@dataclass(frozen=True)
class DaemonConfig:
    path: Path | None = None
    log_level: str = "info"
    #: Seconds between wake-ups when no workflow is live (new work wakes it at once).
    idle_interval: float = 30.0
    #: Seconds between the daemon's online backups of the store (0: none).
    backup_interval: float = 3600.0
    #: How many backups are kept (the newest).
    backups: int = 3
    #: Seconds the leader host's lease lasts without a beat before another host's engine
    #: takes over (a home shared between login nodes; ``daemon/leader.py``).
    lease_seconds: float = 30.0
    #: Local steps at once; None: ``$HPCFLOW_LOCAL_PARALLELISM``, else the CPU count.
    local_parallelism: int | None = None
    #: Modules the local fork server imports once, before it forks the runners of local
    #: steps (``executors.local.preload``): each step no longer imports them itself.
    local_preload: tuple[str, ...] = ()
    #: Poll bounds by executor name (``local``; machines later); others get the default.
    poll: dict[str, PollBounds] = field(default_factory=dict)
    machines: dict[str, MachineConfig] = field(default_factory=dict)
    dispatchers: dict[str, DispatcherConfig] = field(default_factory=dict)
    #: ``[bohrium]``: credentials for dpdispatcher's Bohrium/OpenAPI contexts.
    bohrium: dict[str, str] = field(default_factory=dict)
    #: ``[storage]``: where artifacts go when a script does not say (``s3_config``): the
    #: keyword arguments of ``S3StorageClient`` plus ``kind``; empty: the local directory.
    storage: dict[str, Any] = field(default_factory=dict)
    #: The tables of executor kinds that bring their own (``[argo.NAME]``): section -> name
    #: -> what the kind parsed.
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)

    def poll_bounds(self, executor: str) -> PollBounds:
        return self.poll.get(executor, PollBounds())


def config_path(home: Path) -> Path:
    value = os.environ.get("HPCFLOW_CONFIG")
    return Path(os.path.expanduser(value)) if value else home / CONFIG_FILE


def number(table: dict, key: str, where: str, integer: bool = False) -> Any:
    value = table[key]
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if not numeric or (integer and not isinstance(value, int)) or value <= 0:
        what = "a positive integer" if integer else "a positive number"
        raise ConfigError(f"{where}.{key} must be {what}, not {value!r}")
    return value


#: A module's dotted name (``numpy``, ``ase.io``): what ``import`` takes.
MODULE_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def module_names(table: dict, key: str, where: str) -> tuple[str, ...]:
    """A list of module names (``import`` would take each), or () without the key."""
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}.{key} must be a list of module names, like [\"numpy\"], "
                          f"not {value!r}")
    for name in value:
        if not MODULE_NAME.fullmatch(name):
            raise ConfigError(f"{where}.{key}: {name!r} is not a module name (what `import` "
                              "takes: numpy, ase.io)")
    return tuple(dict.fromkeys(value))


def check_keys(table: Any, known: tuple[str, ...], where: str) -> dict:
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table ([{where}])")
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ConfigError(f"unknown key {where}.{unknown[0]} ({_nearest(unknown[0], known)}"
                          f"known keys of [{where}]: {', '.join(known)})")
    return table


def _nearest(key: str, known: tuple[str, ...]) -> str:
    """``did you mean X? `` for a misspelt key (``schedular``), else nothing."""
    found = nearest(key, known)
    return f"did you mean {found}? " if found else ""


def read_poll_bounds(table: dict, where: str, default: PollBounds = PollBounds()) -> PollBounds:
    low = float(number(table, "min_poll_interval", where)) if "min_poll_interval" in table \
        else default.min
    high = float(number(table, "max_poll_interval", where)) if "max_poll_interval" in table \
        else max(default.max, low)
    if low > high:
        raise ConfigError(f"{where}.min_poll_interval ({low}) is larger than "
                          f"max_poll_interval ({high})")
    return PollBounds(low, high)


MACHINE_KEYS = ("scheduler", "host", "user", "port", "key_filename", "known_hosts",
                "allow_new_host_keys", "proxy_jump", "work_root", "python", "prepare",
                "resources", "max_jobs", "min_poll_interval", "max_poll_interval",
                "container", "container_options", "container_python", "submit_per_minute",
                "storage_access", "array_size", "array_throttle", "group_size",
                "scheduler_timeout", "transport", "control_persist")


STORAGE_ACCESS = ("auto", "direct", "relay")
SSH_KEYS = ("user", "port", "key_filename", "known_hosts", "allow_new_host_keys", "proxy_jump",
            "transport", "control_persist")
TRANSPORTS = ("paramiko", "openssh")
#: ssh's time format (``8h``, ``1h30m``, ``600``) or yes.
PERSIST = re.compile(r"^(yes|([0-9]+[sSmMhHdDwW]?)+)$")


def ssh_transport(table: dict, where: str) -> tuple[str, str]:
    """A machine's ``transport`` and ``control_persist``, checked."""
    transport = table.get("transport", "paramiko")
    if transport not in TRANSPORTS:
        raise ConfigError(f"{where}.transport must be one of {', '.join(TRANSPORTS)}, not "
                          f"{transport!r}")
    persist = table.get("control_persist", "12h")
    if isinstance(persist, int) and not isinstance(persist, bool) and persist > 0:
        persist = str(persist)
    if not isinstance(persist, str) or not PERSIST.match(persist):
        raise ConfigError(f"{where}.control_persist must be seconds or a time like \"12h\" "
                          f"(or \"yes\"), not {persist!r}")
    if "control_persist" in table and transport != "openssh":
        raise ConfigError(f"{where}.control_persist is for transport = \"openssh\" only")
    if transport == "openssh" and table.get("allow_new_host_keys", False) is True:
        raise ConfigError(f"{where}.allow_new_host_keys cannot be used with transport = "
                          "\"openssh\": `hpcflow ssh login` trusts only keys already in "
                          "known_hosts (add one with ssh-keyscan after checking it)")
    return transport, persist


def text(table: dict, key: str, where: str) -> str | None:
    value = table.get(key)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ConfigError(f"{where}.{key} must be a non-empty string, not {value!r}")
    return value


def check_resources(resources: dict, scheduler: str, where: str) -> None:
    """A machine's default resources name only what its scheduler takes: a typo
    (``partiton``) is refused with the file, not when the machine's first job is written."""
    from hpcflow.connectors.plugins import scheduler as plugin

    known = (*plugin(scheduler).resources, "extra_directives")
    unknown = sorted(set(resources) - set(known))
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]} in [{where}.resources] "
                          f"({_nearest(unknown[0], known)}{scheduler} takes {', '.join(known)})")


def check_grouping(grouping: dict[str, Any], scheduler: str, where: str) -> None:
    """``array_size`` and ``group_size`` are two answers to one question (how many steps per
    submission): one of them, and arrays only where the scheduler runs them.
    ``array_throttle`` alone is a machine's cap for the arrays its steps ask for."""
    from hpcflow.connectors.plugins import scheduler as plugin
    from hpcflow.connectors.schedulers.base import ArrayScheduler

    if "array_size" in grouping and "group_size" in grouping:
        raise ConfigError(f"{where}: array_size and group_size both given: choose arrays (a "
                          "queue entry per step, each retried alone) or packs (one job "
                          "running group_size steps in turn)")
    if "array_size" in grouping and not isinstance(plugin(scheduler).factory(), ArrayScheduler):
        raise ConfigError(f"{where}: {scheduler} runs no job arrays here: use group_size")


def parse_machine(name: str, table: Any) -> MachineConfig:
    where = f"machines.{name}"
    check_keys(table, MACHINE_KEYS, where)
    scheduler = table.get("scheduler")
    known = machine_schedulers()
    if scheduler not in known:
        from hpcflow.connectors.plugins import SCHEDULER_GROUP, load_error

        broken = isinstance(scheduler, str) and load_error(SCHEDULER_GROUP, scheduler)
        if broken:
            raise ConfigError(f"{where}.scheduler: {broken}")
        raise ConfigError(f"{where}.scheduler must be one of {', '.join(known)}, not "
                          f"{scheduler!r}")
    host = text(table, "host", where)
    if host is None and any(k in table for k in SSH_KEYS):
        raise ConfigError(f"{where} has SSH settings but no host: add host = \"...\" (or "
                          "remove them to use this machine's own scheduler)")
    allow_new = table.get("allow_new_host_keys", False)
    if not isinstance(allow_new, bool):
        raise ConfigError(f"{where}.allow_new_host_keys must be true or false")
    transport, persist = ssh_transport(table, where)
    if host is not None and table.get("work_root") is None:
        raise ConfigError(f"{where}.work_root is needed for a remote machine: a directory "
                          "on the cluster (visible to its compute nodes) for step directories")
    prepare = table.get("prepare", [])
    if not isinstance(prepare, list) or not all(isinstance(p, str) for p in prepare):
        raise ConfigError(f"{where}.prepare must be a list of shell lines")
    resources = table.get("resources", {})
    if not isinstance(resources, dict):
        raise ConfigError(f"{where}.resources must be a table ([{where}.resources])")
    check_resources(resources, scheduler, where)
    max_jobs = int(number(table, "max_jobs", where, integer=True)) if "max_jobs" in table \
        else 500
    options = table.get("container_options", [])
    if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
        raise ConfigError(f"{where}.container_options must be a list of strings")
    access = table.get("storage_access", "auto")
    if access not in STORAGE_ACCESS:
        raise ConfigError(f"{where}.storage_access must be one of {', '.join(STORAGE_ACCESS)}, "
                          f"not {access!r}")
    grouping = {key: int(number(table, key, where, integer=True))
                for key in ("array_size", "array_throttle", "group_size") if key in table}
    check_grouping(grouping, scheduler, f"[{where}]")
    return MachineConfig(name=name, scheduler=scheduler, host=host, storage_access=access,
                         grouping=grouping,
                         container=text(table, "container", where),
                         container_options=tuple(options),
                         container_python=text(table, "container_python", where) or "python3",
                         user=text(table, "user", where),
                         port=int(number(table, "port", where, integer=True))
                         if "port" in table else None,
                         key_filename=text(table, "key_filename", where),
                         known_hosts=text(table, "known_hosts", where),
                         allow_new_host_keys=allow_new,
                         proxy_jump=text(table, "proxy_jump", where),
                         transport=transport, control_persist=persist,
                         work_root=text(table, "work_root", where),
                         python=text(table, "python", where), prepare=tuple(prepare),
                         resources=dict(resources), max_jobs=max_jobs,
                         submit_per_minute=int(number(table, "submit_per_minute", where,
                                                       integer=True))
                         if "submit_per_minute" in table else None,
                         scheduler_timeout=float(number(table, "scheduler_timeout", where))
                         if "scheduler_timeout" in table else 60.0)


DISPATCHER_KEYS = ("machine", "resources", "task", "python", "known_hosts",
                   "allow_new_host_keys", "max_submissions", "max_parallel_calls", "clean",
                   "min_poll_interval", "max_poll_interval")


def parse_dispatcher(name: str, table: Any) -> DispatcherConfig:
    where = f"dispatchers.{name}"
    check_keys(table, DISPATCHER_KEYS, where)
    machine = table.get("machine")
    if not isinstance(machine, dict) or not machine.get("batch_type"):
        raise ConfigError(f"{where}.machine must be a dpdispatcher machine table with at least "
                          f"batch_type ([{where}.machine])")
    for key in ("resources", "task"):
        if not isinstance(table.get(key, {}), dict):
            raise ConfigError(f"{where}.{key} must be a table ([{where}.{key}])")
    if "group_size" in table.get("resources", {}):
        raise ConfigError(f"{where}.resources.group_size: steps are grouped by their own "
                          "resources_dict's group_size (DispatcherExecutor(resources_dict="
                          "{'group_size': N})); remove it here")
    for key in ("allow_new_host_keys", "clean"):
        if not isinstance(table.get(key, False), bool):
            raise ConfigError(f"{where}.{key} must be true or false")
    return DispatcherConfig(
        name=name, machine=dict(machine), resources=dict(table.get("resources", {})),
        task=dict(table.get("task", {})), python=text(table, "python", where),
        known_hosts=text(table, "known_hosts", where),
        allow_new_host_keys=table.get("allow_new_host_keys", False),
        max_submissions=int(number(table, "max_submissions", where, integer=True))
        if "max_submissions" in table else 100,
        max_parallel_calls=int(number(table, "max_parallel_calls", where, integer=True))
        if "max_parallel_calls" in table else 4,
        clean=table.get("clean", True))


def parse_bohrium(table: Any) -> dict[str, str]:
    check_keys(table, BOHRIUM_KEYS, "bohrium")
    for key, value in table.items():
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise ConfigError(f"bohrium.{key} must be a string")
    return {k: str(v) for k, v in table.items()}


STORAGE_KEYS = ("kind", "root", "bucket", "endpoint", "prefix", "region", "profile",
                "secure", "addressing_style", "verify", "part_size_mb", "max_concurrency",
                "retry_seconds", "content_addressing", "access_key", "secret_key")


def parse_storage(table: Any) -> dict[str, Any]:
    """``[storage]`` as the arguments of its client (``kind`` = "local" or "s3")."""
    table = dict(check_keys(table, STORAGE_KEYS, "storage"))
    if not table:
        return {}
    kind = table.pop("kind", "s3" if "bucket" in table else "local")
    if kind == "local":
        extra = sorted(set(table) - {"root"})
        if extra:
            raise ConfigError(f"storage.{extra[0]} is for kind = \"s3\" (this is kind = "
                              "\"local\")")
        return {"kind": "local", "root": text(table, "root", "storage")} \
            if "root" in table else {"kind": "local"}
    if kind != "s3":
        raise ConfigError(f"storage.kind must be \"local\" or \"s3\", not {kind!r}")
    if "root" in table:
        raise ConfigError("storage.root is for kind = \"local\": S3 storage takes bucket, "
                          "endpoint and prefix")
    if not table.get("bucket"):
        raise ConfigError("storage.bucket is needed for S3 storage")
    for key in ("bucket", "endpoint", "prefix", "region", "profile", "addressing_style",
                "access_key", "secret_key"):
        if key in table:
            text(table, key, "storage")
    for key in ("secure", "content_addressing"):
        if not isinstance(table.get(key, True), bool):
            raise ConfigError(f"storage.{key} must be true or false")
    if not isinstance(table.get("verify", True), bool | str):
        raise ConfigError("storage.verify must be true, false or the path of a CA bundle")
    if ("access_key" in table) != ("secret_key" in table):
        raise ConfigError("storage needs both access_key and secret_key (or neither: then "
                          "the AWS_* variables, an AWS profile or ~/.aws are used)")
    if "part_size_mb" in table:
        size = number(table, "part_size_mb", "storage", integer=True)
        if size < 5:
            raise ConfigError("storage.part_size_mb must be at least 5 (S3's minimum part)")
        table["part_size"] = int(size) << 20
        del table["part_size_mb"]
    if "max_concurrency" in table:
        table["max_concurrency"] = int(number(table, "max_concurrency", "storage",
                                               integer=True))
    if "retry_seconds" in table:
        table["retry_seconds"] = float(number(table, "retry_seconds", "storage"))
    return {"kind": "s3", **table}


def parse_config(data: dict, path: Path | None = None) -> DaemonConfig:
    """A checked ``DaemonConfig`` from the parsed TOML (errors name the key, not the file)."""
    from hpcflow.connectors.plugins import config_sections

    owners = config_sections()
    check_keys(data, ("daemon", "executors", "machines", "dispatchers", "bohrium", "storage",
                      *sorted(owners)), "the config file")
    daemon = check_keys(data.get("daemon", {}),
                         ("log_level", "idle_interval", "backup_interval", "backups",
                          "lease_seconds"), "daemon")
    level = str(daemon.get("log_level", "info")).lower()
    if level not in LOG_LEVELS:
        raise ConfigError(f"daemon.log_level must be one of {', '.join(LOG_LEVELS)}, "
                          f"not {daemon['log_level']!r}")
    idle = float(number(daemon, "idle_interval", "daemon")) if "idle_interval" in daemon \
        else 30.0
    backup_interval = 3600.0
    if "backup_interval" in daemon:  # 0 turns backups off
        backup_interval = float(daemon["backup_interval"] and
                                number(daemon, "backup_interval", "daemon"))
    lease = float(number(daemon, "lease_seconds", "daemon")) if "lease_seconds" in daemon \
        else 30.0
    kept = int(number(daemon, "backups", "daemon", integer=True)) if "backups" in daemon \
        else 3
    executors = check_keys(data.get("executors", {}), ("local",), "executors")
    local = check_keys(executors.get("local", {}),
                        ("parallelism", "min_poll_interval", "max_poll_interval", "preload"),
                        "executors.local")
    parallelism = int(number(local, "parallelism", "executors.local", integer=True)) \
        if "parallelism" in local else None
    preload = module_names(local, "preload", "executors.local")
    machines_table = data.get("machines", {})
    if not isinstance(machines_table, dict):
        raise ConfigError("machines must be a table ([machines.NAME])")
    machines, poll = {}, {LOCAL: read_poll_bounds(local, "executors.local")}
    for name, table in machines_table.items():
        if name == LOCAL or not NAME.match(name):
            raise ConfigError(f"machine name {name!r}: use letters, digits and - (not "
                              f"{LOCAL!r})")
        machines[name] = parse_machine(name, table)
        poll[name] = read_poll_bounds(table, f"machines.{name}", BATCH_POLL)
    for scheduler in machine_schedulers():  # SlurmExecutor() alone: this machine's Slurm
        if scheduler not in machines:
            machines[scheduler] = MachineConfig(name=scheduler, scheduler=scheduler,
                                                implicit=True)
            poll[scheduler] = BATCH_POLL
    dispatchers_table = data.get("dispatchers", {})
    if not isinstance(dispatchers_table, dict):
        raise ConfigError("dispatchers must be a table ([dispatchers.NAME])")
    dispatchers = {}
    for name, table in dispatchers_table.items():
        if name == LOCAL or not NAME.match(name) or name in machines:
            raise ConfigError(f"dispatcher name {name!r}: use letters, digits and - (not "
                              f"{LOCAL!r}, nor the name of a machine)")
        dispatchers[name] = parse_dispatcher(name, table)
        poll[name] = read_poll_bounds(table, f"dispatchers.{name}", BATCH_POLL)
    sections: dict[str, dict[str, Any]] = {}
    for section, kind in sorted(owners.items()):
        tables = data.get(section, {})
        if not isinstance(tables, dict):
            raise ConfigError(f"{section} must be a table ([{section}.NAME])")
        parsed = sections.setdefault(section, {})
        for name, table in tables.items():
            if name == LOCAL or not NAME.match(name) or name in poll:
                raise ConfigError(f"{section} name {name!r}: use letters, digits and - (not "
                                  f"{LOCAL!r}, nor the name of another machine)")
            parsed[name] = kind.parse_section(name, table)
            poll[name] = kind.poll_bounds(parsed[name])
    return DaemonConfig(path=path, log_level=level, idle_interval=idle,
                        backup_interval=backup_interval, backups=kept, lease_seconds=lease,
                        local_parallelism=parallelism, local_preload=preload, poll=poll,
                        machines=machines,
                        dispatchers=dispatchers, bohrium=parse_bohrium(data.get("bohrium", {})),
                        storage=parse_storage(data.get("storage", {})), sections=sections)


def load_config(home: Path) -> DaemonConfig:
    """The config file of ``home`` (the defaults if there is none)."""
    path = config_path(home)
    try:
        # its settings (python, prepare, container, machine dicts) run commands as the user
        check_private_file(path, "the config file")
    except UntrustedPathError as exc:
        raise ConfigError(str(exc)) from None
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        if os.environ.get("HPCFLOW_CONFIG"):
            raise ConfigError(f"HPCFLOW_CONFIG names {path}, which does not exist") from None
        return parse_config({})
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        line = exc.object[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{path} is not UTF-8 text (byte {exc.object[exc.start]:#04x} on "
                          f"line {line}): save it as UTF-8, as TOML requires") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        config = parse_config(data, path)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if "secret_key" in config.storage and path.stat().st_mode & 0o077:
        raise ConfigError(f"{path} holds S3 credentials ([storage] secret_key) but others can "
                          f"read it: chmod 600 {path}")
    if config.bohrium and path.stat().st_mode & 0o077:
        raise ConfigError(f"{path} holds Bohrium credentials ([bohrium]) but others can read "
                          f"it: chmod 600 {path}")
    return config
