"""The plugin registry: every executor kind and every scheduler, found through entry points.

A scheduler is one module: its ``Scheduler`` (render, submit, poll, cancel, each answer
parsed from the tool's recorded output), its resource names, the harmless commands that show
its client tools work (``doctor``), and a ``SCHEDULER`` object that names them, registered
in the ``hpcflow.schedulers`` entry-point group. An executor kind (where and how a step's
job runs: this machine, a machine of the config file, a machine a workflow describes,
dpdispatcher, ...) is an ``ExecutorKind`` in the ``hpcflow.executors`` group. Nothing
outside this registry and the kinds themselves names a kind: placement, the service, logs,
the config file and ``doctor`` ask the registry.

Entry points are how installed packages announce plugins (AiiDA's and Snakemake's way): a
third-party scheduler is a package with one entry point, no edit of hpcflow's code.

>>> scheduler("slurm").name, "partition" in scheduler("slurm").resources
('slurm', True)
>>> sorted(machine_schedulers())
['lsf', 'pbs', 'sge', 'slurm']
>>> executor_kind("batch").name
'batch'
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from hpcflow.errors import HpcflowError

log = logging.getLogger("hpcflow")

if TYPE_CHECKING:
    from hpcflow.config_file import DaemonConfig, PollBounds
    from hpcflow.connectors.executors.base import Executor, JobRecord
    from hpcflow.connectors.schedulers.base import Scheduler
    from hpcflow.connectors.transports.base import Transport
    from hpcflow.secrets import ResultKeys

SCHEDULER_GROUP = "hpcflow.schedulers"
EXECUTOR_GROUP = "hpcflow.executors"
#: The executor every step without one runs on: this machine's processes.
LOCAL = "local"


class PluginError(HpcflowError):
    """A plugin is missing, or a registered one cannot be loaded."""


@dataclass(frozen=True)
class SchedulerPlugin:
    """What hpcflow needs to know of one scheduler."""

    name: str
    #: Makes the scheduler (its class, usually).
    factory: Callable[[], Scheduler]
    #: The resource names a step may give it (the author side's ``SlurmExecutor(...)``
    #: keywords; ``extra_directives`` and ``group_size`` come on top for every scheduler).
    resources: tuple[str, ...]
    #: A machine of the config file may name it (``shell``, detached processes, is only for
    #: machines a workflow describes).
    for_machines: bool = True
    #: Harmless commands that fail when the client tools are missing (``doctor``).
    probes: tuple[tuple[str, ...], ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class ExecutorContext:
    """What a kind may use to make an executor: the daemon's home, config and keys."""

    home: Path
    config: DaemonConfig
    result_keys: ResultKeys | None = None
    #: Slots of the local executor (``hpcflow daemon run --parallelism``), else the config's.
    local_parallelism: int | None = None
    #: Tells the engine (from any thread) that a job of the named executor finished: it
    #: wakes and polls that executor at once, as a finished marker in the wake directory
    #: makes it (for executors that learn of finished jobs some other way).
    job_finished: Callable[[str], None] | None = None

    @property
    def runs_root(self) -> Path:
        return self.home / "runs"

    @property
    def wake_dir(self) -> Path:
        from hpcflow.daemon.engine import WAKE_DIR

        return self.home / WAKE_DIR


