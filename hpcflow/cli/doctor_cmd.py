"""``hpcflow doctor [MACHINE]``: is everything ready to run steps?

The store, the home, the artifact storage and the config file, then each executor: this
machine's processes (``local``); each ``[machines.NAME]`` of the config file (without one,
this machine's schedulers whose commands are on PATH, and it says which it found); each
``[dispatchers.NAME]``; the executors whose kind checks its own (``[argo.NAME]``).

An executor's checks stop at its first failure: the connection (host key, credentials; a
port where no SSH server answers is said so), the scheduler's commands (whose they are: a
Grid Engine ``qstat`` is not PBS's; why they fail: a Slurm client without its
``slurm.conf`` is not a missing Slurm), whether its server answers, the work root (writable),
the Python that will run the runner (and that it imports hpcflow's runner, shipped or
installed). Each failure is one line that says what is wrong and how to fix it.
"""

from __future__ import annotations

import contextlib
import functools
import re
import shlex
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

VERSION_PROBE = "import sys; print('.'.join(map(str, sys.version_info[:2])))"
#: Seconds a scheduler's version or help command may take (Slurm without its slurm.conf
#: retries for a minute, having said why at once), and its job query.
PROBE_SECONDS = 15
QUERY_SECONDS = 60
#: A job name no job has: the scheduler's own query for it shows that its server answers.
NO_SUCH_JOB = "hpcflow-doctor-probe"
#: Seconds to wait for a server's first words when deciding whether it speaks SSH.
BANNER_SECONDS = 5.0


class Failed(Exception):
    """One check failed: the message says why and what to do."""


@dataclass(frozen=True)
class Family:
    """What doctor knows of one scheduler's client tools beyond their plugin: how their
    version or help answer looks (whose is this ``qstat``?) and what their errors mean."""

    title: str
    #: Its daemon that answers the job queries.
    server: str
    #: Matches the line of its tools' version or help answer that names it.
    mark: re.Pattern[str]
    #: (what its tools print, the cause in words); ``{said}`` is the command and the line
    #: that matched, ``{where}`` the machine, ``{file}`` the pattern's first group.
    causes: tuple[tuple[re.Pattern[str], str], ...] = ()
    #: dpdispatcher's ``batch_type`` for it.
    batch_type: str | None = None


def _lines(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.MULTILINE)


