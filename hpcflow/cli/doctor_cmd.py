"""``hpcflow doctor [MACHINE]``: is each machine of the config file ready to run steps?

Checks, in order, stopping a machine at its first failure: the connection (host key,
credentials), the scheduler's commands, the Python that will run the runner (and that it
can import hpcflow's runner, shipped or installed), and the work root (writable). Each
failure says what is wrong and how to fix it.
"""

from __future__ import annotations

import functools
import sys
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import click

VERSION_PROBE = "import sys; print('.'.join(map(str, sys.version_info[:2])))"


class Failed(Exception):
    """One check failed: the message says why and what to do."""


def _check_machine(machine: Any, home: Path) -> list[str]:
    """The checks that passed, in order; raises ``Failed`` at the first that does not."""
    from hpcflow.connectors.executors.registry import make_transport
    from hpcflow.connectors.executors.relay import ship_runner
    from hpcflow.connectors.transports.base import TransportError
    from hpcflow.errors import HpcflowError

    passed: list[str] = []
    where = f"{machine.name} ({machine.host or 'this machine'})"
    transport = make_transport(machine)
    try:
        try:
            transport.run(["true"], timeout=30)
        except (TransportError, HpcflowError) as exc:
            raise Failed(f"cannot reach {where}: {exc}") from None
        passed.append("connection" + (" (host key verified)" if machine.host else ""))
        from hpcflow.connectors.plugins import scheduler

        for command in scheduler(machine.scheduler).probes:
            argv = list(command)
            try:
                done = transport.run(argv, timeout=60)
            except TransportError as exc:
                raise Failed(f"'{' '.join(argv)}' on {where}: {exc}") from None
            if not done.ok:
                said = ((done.stderr or done.stdout).strip().splitlines() or
                        [f"exit {done.returncode}"])[0][:200]
                raise Failed(f"'{' '.join(argv)}' fails on {where} ({said}): install or load "
                             f"the {machine.scheduler} client tools for non-interactive shells "
                             "(e.g. in ~/.bashrc before its interactive-only part)")
        passed.append(f"{machine.scheduler} commands")
        work_root = machine.work_root or str(home / "runs")
        probe = f"{work_root}/.hpcflow-doctor-{uuid.uuid4().hex[:8]}"
        try:
            transport.write_files(probe, {"probe": b"ok"})
        except OSError as exc:
            raise Failed(f"cannot write in work_root {work_root} on {where} ({exc}): create it "
                         "or point machines."
                         f"{machine.name}.work_root at a writable directory") from None
        transport.run(["rm", "-rf", probe])
        passed.append(f"work root {work_root} writable")
        python = machine.python or ("python3" if machine.host else sys.executable)
        version = transport.run([python, "-c", VERSION_PROBE])
        mine = f"{sys.version_info[0]}.{sys.version_info[1]}"
        if not version.ok:
            raise Failed(f"'{python}' does not run on {where}: set machines.{machine.name}.python "
                         "to a Python 3 there")
        if version.stdout.strip() != mine:
            raise Failed(f"{python} on {where} is Python {version.stdout.strip()}, the daemon's "
                         f"is {mine}: steps' code is pickled and needs the same minor version; "
                         f"set machines.{machine.name}.python")
        passed.append(f"{python} is Python {mine}")
        env: list[str] = []
        if machine.host:
            env = ["env", f"PYTHONPATH={ship_runner(transport, work_root, set())}"]
        imported = transport.run([*env, python, "-c", "import hpcflow.daemon.runner"])
        if not imported.ok:
            raise Failed(f"hpcflow's runner does not import with {python} on {where}: "
                         f"{imported.stderr.strip().splitlines()[-1:] or imported.returncode}")
        passed.append("hpcflow runner imports" + (" (shipped)" if machine.host else ""))
        return passed
    finally:
        transport.close()


#: Beyond this, a warning; S3 itself refuses requests signed 15 minutes off.
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
            failure: type[Exception] = Failed) -> bool:
    """Print what ``check`` found, one ``SECTION: ok`` line each, or its ``FAIL`` line;
    whether it passed."""
    try:
        for line in check():
            click.echo(f"{section}: ok  {line}")
    except failure as exc:
        click.echo(f"{section}: FAIL {exc}")
        return False
    return True


@click.command()
@click.argument("machine", required=False)
@click.option("--storage", "storage_only", is_flag=True,
              help="Check only the artifact storage.")
@click.option("--store", "store_only", is_flag=True,
              help="Check only the store (and its backups).")
def doctor(machine: str | None, storage_only: bool, store_only: bool) -> None:
    """Check the store (quick_check, schema, backups), the artifact storage (bucket
    reachable and writable, clock) and MACHINE (or every machine of the config file):
    connection, scheduler commands, work root, Python and hpcflow's runner; say what is
    wrong and how to fix it."""
    from hpcflow.cli.store_cmds import check_store
    from hpcflow.config_file import load_config
    from hpcflow.errors import StoreError
    from hpcflow.settings import home, storage_client

    config = load_config(home())
    bad = 0
    if machine is None and not storage_only:
        bad += not _report("store", lambda: check_store(home(), config.backup_interval),
                           StoreError)
        bad += not _report("home", lambda: _check_home(home(), config.lease_seconds))
        if store_only:
            sys.exit(1 if bad else 0)
    if machine is None:
        bad += not _report("storage", lambda: _check_storage(storage_client()))
        if storage_only:
            sys.exit(1 if bad else 0)
    others = _other_executors(config)
    declared = sorted(n for n, m in config.machines.items() if not m.implicit)
    if machine is None and not declared and not others:
        click.echo("no machines declared in the config file: checking this machine's own "
                   "schedulers")
    names = [machine] if machine else declared or sorted(config.machines)
    if machine and machine not in config.machines and machine not in others:
        from hpcflow.errors import NotFoundError

        raise NotFoundError(f"no machine {machine!r} in the config file "
                            f"({config.path or 'none'}); known: "
                            f"{', '.join(sorted([*config.machines, *others]))}")
    for name in names:
        if name in others:
            continue
        bad += not _report(name, functools.partial(_check_machine, config.machines[name],
                                                   home()))
    from hpcflow.connectors.plugins import ExecutorContext
    from hpcflow.errors import HpcflowError

    checked = sorted(others) if machine is None else [machine] if machine in others else []
    for name in checked:
        context = ExecutorContext(home(), config)
        bad += not _report(name, functools.partial(others[name].checks, context, name),
                           HpcflowError)
    sys.exit(1 if bad else 0)


def _other_executors(config: Any) -> dict[str, Any]:
    """The executors of the config file that their kind checks (``[argo.NAME]``), by name."""
    from hpcflow.connectors.plugins import ChecksReadiness, executor_kinds

    return {name: kind for kind in executor_kinds().values()
            if isinstance(kind, ChecksReadiness)
            for name in config.sections.get(getattr(kind, "section", ""), {})}