class ExecutorKind(Protocol):
    """One kind of executor. ``described`` is the step's executor spec as stored with the
    workflow (``Step(executor=...).to_spec()``), for executors the config file does not
    declare."""

    name: str
    #: Its jobs' logs reach this machine only when they end (dpdispatcher brings them back).
    late_logs: bool

    def placement(self, wanted: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """(executor name, resources) for a step whose spec asks for ``wanted`` (pure)."""

    def declares(self, config: DaemonConfig, name: str) -> bool:
        """The config file declares an executor ``name`` of this kind."""

    def declaration(self, wanted: dict[str, Any]) -> tuple[str, str] | None:
        """(table of the config file, name) that a step asking for ``wanted`` needs declared
        (checked at submission), or None when the workflow itself describes the machine."""

    def make(self, context: ExecutorContext, name: str,
             described: dict[str, Any] | None) -> Executor:
        """The executor ``name`` (the service keeps one per name)."""

    def log_transport(self, context: ExecutorContext, name: str,
                      described: dict[str, Any] | None) -> Transport | None:
        """Where the executor's step directories can be read (a step's log); None: on this
        machine, as plain files."""


@cache
def _entry_points(group: str) -> dict[str, EntryPoint]:
    """The plugins registered in ``group``, by name, not loaded yet."""
    found = {point.name: point for point in entry_points(group=group)}
    if not found:
        raise PluginError(f"no {group} plugins are registered: hpcflow is not installed "
                          "(pip install hpcflow, or pip install -e . in a checkout)")
    return found


#: Each plugin loaded once: the object it registered, or why it cannot be loaded.
_loaded: dict[tuple[str, str], Any] = {}


def _plugin(group: str, name: str) -> Any:
    """The plugin ``name`` of ``group``, loaded the first time it is asked for (None when no
    package registers it); a broken one is a one-line error that names it."""
    point = _entry_points(group).get(name)
    if point is None:
        return None
    key = (group, name)
    if key not in _loaded:
        try:
            _loaded[key] = point.load()
        except Exception as exc:  # whatever a third-party module raises on import
            _loaded[key] = PluginError(
                f"the {group} plugin {name!r} ({point.value}) cannot be loaded: "
                f"{type(exc).__name__}: {exc}: repair or uninstall the package that "
                "provides it")
    found = _loaded[key]
    if isinstance(found, PluginError):
        raise found
    return found


def load_error(group: str, name: str) -> PluginError | None:
    """Why the plugin ``name`` registered in ``group`` cannot be loaded; None when it loads
    or no package registers it."""
    try:
        _plugin(group, name)
    except PluginError as exc:
        return exc
    return None


def _loadable(group: str) -> dict[str, Any]:
    """Every plugin of ``group`` that loads. A broken third-party plugin is left out with a
    warning (once), so that it stops only the workflows that need it."""
    found = {}
    for name in _entry_points(group):
        warned = isinstance(_loaded.get((group, name)), PluginError)
        try:
            found[name] = _plugin(group, name)
        except PluginError as exc:
            if not warned:
                log.warning("hpcflow: warning: %s; it is skipped", exc)
    return found


def schedulers() -> dict[str, SchedulerPlugin]:
    """Every scheduler that loads."""
    return _loadable(SCHEDULER_GROUP)


def executor_kinds() -> dict[str, ExecutorKind]:
    """Every executor kind that loads."""
    return _loadable(EXECUTOR_GROUP)


def scheduler(name: str) -> SchedulerPlugin:
    found: SchedulerPlugin | None = _plugin(SCHEDULER_GROUP, name)
    if found is None:
        raise PluginError(f"unknown scheduler {name!r} (known: "
                          f"{', '.join(sorted(schedulers()))})")
    return found


def machine_schedulers() -> Sequence[str]:
    """The schedulers a ``[machines.NAME]`` table may name, in a stable order."""
    return tuple(sorted(n for n, p in schedulers().items() if p.for_machines))


def executor_kind(kind: str) -> ExecutorKind:
    found: ExecutorKind | None = _plugin(EXECUTOR_GROUP, kind)
    if found is None:
        raise PluginError(f"unknown executor kind {kind!r} (known: "
                          f"{', '.join(sorted(executor_kinds()))}): is the plugin that "
                          "provides it installed where the daemon runs?")
    return found


def declared(config: DaemonConfig, name: str) -> bool:
    """Whether a kind declares an executor ``name`` (``local``, or an entry of the config
    file): then no workflow's description of it is needed."""
    return any(kind.declares(config, name) for kind in executor_kinds().values())


def kind_for(name: str, config: DaemonConfig, described: dict[str, Any] | None
             ) -> ExecutorKind:
    """The kind of the executor called ``name``: the one whose config section declares it,
    else the kind its workflow described (a machine a ``SlurmRemoteExecutor`` names, a
    ``DispatcherExecutor``'s machine)."""
    if name == LOCAL:
        return executor_kind(LOCAL)
    for kind in executor_kinds().values():
        if kind.declares(config, name):
            return kind
    if described and described.get("kind"):
        return executor_kind(str(described["kind"]))
    raise HpcflowError(
        f"no machine {name!r} in the config file "
        f"({config.path or 'none: $HPCFLOW_HOME/config.toml'}): declare it as "
        f"[machines.{name}]")


@runtime_checkable
class OwnsConfigSection(Protocol):
    """Optional for a kind: a table of the config file of its own (``[argo.NAME]``), each
    entry an executor of that name."""

    section: str

    def parse_section(self, name: str, table: Any) -> Any:
        """The checked entry ``[SECTION.NAME]`` (``ConfigError`` naming the key if not)."""

    def poll_bounds(self, parsed: Any) -> PollBounds:
        """How often the executor of that entry is polled."""


@runtime_checkable
class ClaimsSteps(Protocol):
    """Optional for a kind: steps that name no executor it takes, as the config says (an
    Argo cluster with ``images = true`` takes every step whose template has an image)."""

    def claims(self, config: DaemonConfig, template: dict[str, Any]) -> dict[str, Any] | None:
        """The executor spec such a step of ``template`` gets, or None."""


@runtime_checkable
class ChecksTemplates(Protocol):
    """Optional for a kind: what it cannot run, said at submission rather than when the
    step's job is made (Argo runs container steps only)."""

    def template_problem(self, template: dict[str, Any]) -> str | None:
        """Why a step of ``template`` cannot run on this kind (one clause), or None."""


@runtime_checkable
class ReadsLogs(Protocol):
    """Optional for a kind: a step's log is not a file of its step directory (it is read
    through the executor's own service)."""

    def read_log(self, context: ExecutorContext, name: str, job: JobRecord) -> str | None:
        """The log of ``job``, None when there is none."""


@runtime_checkable
class ChecksReadiness(Protocol):
    """Optional for a kind: ``hpcflow doctor NAME`` for its executors."""

    def checks(self, context: ExecutorContext, name: str) -> Iterator[str]:
        """What passed, in order; an ``HpcflowError`` at the first check that fails."""


def config_sections() -> dict[str, OwnsConfigSection]:
    """The config file's tables that executor kinds own, by table name."""
    return {kind.section: kind for kind in executor_kinds().values()
            if isinstance(kind, OwnsConfigSection)}


def placement(spec: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """(executor name, resources) a leaf step's spec asks for: ``local`` without one."""
    wanted = (spec or {}).get("executor") or {}
    if not wanted.get("kind"):
        return LOCAL, {}
    return executor_kind(str(wanted["kind"])).placement(wanted)