FOR_SHELLS = ", for non-interactive shells too (e.g. in ~/.bashrc before its interactive-only part)"
FAMILIES: dict[str, Family] = {
    "slurm": Family("Slurm", "slurmctld", _lines(r"^slurm(?:-wlm)? \d\S*"), (
        (_lines(r"cannot stat file (\S+?):? No such file"),
         "Slurm's client on {where} has no configuration: {file} does not exist ({said}): set "
         "SLURM_CONF to the cluster's slurm.conf (or install it at that path)" + FOR_SHELLS),
        (_lines(r"Could not establish a configuration source|fetch_config|"
                r"resolve_ctls_from_dns_srv"),
         "Slurm's client on {where} has no configuration: no slurm.conf where it looks, and "
         "no DNS SRV record of a configless cluster ({said}): set SLURM_CONF to the cluster's "
         "slurm.conf" + FOR_SHELLS),
        (_lines(r"Unable to contact slurm controller|Zero Bytes were transmitted"),
         "{where} gets no answer from slurmctld ({said}): is it running, and reachable from "
         "there?"),
        (_lines(r"[Mm]unge|[Aa]uthentication"),
         "Slurm on {where} cannot authenticate ({said}): munged must run there, with the "
         "cluster's munge key"),
    ), "Slurm"),
    "sge": Family("Grid Engine", "sge_qmaster",
                  _lines(r"^\s*(?:SGE|OGS(?:/GE)?|UGE|GE) \d\S*.*|^.*\bGrid Engine\b.*"), (
        (_lines(r"SGE_ROOT|SGE_CELL|act_qmaster|cell directory"),
         "Grid Engine's client on {where} has no configuration ({said}): source "
         "$SGE_ROOT/$SGE_CELL/common/settings.sh (it sets SGE_ROOT and SGE_CELL)" + FOR_SHELLS),
        (_lines(r"unable to (?:contact|send message to) qmaster|commlib error"),
         "{where} gets no answer from sge_qmaster ({said}): is it running, and reachable "
         "from there?"),
    ), "SGE"),
    "pbs": Family("PBS", "pbs_server", _lines(r"^\s*pbs_version\s*=\s*\S+"), (
        (_lines(r"pbs\.conf|PBS_CONF_FILE|PBS_EXEC|No default server"),
         "PBS's client on {where} has no configuration ({said}): set PBS_CONF_FILE to the "
         "cluster's pbs.conf (by default /etc/pbs.conf)" + FOR_SHELLS),
        (_lines(r"[Cc]annot connect to server|errno=15010|Communication failure|"
                r"Connection refused"),
         "{where} gets no answer from the PBS server ({said}): is pbs_server running, and "
         "reachable from there?"),
    ), "PBS"),
    "lsf": Family("LSF", "mbatchd",
                  _lines(r"^.*\b(?:Spectrum LSF|Platform LSF|IBM LSF|[Oo]pen[Ll]ava)\b.*"), (
        (_lines(r"lsf\.conf|LSF_ENVDIR|Bad configuration environment"),
         "LSF's client on {where} has no configuration ({said}): source the cluster's "
         "profile.lsf (it sets LSF_ENVDIR)" + FOR_SHELLS),
        (_lines(r"LIM is down|not responding|LIM configuration is not ready"),
         "{where} gets no answer from LSF's daemons ({said}): is LSF running, and is this "
         "host one of its hosts?"),
        (_lines(r"External authentication failed"),
         "LSF on {where} cannot authenticate ({said}): ask the cluster's administrators"),
    ), "LSF"),
}
#: Tools doctor recognises that no scheduler plugin of hpcflow drives.
STRANGERS: dict[str, Family] = {
    "torque": Family("Torque", "pbs_server", _lines(r"^\s*Version:\s*\d\S*\s*$")),
}
#: dpdispatcher's batch types, as the scheduler plugins whose commands they call.
DISPATCHER_BATCH = {"slurm": "slurm", "slurmjobarray": "slurm", "pbs": "pbs", "lsf": "lsf",
                    "sge": "sge"}
#: Runs a command for at most $1 seconds where ``timeout`` (coreutils) exists.
_BOUNDED = ('limit=$1; shift; if command -v timeout >/dev/null 2>&1; then '
            'exec timeout "$limit" "$@"; fi; exec "$@"')
TIMED_OUT = 124


def _shown(argv: list[str] | tuple[str, ...]) -> str:
    """A command as the user would type it (a wrapper's ``sh -c SCRIPT`` left out)."""
    if len(argv) > 3 and argv[0] == "sh" and argv[1] == "-c":
        words = [a for a in argv[4:] if not re.search(r"[\s|$]", a)]
        return " ".join(words) or argv[2]
    return shlex.join(argv)


def _said(done: Any) -> str:
    """The first words a failed command said (stderr first), or its exit status."""
    for text in (done.stderr, done.stdout):
        for line in (text or "").splitlines():
            if line.strip():
                return line.strip()[:200]
    return f"exit {done.returncode}"


class _Probe:
    """Commands doctor runs on one machine, each once, each bounded in time."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self._done: dict[tuple[str, ...], Any] = {}

    def path_of(self, command: str, where: str) -> str | None:
        """Where ``command`` is on the machine's PATH (None: it is not)."""
        done = self.run(["sh", "-c", 'command -v "$1"', "sh", command], where, bounded=False)
        found = done.stdout.strip().splitlines()
        return found[0] if done.ok and found else None

    def run(self, argv: list[str], where: str, seconds: int = PROBE_SECONDS,
            bounded: bool = True) -> Any:
        from hpcflow.connectors.transports.base import TransportError

        key = tuple(argv)
        if key not in self._done:
            try:
                self._done[key] = self.transport.run(
                    ["sh", "-c", _BOUNDED, "sh", str(seconds), *argv] if bounded else argv,
                    timeout=seconds + 30)
            except TransportError as exc:
                raise Failed(f"'{_shown(argv)}' on {where}: {_unretried(exc)}") from None
        return self._done[key]


def _unretried(exc: BaseException) -> str:
    """A transport's error without its note on the next attempt (doctor makes none)."""
    return re.sub(r" \((?:retrying|next try) in \d+ s\)$", "", str(exc))


def _family(name: str) -> Family | None:
    return FAMILIES.get(name) or STRANGERS.get(name)


