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

import functools
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import click

from hpcflow.cli.doctor_probe import Failed
from hpcflow.cli.doctor_schedulers import these_schedulers
from hpcflow.cli.doctor_storage import check_home, check_storage
from hpcflow.cli.doctor_targets import check_dispatcher, check_local, check_machine


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
        bad += not _report("home", lambda: check_home(home(), config.lease_seconds))
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
        bad += not _report("storage", lambda: check_storage(storage_client()))
        if storage_only:
            sys.exit(1 if bad else 0)
    bad += _check_executors(machine, config, home())
    sys.exit(1 if bad else 0)


def _check_executors(only: str | None, config: Any, home: Path) -> int:
    """Check every executor (or ``only``); how many failed."""
    from hpcflow.config_file import config_path
    from hpcflow.connectors.plugins import LOCAL, ExecutorContext
    from hpcflow.errors import HpcflowError, NotFoundError

    failures = _executor_failures()
    others = _other_executors(config)
    declared = sorted(n for n, m in config.machines.items() if not m.implicit)
    known = [LOCAL, *sorted(config.machines), *sorted(config.dispatchers), *sorted(others)]
    if only is not None and only not in known:
        where = (f"in the config file ({config.path})" if config.path
                 else f"(there is no config file: {config_path(home)})")
        raise NotFoundError(f"no machine {only!r} {where}; known: {', '.join(known)}")
    bad = 0
    if only in (None, LOCAL):
        bad += not _report(LOCAL, functools.partial(check_local, home, config), failures)
    if only is None and not declared:
        found, skipped, probe = these_schedulers(config)
        seen = f"found on PATH {', '.join(found)}" if found else "none found on PATH"
        unseen = f"; not looked at: {', '.join(skipped)}" if skipped else ""
        click.echo(f"schedulers: {'no machines in the config file: ' if config.path else ''}"
                   f"{seen}{unseen}")
        for entry in found:
            name = entry.split(" ", 1)[0]
            bad += not _report(name, functools.partial(check_machine, config.machines[name],
                                                       home, probe), failures)
    for name in declared if only is None else [only] if only in config.machines else []:
        bad += not _report(name, functools.partial(check_machine, config.machines[name],
                                                   home), failures)
    for name in sorted(config.dispatchers) if only is None else \
            [only] if only in config.dispatchers else []:
        bad += not _report(name, functools.partial(check_dispatcher, name, config, home),
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
