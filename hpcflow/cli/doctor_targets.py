"""The checks of one executor, for ``hpcflow doctor``: this machine's processes, a
``[machines.NAME]`` or a ``[dispatchers.NAME]``.

In order, stopping at the first that fails: the connection (a port where no SSH server
answers is said so), the scheduler (:mod:`hpcflow.cli.doctor_schedulers`), the work root
(writable), the Python that will run the runner (the daemon's minor version) and hpcflow's
runner (it imports, shipped or installed).
"""

from __future__ import annotations

import contextlib
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hpcflow.cli.doctor_probe import Failed, Probe, Target, unretried
from hpcflow.cli.doctor_schedulers import DISPATCHER_BATCH, check_scheduler

VERSION_PROBE = "import sys; print('.'.join(map(str, sys.version_info[:2])))"
#: Seconds to wait for a server's first words when deciding whether it speaks SSH.
BANNER_SECONDS = 5.0


def _connect(target: Target) -> str:
    from hpcflow.connectors.transports.base import TransportError
    from hpcflow.errors import HpcflowError

    try:
        target.transport.run(["true"], timeout=30)
    except TransportError as exc:
        why = _not_ssh(target.transport, f"check {target.address_keys} (and HostName, Port "
                       "in ~/.ssh/config)")
        raise Failed(f"cannot reach {target.where}: {why or unretried(exc)}") from None
    except HpcflowError as exc:  # a host key or the credentials: the user must act
        raise Failed(f"cannot reach {target.where}: {exc}") from None
    return "connection (host key verified)"


def _not_ssh(transport: Any, fix: str) -> str | None:
    """Why the SSH server of ``transport`` could not be reached, if the cause is the port:
    nothing listens there, nothing answers, or what answers is no SSH server. None when an
    SSH server answers there (then the transport's own error says what went wrong), or the
    machine is reached through jump hosts."""
    import socket

    settings = getattr(transport, "_settings", None)
    if settings is None:
        return None
    found = settings()
    if found.get("proxy_jump"):
        return None
    host, port = str(found["hostname"]), int(found["port"])
    try:
        conn = socket.create_connection((host, port), timeout=BANNER_SECONDS)
    except socket.gaierror as exc:
        return f"{host} is not a known host name ({exc.strerror}): {fix}"
    except ConnectionRefusedError:
        return f"nothing listens on {host}:{port} (connection refused): {fix}, and that " \
               "sshd runs there"
    except TimeoutError:
        return f"{host}:{port} does not answer (no connection within {BANNER_SECONDS:.0f} " \
               f"s: a firewall, or the wrong host or port): {fix}"
    except OSError as exc:
        return f"cannot connect to {host}:{port} ({exc.strerror or exc}): {fix}"
    with conn:
        conn.settimeout(BANNER_SECONDS)
        first = b""
        try:
            while b"\n" not in first and len(first) < 256:
                chunk = conn.recv(256)
                if not chunk:
                    break
                first += chunk
        except OSError:
            pass
    if first.startswith(b"SSH-"):
        return None
    said = first.decode("ascii", "replace").strip().splitlines()
    answer = f"it answered {said[0][:80]!r}" if said else \
        f"it said nothing within {BANNER_SECONDS:.0f} s"
    return f"{host}:{port} is not an SSH server ({answer}; an SSH server greets with " \
           f"'SSH-2.0-...'): {fix}"


def _check_target(target: Target) -> Iterator[str]:
    """What passed, in order; ``Failed`` at the first check that does not."""
    from hpcflow.connectors.executors.relay import ship_runner

    transport = target.transport
    probe_dir = f"{target.work_root}/.hpcflow-doctor-{uuid.uuid4().hex[:8]}"
    written = False
    try:
        if target.remote:
            yield _connect(target)
        if target.scheduler:
            yield from check_scheduler(target)
        try:
            transport.write_files(probe_dir, {"probe": b"ok"})
            written = True
        except OSError as exc:
            raise Failed(f"cannot write in work_root {target.work_root} on {target.where} "
                         f"({exc}): {target.work_root_fix}") from None
        yield f"work root {target.work_root} writable"
        python = target.python
        version = transport.run([python, "-c", VERSION_PROBE])
        mine = f"{sys.version_info[0]}.{sys.version_info[1]}"
        if not version.ok:
            raise Failed(f"'{python}' does not run on {target.where}: set {target.python_key} "
                         "to a Python 3 there")
        if version.stdout.strip() != mine:
            raise Failed(f"{python} on {target.where} is Python {version.stdout.strip()}, the "
                         f"daemon's is {mine}: steps' code is pickled and needs the same minor "
                         f"version; set {target.python_key}")
        yield f"{python} is Python {mine}"
        env: list[str] = []
        if target.remote:
            shipped = ship_runner(transport, target.work_root if target.keep_runner
                                  else probe_dir, set())
            env = ["env", f"PYTHONPATH={shipped}"]
        imported = transport.run([*env, python, "-c", "import hpcflow.daemon.runner"])
        if not imported.ok:
            raise Failed(f"hpcflow's runner does not import with {python} on {target.where}: "
                         f"{imported.stderr.strip().splitlines()[-1:] or imported.returncode}")
        yield "hpcflow runner imports" + (" (shipped)" if target.remote else "")
    finally:
        if written:
            with contextlib.suppress(OSError):
                transport.run(["rm", "-rf", probe_dir])
        transport.close()