def _whose(text: str, expected: str) -> tuple[str, str] | None:
    """(family, the line that names it) of a tool's answer, ``expected``'s first."""
    for name in (expected, *FAMILIES, *STRANGERS):
        family = _family(name)
        found = family.mark.search(text) if family else None
        if found:
            return name, found.group(0).strip()[:200]
    return None


def _owner(probe: _Probe, argv: tuple[str, ...], expected: str, where: str
           ) -> tuple[str, str] | None:
    """Whose the command of ``argv`` is: from its answer, else (it failed without naming
    anyone) from what another scheduler's probe of the same command answers."""
    from hpcflow.connectors.plugins import schedulers

    done = probe.run(list(argv), where)
    found = _whose(f"{done.stdout}\n{done.stderr}", expected)
    if found or done.ok:
        return found
    for name, plugin in sorted(schedulers().items()):
        for other in plugin.probes:
            if name != expected and name in FAMILIES and other[0] == argv[0]:
                answer = probe.run(list(other), where)
                mark = FAMILIES[name].mark.search(f"{answer.stdout}\n{answer.stderr}")
                if mark:
                    return name, mark.group(0).strip()[:200]
    return None


def _cause(family: Family | None, argv: list[str] | tuple[str, ...], done: Any,
           where: str) -> str | None:
    """What a failed command's words mean, for the tools of ``family``."""
    text = f"{done.stderr}\n{done.stdout}"
    for pattern, words in family.causes if family else ():
        found = pattern.search(text)
        if found:
            start = text.rfind("\n", 0, found.start()) + 1
            end = text.find("\n", found.end())
            line = text[start:end if end >= 0 else None].strip()[:200]
            return words.format(said=f"'{_shown(argv)}': {line}", where=where,
                                file=found.group(1) if found.groups() else "")
    return None


@dataclass
class Target:
    """One executor to check: where its jobs run, how it is reached, and which settings of
    the config file fix what fails."""

    name: str
    where: str
    transport: Any
    remote: bool
    work_root: str
    python: str
    #: How to point the work root and the Python elsewhere.
    work_root_fix: str
    python_key: str
    scheduler: str | None = None
    #: The setting that names the scheduler, and whether it takes dpdispatcher's batch_type.
    scheduler_key: str | None = None
    batch_type: bool = False
    #: The runner is shipped into the work root and kept there for the jobs (a machine of
    #: the config file), or only into the check's own directory (removed again).
    keep_runner: bool = True
    #: The settings that say where an SSH server of the machine listens.
    address_keys: str = "its host and port"
    probe: _Probe = field(init=False)

    def __post_init__(self) -> None:
        self.probe = _Probe(self.transport)


def _connect(target: Target) -> str:
    from hpcflow.connectors.transports.base import TransportError
    from hpcflow.errors import HpcflowError

    try:
        target.transport.run(["true"], timeout=30)
    except TransportError as exc:
        why = _not_ssh(target.transport, f"check {target.address_keys} (and HostName, Port "
                       "in ~/.ssh/config)")
        raise Failed(f"cannot reach {target.where}: {why or _unretried(exc)}") from None
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


def _scheduler_lines(target: Target) -> Iterator[str]:
    """The scheduler's commands are its own and work, and its server answers."""
    from hpcflow.connectors.executors.registry import make_scheduler
    from hpcflow.connectors.plugins import scheduler

    name = str(target.scheduler)
    family = FAMILIES.get(name)
    title = family.title if family else name
    identity: str | None = None
    for argv in scheduler(name).probes:
        command = argv[0]
        if target.probe.path_of(command, target.where) is None:
            raise Failed(f"'{command}' is not on the PATH on {target.where}: install or load "
                         f"the {title} client tools" + FOR_SHELLS)
        owner = _owner(target.probe, argv, name, target.where)
        if owner and owner[0] != name:
            raise Failed(_not_ours(target, command, title, *owner))
        identity = identity or (owner[1] if owner else None)
        done = target.probe.run(list(argv), target.where)
        if not done.ok:
            raise Failed(_failure(target, argv, done, family, title))
    yield f"{name} commands" + (f" ({identity})" if identity else "")
    query = make_scheduler(name).find_argv(NO_SUCH_JOB)
    done = target.probe.run(query, target.where, QUERY_SECONDS)
    if not done.ok:
        raise Failed(_failure(target, query, done, family, title, QUERY_SECONDS))
    yield f"{family.server if family else name} answers (a query for jobs)"


