"""Executors by machine: the scheduler (from the plugin registry) and the transport a machine
of the config file gets, and the dpdispatcher executor of a dispatcher machine."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from hpcflow.config_file import DaemonConfig, MachineConfig
from hpcflow.connectors.executors.batch import BatchExecutor
from hpcflow.connectors.schedulers.base import Scheduler
from hpcflow.connectors.transports.base import Transport
from hpcflow.connectors.transports.local import LocalTransport
from hpcflow.errors import HpcflowError
from hpcflow.secrets import ResultKeys, held_credentials

if TYPE_CHECKING:
    from hpcflow.connectors.executors.dispatcher import DispatcherJobs
    from hpcflow.connectors.transports.openssh import OpenSSHTarget

def make_scheduler(name: str) -> Scheduler:
    """The scheduler registered as ``name`` (``hpcflow.schedulers`` entry points)."""
    from hpcflow.connectors.plugins import scheduler

    return scheduler(name).factory()


def make_transport(machine: MachineConfig, home: Path) -> Transport:
    """This machine's processes, one SSH connection to the machine's host, or the user's
    OpenSSH master connection (``hpcflow ssh login``) under ``home``."""
    if machine.host is None:
        return LocalTransport()
    if machine.transport == "openssh":
        from hpcflow.connectors.transports.openssh import OpenSSHTransport

        return OpenSSHTransport(openssh_target(machine, home))
    from hpcflow.connectors.transports.ssh import SSHTarget, SSHTransport

    return SSHTransport(SSHTarget(
        host=machine.host, user=machine.user, port=machine.port,
        key_filename=machine.key_filename, known_hosts=machine.known_hosts,
        allow_new_host_keys=machine.allow_new_host_keys, proxy_jump=machine.proxy_jump))


def openssh_target(machine: MachineConfig, home: Path) -> OpenSSHTarget:
    """Where ``hpcflow ssh login`` and the daemon meet for ``machine``: its master's socket
    under ``home``."""
    from hpcflow.connectors.transports.openssh import OpenSSHTarget, control_path

    assert machine.host is not None
    return OpenSSHTarget(
        machine=machine.name, host=machine.host, user=machine.user, port=machine.port,
        key_filename=machine.key_filename, known_hosts=machine.known_hosts,
        proxy_jump=machine.proxy_jump, control_persist=machine.control_persist,
        control_path=str(control_path(home, machine.name)))


def make_batch_executor(machine: MachineConfig, home: Path,
                        result_keys: ResultKeys | None = None) -> BatchExecutor:
    """The executor for ``machine``: its scheduler over the transport that reaches it."""
    remote = machine.host is not None
    runs_root = home / "runs"
    return BatchExecutor(machine, make_scheduler(machine.scheduler),
                         make_transport(machine, home),
                         work_root=machine.work_root or str(runs_root),
                         python=machine.python or ("python3" if remote else sys.executable),
                         result_keys=result_keys)


def make_dispatcher_jobs(name: str, config: DaemonConfig, home: Path, wake_dir: Path,
                         step_executor: dict | None,
                         result_keys: ResultKeys | None = None) -> DispatcherJobs:
    """The dpdispatcher executor ``name``: a ``[dispatchers.NAME]`` machine, or the machine a
    ``DispatcherExecutor`` stored with ``step_executor`` (its credentials from the secrets)."""
    import importlib.util
    import os

    from hpcflow.connectors.executors.dispatcher import DispatcherJobs
    from hpcflow.connectors.executors.dispatcher_machine import dispatcher_machine
    from hpcflow.secrets import reveal

    # Only looked for here: importing it is import_dpdispatcher's job (it makes files).
    if importlib.util.find_spec("dpdispatcher") is None:
        raise HpcflowError("steps with a DispatcherExecutor need dpdispatcher in the daemon's "
                           "Python: pip install 'hpcflow[dispatcher]'")
    ref = (step_executor or {}).get("secret")
    secrets = reveal(home, ref) if ref and name not in config.dispatchers else None
    machine = dispatcher_machine(name, config, step_executor, home, secrets,
                                 {**os.environ, **held_credentials()})
    return DispatcherJobs(machine, home, wake_dir, result_keys)