def _machine_target(machine: Any, home: Path, probe: Probe | None = None) -> Target:
    from hpcflow.connectors.executors.registry import make_transport

    key = f"machines.{machine.name}"
    target = Target(
        name=machine.name, where=f"{machine.name} ({machine.host or 'this machine'})",
        transport=make_transport(machine, home), remote=machine.host is not None,
        work_root=machine.work_root or str(home / "runs"),
        python=machine.python or ("python3" if machine.host else sys.executable),
        work_root_fix=f"create it or point {key}.work_root at a writable directory",
        python_key=f"{key}.python", scheduler=machine.scheduler,
        scheduler_key=None if machine.implicit else f"{key}.scheduler",
        address_keys=f"{key}.host and port")
    if probe is not None:
        target.probe = probe
    return target


def check_machine(machine: Any, home: Path, probe: Probe | None = None) -> Iterator[str]:
    """A ``[machines.NAME]`` (or this machine's own scheduler)."""
    return _check_target(_machine_target(machine, home, probe))


def check_local(home: Path, config: Any) -> Iterator[str]:
    """This machine's processes: every step without an executor."""
    from hpcflow.connectors.transports.local import LocalTransport
    from hpcflow.settings import local_parallelism

    slots = config.local_parallelism or local_parallelism()
    yield f"{slots} steps at once"
    yield from _check_target(Target(
        name="local", where="this machine", transport=LocalTransport(), remote=False,
        work_root=str(home / "runs"), python=sys.executable,
        work_root_fix="set HPCFLOW_HOME to a directory of yours", python_key="the daemon's "
        "Python (the one hpcflow runs with)"))


def check_dispatcher(name: str, config: Any, home: Path) -> Iterator[str]:
    """A ``[dispatchers.NAME]``: dpdispatcher, the machine's connection, its batch system's
    commands, its remote_root and its Python, as for a machine."""
    import importlib.util
    import os

    if importlib.util.find_spec("dpdispatcher") is None:  # not imported: it makes files
        raise Failed(f"dpdispatcher is not installed in {sys.executable}: pip install "
                     "'hpcflow[dispatcher]'")
    from importlib.metadata import version

    from hpcflow.connectors.executors.dispatcher_machine import (
        BOHRIUM_CONTEXTS,
        LOCAL_CONTEXTS,
        OPENAPI_CONTEXTS,
        SSH_CONTEXTS,
        dispatcher_machine,
    )
    from hpcflow.connectors.transports.local import LocalTransport
    from hpcflow.secrets import held_credentials

    yield f"dpdispatcher {version('dpdispatcher')}"
    machine = dispatcher_machine(name, config, None, home, None,
                                 {**os.environ, **held_credentials()})
    context = machine.context_type
    if context in BOHRIUM_CONTEXTS or context in OPENAPI_CONTEXTS:
        yield f"{context}: its credentials are set (doctor does not log in to Bohrium)"
        return
    key = f"dispatchers.{name}"
    if context in SSH_CONTEXTS:
        from hpcflow.connectors.transports.ssh import SSHTarget, SSHTransport

        profile = machine.machine_dict.get("remote_profile") or {}
        host = str(profile.get("hostname"))
        transport: Any = SSHTransport(SSHTarget(
            host=host, user=profile.get("username"), port=int(profile.get("port") or 22),
            key_filename=profile.get("key_filename"), known_hosts=machine.known_hosts,
            allow_new_host_keys=machine.allow_new_host_keys,
            password=profile.get("password")))
    elif context in LOCAL_CONTEXTS:
        host, transport = "", LocalTransport()
    else:
        yield f"context_type {context}: not checked by doctor"
        return
    batch = machine.batch_type
    scheduler = DISPATCHER_BATCH.get(batch.lower())
    if scheduler is None:
        yield f"batch_type {batch}: " + ("no scheduler (jobs run as processes)"
                                         if batch.lower() == "shell"
                                         else "its commands are not checked")
    yield from _check_target(Target(
        name=name, where=f"{name} ({host or 'this machine'})", transport=transport,
        remote=bool(host), work_root=str(machine.machine_dict.get("remote_root")),
        python=machine.python,
        work_root_fix=f"create it or point {key}.machine.remote_root at a writable directory",
        python_key=f"{key}.python", scheduler=scheduler,
        scheduler_key=f"{key}.machine.batch_type", batch_type=True, keep_runner=False,
        address_keys=f"{key}.machine.remote_profile's hostname and port"))