def _not_ours(target: Target, command: str, title: str, other: str, line: str) -> str:
    """The scheduler's command on PATH belongs to another scheduler's tools."""
    theirs = _family(other)
    head = (f"the {command} on {target.where} is {theirs.title if theirs else other}'s "
            f"({line}), not {title}'s")
    ours = FAMILIES.get(other)
    if target.scheduler_key and ours and not (target.batch_type and not ours.batch_type):
        value = ours.batch_type if target.batch_type else other
        return (f"{head}: if the cluster runs {ours.title}, set {target.scheduler_key} = "
                f"\"{value}\"; else put {title}'s {command} first on PATH" + FOR_SHELLS)
    if ours:
        return (f"{head}: this machine's {ours.title} is checked as {other}; for {title}, put "
                f"its {command} first on PATH" + FOR_SHELLS)
    return f"{head}: hpcflow does not drive {theirs.title if theirs else other}"


def _failure(target: Target, argv: list[str] | tuple[str, ...], done: Any,
             family: Family | None, title: str, seconds: int = PROBE_SECONDS) -> str:
    """Why a scheduler's command failed, and what to do, in one line."""
    shown = _shown(argv)
    cause = _cause(family, argv, done, target.where)
    if cause:
        return cause
    if done.returncode == TIMED_OUT:
        return (f"'{shown}' did not answer within {seconds} s on {target.where} "
                f"({_said(done)})")
    return (f"'{shown}' fails on {target.where} ({_said(done)}): check that the {title} "
            "client tools work there, for non-interactive shells too")


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
            yield from _scheduler_lines(target)
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


def _machine_target(machine: Any, home: Path, probe: _Probe | None = None) -> Target:
    from hpcflow.connectors.executors.registry import make_transport

    key = f"machines.{machine.name}"
    target = Target(
        name=machine.name, where=f"{machine.name} ({machine.host or 'this machine'})",
        transport=make_transport(machine), remote=machine.host is not None,
        work_root=machine.work_root or str(home / "runs"),
        python=machine.python or ("python3" if machine.host else sys.executable),
        work_root_fix=f"create it or point {key}.work_root at a writable directory",
        python_key=f"{key}.python", scheduler=machine.scheduler,
        scheduler_key=None if machine.implicit else f"{key}.scheduler",
        address_keys=f"{key}.host and port")
    if probe is not None:
        target.probe = probe
    return target


def _check_machine(machine: Any, home: Path, probe: _Probe | None = None) -> Iterator[str]:
    """A ``[machines.NAME]`` (or this machine's own scheduler)."""
    return _check_target(_machine_target(machine, home, probe))


def _check_local(home: Path, config: Any) -> Iterator[str]:
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


def _these_schedulers(config: Any) -> tuple[list[str], list[str], _Probe]:
    """The schedulers of this machine worth checking (their command is on PATH and is
    theirs), and those not looked at, each with why; the probe that found out (its answers
    are kept)."""
    from hpcflow.connectors.plugins import scheduler
    from hpcflow.connectors.transports.local import LocalTransport

    probe = _Probe(LocalTransport())
    found: list[str] = []
    skipped: list[str] = []
    for name in sorted(n for n, m in config.machines.items() if m.implicit):
        probes = scheduler(name).probes
        if not probes:
            skipped.append(f"{name} (no command to look for)")
            continue
        command = probes[0][0]
        path = probe.path_of(command, "this machine")
        if path is None:
            skipped.append(f"{name} (no {command} on PATH)")
            continue
        owner = _owner(probe, probes[0], name, "this machine")
        if owner and owner[0] != name:
            theirs = _family(owner[0])
            skipped.append(f"{name} (the {command} on PATH is "
                           f"{theirs.title if theirs else owner[0]}'s: {owner[1]})")
            continue
        found.append(f"{name} ({path})")
    return found, skipped, probe


def _check_dispatcher(name: str, config: Any, home: Path) -> Iterator[str]:
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


#: Clock skew beyond this is a warning; S3 itself refuses requests signed 15 minutes off.
CLOCK_SKEW_WARN = 60.0
CLOCK_SKEW_FAIL = 600.0


