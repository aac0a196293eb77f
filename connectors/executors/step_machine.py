"""Machines that a workflow describes instead of the config file: dflow's
``SlurmRemoteExecutor(host=...)`` and ``RemoteExecutor(host=...)`` (Slurm jobs, or plain
processes, over SSH) and ``ContainerExecutor`` (processes in a container on this machine).

The step's executor spec (``{"kind": "step_machine", ...}``, written by
``hpcflow.dflow_executors``) carries the machine's settings and, for a password, only the
reference of its secret (``hpcflow.secrets``). From them the daemon builds a ``MachineConfig``
and the usual ``BatchExecutor``: the same job scripts, polling, relaying of artifacts and
shipped runner as a machine of the config file. Host keys are verified against the daemon
user's ``~/.ssh/known_hosts`` (an unknown key is refused: nothing is trusted on first use).

A work root under ``~`` (dflow's default workdir) is resolved on the machine the first time
the executor is asked for room, never while the daemon records a job.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from hpcflow.config_file import MachineConfig
from hpcflow.connectors.executors.base import JobSpec
from hpcflow.connectors.executors.batch import BatchExecutor
from hpcflow.connectors.transports.base import Transport, TransportError
from hpcflow.connectors.transports.local import LocalTransport
from hpcflow.errors import HpcflowError
from hpcflow.secrets import ResultKeys

log = logging.getLogger("hpcflow.engine")



def machine_config(name: str, spec: dict[str, Any], runs_root: Path) -> MachineConfig:
    """The machine a step's executor spec describes (no credential in it).

    >>> m = machine_config("x", {"scheduler": "slurm", "host": "h", "port": 2222,
    ...                          "user": "u", "work_root": "/w"}, Path("/runs"))
    >>> m.host, m.port, m.user, m.work_root, m.python
    ('h', 2222, 'u', '/w', None)
    >>> machine_config("c", {"scheduler": "shell", "container": "docker",
    ...                      "container_kind": "docker"}, Path("/runs")).work_root
    '/runs'
    """
    return MachineConfig(
        name=name, scheduler=str(spec["scheduler"]), host=spec.get("host"),
        user=spec.get("user"), port=spec.get("port"), key_filename=spec.get("key_filename"),
        work_root=spec.get("work_root") or str(runs_root), python=spec.get("python"),
        prepare=tuple(spec.get("prepare") or ()), container=spec.get("container"),
        container_options=tuple(spec.get("container_options") or ()),
        container_python=spec.get("container_python") or "python3",
        container_kind=spec.get("container_kind") or "apptainer",
        max_jobs=int(spec.get("max_jobs") or 500))


def step_transport(machine: MachineConfig, password: str | None) -> Transport:
    if machine.host is None:
        return LocalTransport()
    from hpcflow.connectors.transports.ssh import SSHTarget, SSHTransport

    return SSHTransport(SSHTarget(host=machine.host, user=machine.user, port=machine.port,
                                  key_filename=machine.key_filename, password=password))


class StepMachineExecutor(BatchExecutor):
    """A ``BatchExecutor`` whose work root may start with ``~``: the machine's home."""

    _home_error: HpcflowError | None = None

    def free_slots(self) -> int:
        if self.work_root.startswith("~"):
            try:
                self._resolve_home()
            except TransportError as exc:
                log.warning("cannot reach %s to find its home directory (%s): trying again "
                            "later", self.name, exc)
                return 0
            except HpcflowError as exc:  # an untrusted host key, refused credentials
                self._home_error = exc  # the steps fail with it when submitted
        return super().free_slots()

    def _resolve_home(self) -> None:
        done = self.transport.run(["sh", "-c", 'printf "%s\\n" "$HOME"'])
        home = done.stdout.strip()
        if not done.ok or not home.startswith("/"):
            raise HpcflowError(f"cannot find the home directory on {self.name} for the "
                               f"workdir {self.work_root!r}: {done.stderr.strip()[:200]}")
        self.work_root = home.rstrip("/") + self.work_root[1:]
        self._home_error = None

    def submit(self, job: JobSpec) -> str:
        if self._home_error is not None:
            raise self._home_error
        return super().submit(job)

    def submit_pack(self, pack_name: str, members: list[JobSpec]) -> str:
        if self._home_error is not None:
            raise self._home_error
        return super().submit_pack(pack_name, members)


def step_machine_transport(name: str, spec: dict[str, Any], home: Path) -> Transport:
    """A connection to the machine ``spec`` describes (to read a step's log)."""
    return make_step_machine_executor(name, spec, home).transport


def make_step_machine_executor(name: str, spec: dict[str, Any], home: Path,
                               result_keys: ResultKeys | None = None) -> StepMachineExecutor:
    """The executor of the machine that ``spec`` (a step's executor) describes."""
    from hpcflow.connectors.executors.registry import make_scheduler
    from hpcflow.secrets import reveal

    machine = machine_config(name, spec, home / "runs")
    password = reveal(home, spec["secret"]).get("password") if spec.get("secret") else None
    python = machine.python or ("python3" if machine.host else sys.executable)
    return StepMachineExecutor(machine, make_scheduler(machine.scheduler),
                               step_transport(machine, password),
                               work_root=str(machine.work_root), python=python,
                               result_keys=result_keys)

