"""hpcflow's own executor kinds, registered in the ``hpcflow.executors`` entry-point group
(``connectors/plugins.py``): each says which steps it takes, whether the config file declares
an executor of its name, how to make that executor and where its step directories are read.

- ``local``: this machine's processes (every step without an executor);
- ``batch``: a ``[machines.NAME]`` of the config file, its scheduler over its transport;
- ``step_machine``: a machine the workflow itself describes (dflow's
  ``SlurmRemoteExecutor``, ``RemoteExecutor``), its credentials from the secrets;
- ``dispatcher``: dpdispatcher, a ``[dispatchers.NAME]`` or a ``DispatcherExecutor``'s
  machine dict.

>>> BATCH.placement({"kind": "batch", "scheduler": "slurm", "machine": "hpc",
...                  "resources": {"time": "1:00:00"}})
('hpc', {'time': '1:00:00'})
>>> name, res = DISPATCHER.placement({"kind": "dispatcher", "machine": "dp", "task": {},
...     "python": None, "container": None, "resources": {"group_size": 4, "queue_name": "q"}})
>>> name, res["group_size"], res["dispatcher"]
('dp', 4, {'queue_name': 'q'})
>>> STEP_MACHINE.placement({"kind": "step_machine", "machine": "ssh-slurm-ab12",
...                         "resources": {"extra_directives": ["-N 1"]}})
('ssh-slurm-ab12', {'extra_directives': ['-N 1']})
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hpcflow.connectors.plugins import LOCAL, ExecutorContext

if TYPE_CHECKING:
    from hpcflow.config_file import DaemonConfig
    from hpcflow.connectors.executors.base import Executor
    from hpcflow.connectors.transports.base import Transport


#: The kinds' names, as the author side writes them into a step's executor spec.
BATCH_KIND = "batch"
STEP_MACHINE_KIND = "step_machine"
DISPATCHER_KIND = "dispatcher"


def _resources(wanted: dict[str, Any]) -> dict[str, Any]:
    return dict(wanted.get("resources") or {})


class LocalKind:
    name = LOCAL
    late_logs = False

    def placement(self, wanted: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return LOCAL, {}

    def declares(self, config: DaemonConfig, name: str) -> bool:
        return name == LOCAL

    def declaration(self, wanted: dict[str, Any]) -> tuple[str, str] | None:
        return None

    def make(self, context: ExecutorContext, name: str,
             described: dict[str, Any] | None) -> Executor:
        from hpcflow.connectors.executors.local import LocalExecutor
        from hpcflow.settings import local_parallelism

        slots = (context.local_parallelism or context.config.local_parallelism
                 or local_parallelism())
        return LocalExecutor(context.runs_root, slots, result_keys=context.result_keys,
                             job_finished=context.job_finished,
                             preload=context.config.local_preload)

    def log_transport(self, context: ExecutorContext, name: str,
                      described: dict[str, Any] | None) -> Transport | None:
        return None


class BatchKind:
    name = BATCH_KIND
    late_logs = False

    def placement(self, wanted: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return str(wanted.get("machine") or wanted["scheduler"]), _resources(wanted)

    def declares(self, config: DaemonConfig, name: str) -> bool:
        return name in config.machines

    def declaration(self, wanted: dict[str, Any]) -> tuple[str, str] | None:
        return "machines", self.placement(wanted)[0]

    def make(self, context: ExecutorContext, name: str,
             described: dict[str, Any] | None) -> Executor:
        from hpcflow.connectors.executors.registry import make_batch_executor

        return make_batch_executor(context.config.machines[name], context.home,
                                   context.result_keys)

    def log_transport(self, context: ExecutorContext, name: str,
                      described: dict[str, Any] | None) -> Transport | None:
        from hpcflow.connectors.executors.registry import make_transport

        return make_transport(context.config.machines[name], context.home)


class StepMachineKind:
    """A machine the workflow describes: never declared by the config file."""

    name = STEP_MACHINE_KIND
    late_logs = False

    def placement(self, wanted: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return str(wanted["machine"]), _resources(wanted)

    def declares(self, config: DaemonConfig, name: str) -> bool:
        return False

    def declaration(self, wanted: dict[str, Any]) -> tuple[str, str] | None:
        return None

    def make(self, context: ExecutorContext, name: str,
             described: dict[str, Any] | None) -> Executor:
        from hpcflow.connectors.executors.step_machine import make_step_machine_executor

        return make_step_machine_executor(name, described or {}, context.home,
                                          context.result_keys)

    def log_transport(self, context: ExecutorContext, name: str,
                      described: dict[str, Any] | None) -> Transport | None:
        from hpcflow.connectors.executors.step_machine import step_machine_transport

        return step_machine_transport(name, described or {}, context.home)


class DispatcherKind:
    """dpdispatcher: its jobs' files, the log among them, come back when the job ends."""

    name = DISPATCHER_KIND
    late_logs = True
    what = "dispatcher machine"

    def placement(self, wanted: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        # dpdispatcher's group_size (steps per job) is hpcflow's: steps that agree on all the
        # rest share one Submission and its one job.
        resources = _resources(wanted)
        group_size = resources.pop("group_size", 1)
        return str(wanted["machine"]), {"group_size": group_size, "dispatcher": resources,
                                        "task": wanted.get("task") or {},
                                        "python": wanted.get("python"),
                                        "container": wanted.get("container")}

    def declares(self, config: DaemonConfig, name: str) -> bool:
        return name in config.dispatchers

    def declaration(self, wanted: dict[str, Any]) -> tuple[str, str] | None:
        # a DispatcherExecutor with its own machine dict needs no [dispatchers.NAME]
        return None if wanted.get("machine_dict") is not None else ("dispatchers",
                                                                     str(wanted["machine"]))

    def make(self, context: ExecutorContext, name: str,
             described: dict[str, Any] | None) -> Executor:
        from hpcflow.connectors.executors.registry import make_dispatcher_jobs

        executor: Executor = make_dispatcher_jobs(name, context.config, context.home,
                                                  context.wake_dir, described,
                                                  context.result_keys)
        return executor

    def log_transport(self, context: ExecutorContext, name: str,
                      described: dict[str, Any] | None) -> Transport | None:
        return None


LOCAL_KIND = LocalKind()
BATCH = BatchKind()
STEP_MACHINE = StepMachineKind()
DISPATCHER = DispatcherKind()