def _check_storage(storage: Any) -> list[str]:
    """The storage's checks that passed: reachable (the bucket), writable (an object in,
    back and out again) and, for S3, the clock against the server's."""
    from hpcflow.errors import HpcflowError

    passed: list[str] = []
    check_bucket = getattr(storage, "check_bucket", None)
    try:
        if check_bucket is not None:
            check_bucket()
            passed.append(f"{storage!r} reachable")
        probe_key = f".hpcflow/doctor/{uuid.uuid4().hex}"
        import tempfile

        with tempfile.TemporaryDirectory(prefix="hpcflow-doctor-") as tmp:
            sent = Path(tmp) / "sent"
            sent.write_bytes(uuid.uuid4().bytes * 64)
            storage.upload(probe_key, str(sent))
            storage.download(probe_key, str(Path(tmp) / "back"))
            if (Path(tmp) / "back").read_bytes() != sent.read_bytes():
                raise Failed(f"{storage!r} gave back other bytes than were written")
            storage.delete_prefix(probe_key)
        passed.append("writable (an object written, read back and deleted)")
        skew_of = getattr(storage, "clock_skew", None)
        if skew_of is not None:
            skew = skew_of()
            if abs(skew) > CLOCK_SKEW_FAIL:
                raise Failed(f"this machine's clock is {skew:+.0f} s off the S3 server's: "
                             "synchronise it (chrony, ntpd); S3 refuses requests signed "
                             "15 minutes off")
            note = " (warning: synchronise it)" if abs(skew) > CLOCK_SKEW_WARN else ""
            passed.append(f"clock within {abs(skew):.0f} s of the server's{note}")
    except HpcflowError as exc:
        raise Failed(str(exc)) from None
    except OSError as exc:
        raise Failed(f"{storage!r}: {exc}") from None
    return passed


def _check_home(home: Path, ttl: float) -> list[str]:
    """The home's file system, the store's journal there, and who leads it (a home shared
    between login nodes is safe with the rollback journal and one live leader)."""
    import sqlite3
    import time

    from hpcflow.daemon.fs_kind import home_file_system
    from hpcflow.daemon.leader import LEADER_DIR, current_lease, this_host
    from hpcflow.daemon.store import STORE_FILE

    fs = home_file_system(home)
    lines = [f"file system: {fs.describe()}"]
    if (home / STORE_FILE).exists():
        conn = sqlite3.connect(f"file:{home / STORE_FILE}?mode=ro", uri=True, timeout=10)
        try:
            journal = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
        finally:
            conn.close()
        if fs.shared and journal == "wal":
            raise Failed(f"the store is in WAL mode on {fs.fs_type}, which hosts share: WAL "
                         "is not safe there; stop every hpcflow engine and start one again "
                         "(it switches the store to the rollback journal)")
        lines.append(f"store journal: {journal}")
    lease = current_lease(home / LEADER_DIR)
    if lease is None:
        lines.append("leader: none yet (the first engine to start leads)")
    elif lease.released:
        lines.append(f"leader: none ({lease.describe()} stopped cleanly)")
    else:
        lines.append(f"leader: {lease.describe()}, last beat {time.time() - lease.at:.0f} s "
                     f"ago by its clock; another host takes over {ttl:.0f} s after its last "
                     f"beat; this host is {this_host()}")
    lines.append("safe: " + ("one leader host writes the store; other hosts send their "
                             "submissions and requests through inbox/" if fs.shared else
                             "this home is on a local file system"))
    return lines


def _report(section: str, check: Callable[[], Iterable[str]],
            failure: type[Exception] | tuple[type[Exception], ...] = Failed) -> bool:
    """Print what ``check`` found, one ``SECTION: ok`` line each, or its ``FAIL`` line;
    whether it passed."""
    try:
        for line in check():
            click.echo(f"{section}: ok  {line}")
    except failure as exc:
        click.echo(f"{section}: FAIL {' '.join(str(exc).split())}")
        return False
    return True


def _executor_failures() -> tuple[type[Exception], ...]:
    """What an executor's check may raise that is one line for the user: its own verdict,
    hpcflow's errors (a host key, credentials, a dispatcher machine's settings) and the
    system's (a machine that drops the connection half way)."""
    from hpcflow.errors import HpcflowError

    return (Failed, HpcflowError, OSError)


@click.command()
@click.argument("machine", required=False)
@click.option("--storage", "storage_only", is_flag=True,
              help="Check only the artifact storage.")
