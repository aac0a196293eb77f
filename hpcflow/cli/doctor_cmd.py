"""``hpcflow doctor [MACHINE]``: is each machine of the config file ready to run steps?

Checks, in order, stopping a machine at its first failure: the connection (host key,
credentials), the scheduler's commands, the Python that will run the runner (and that it
can import hpcflow's runner, shipped or installed), and the work root (writable). Each
failure says what is wrong and how to fix it.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

import click

#: A harmless command per scheduler that fails when its client tools are missing.
SCHEDULER_PROBES = {
    "slurm": [["sbatch", "--version"], ["squeue", "--version"]],
    "sge": [["qstat", "-help"]],
    "pbs": [["qstat", "--version"]],
    "lsf": [["bjobs", "-V"]],
}


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
        for argv in SCHEDULER_PROBES.get(machine.scheduler, []):
            done = transport.run(argv, timeout=60)
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


@click.command()
@click.argument("machine", required=False)
def doctor(machine: str | None) -> None:
    """Check MACHINE (or every machine of the config file): connection, scheduler commands,
    work root, Python and hpcflow's runner; say what is wrong and how to fix it."""
    from hpcflow.config_file import load_config
    from hpcflow.settings import home

    config = load_config(home())
    declared = sorted(n for n, m in config.machines.items() if not m.implicit)
    if machine is None and not declared:
        click.echo("no machines declared in the config file: checking this machine's own "
                   "schedulers")
    names = [machine] if machine else declared or sorted(config.machines)
    if machine and machine not in config.machines:
        from hpcflow.errors import NotFoundError

        raise NotFoundError(f"no machine {machine!r} in the config file "
                            f"({config.path or 'none'}); known: "
                            f"{', '.join(sorted(config.machines))}")
    bad = 0
    for name in names:
        try:
            for line in _check_machine(config.machines[name], home()):
                click.echo(f"{name}: ok  {line}")
        except Failed as exc:
            bad += 1
            click.echo(f"{name}: FAIL {exc}")
    sys.exit(1 if bad else 0)