@click.option("--store", "store_only", is_flag=True,
              help="Check only the store (and its backups).")
def doctor(machine: str | None, storage_only: bool, store_only: bool) -> None:
    """Check the store (quick_check, schema, backups), the artifact storage (bucket
    reachable and writable, clock), the config file, and MACHINE or every executor: this
    machine's processes, each machine and dispatcher of the config file (without one, this
    machine's schedulers whose commands are on PATH): connection, scheduler commands and
    server, work root, Python and hpcflow's runner; say what is wrong and how to fix it."""
    import logging

    from hpcflow.cli.store_cmds import check_store
    from hpcflow.config_file import ConfigError, config_path, load_config, parse_config
    from hpcflow.errors import StoreError
    from hpcflow.settings import home, storage_client

    # paramiko logs a failed handshake with its traceback: doctor says it in one line
    logging.getLogger("paramiko").setLevel(logging.CRITICAL)
    everything = machine is None and not storage_only and not store_only
    try:
        config = load_config(home())
        broken: ConfigError | None = None
    except ConfigError as exc:
        if machine is not None or storage_only:
            raise  # nothing to check without it: one line, as from every command
        config, broken = parse_config({}), exc
    bad = 0
    if machine is None and not storage_only:
        bad += not _report("store", lambda: check_store(home(), config.backup_interval),
                           StoreError)
        bad += not _report("home", lambda: _check_home(home(), config.lease_seconds))
        if store_only:
            sys.exit(1 if bad else 0)
    if broken is not None:
        click.echo(f"config: FAIL {broken} (the storage and the executors are not checked "
                   "until it loads)")
        sys.exit(1)
    if everything:
        path = config_path(home())
        click.echo(f"config: ok  {path}" if config.path else
                   f"config: ok  no config file ({path}): the defaults")
    if machine is None:
        bad += not _report("storage", lambda: _check_storage(storage_client()))
        if storage_only:
            sys.exit(1 if bad else 0)
    bad += _check_executors(machine, config, home())
    sys.exit(1 if bad else 0)


def _check_executors(only: str | None, config: Any, home: Path) -> int:
    """Check every executor (or ``only``); how many failed."""
    from hpcflow.connectors.plugins import LOCAL, ExecutorContext
    from hpcflow.errors import HpcflowError, NotFoundError

    failures = _executor_failures()
    others = _other_executors(config)
    declared = sorted(n for n, m in config.machines.items() if not m.implicit)
    known = [LOCAL, *sorted(config.machines), *sorted(config.dispatchers), *sorted(others)]
    if only is not None and only not in known:
        raise NotFoundError(f"no machine {only!r} in the config file "
                            f"({config.path or 'none'}); known: {', '.join(known)}")
    bad = 0
    if only in (None, LOCAL):
        bad += not _report(LOCAL, functools.partial(_check_local, home, config), failures)
    if only is None and not declared:
        found, skipped, probe = _these_schedulers(config)
        click.echo(f"schedulers: {'no machines in the config file: ' if config.path else ''}"
                   f"found on PATH {', '.join(found) or 'none'}; not looked at: "
                   f"{', '.join(skipped) or 'none'}")
        for entry in found:
            name = entry.split(" ", 1)[0]
            bad += not _report(name, functools.partial(_check_machine, config.machines[name],
                                                       home, probe), failures)
    for name in declared if only is None else [only] if only in config.machines else []:
        bad += not _report(name, functools.partial(_check_machine, config.machines[name],
                                                   home), failures)
    for name in sorted(config.dispatchers) if only is None else \
            [only] if only in config.dispatchers else []:
        bad += not _report(name, functools.partial(_check_dispatcher, name, config, home),
                           failures)
    for name in sorted(others) if only is None else [only] if only in others else []:
        context = ExecutorContext(home, config)
        bad += not _report(name, functools.partial(others[name].checks, context, name),
                           HpcflowError)
    return bad


def _other_executors(config: Any) -> dict[str, Any]:
    """The executors of the config file that their kind checks (``[argo.NAME]``), by name."""
    from hpcflow.connectors.plugins import ChecksReadiness, executor_kinds

    return {name: kind for kind in executor_kinds().values()
            if isinstance(kind, ChecksReadiness)
            for name in config.sections.get(getattr(kind, "section", ""), {})}
