"""The lines the commands that show workflows print on stderr when nothing serves the home
though workflows are live (``hpcflow.daemon.liveness``), or when the engine cannot reach a
machine (``hpcflow.daemon.reach``)."""

from __future__ import annotations

from pathlib import Path

import click


def unserved_note(home: Path) -> str | None:
    """The line saying nothing serves ``home`` though workflows are live, if so."""
    from hpcflow.daemon import client
    from hpcflow.daemon.liveness import unserved_note as note
    from hpcflow.settings import config

    return note(home, client.store_for(home).count_live_workflows(),
                bool(config.get("engine_autostart", True)))


def say_if_unserved(home: Path) -> None:
    """On stderr: nothing serves ``home`` though workflows are live (and how to fix it)."""
    line = unserved_note(home)
    if line:
        click.echo(line, err=True)


def unreachable_lines(status: dict) -> list[str]:
    """One line per machine the engine cannot reach, from its status file's data (the
    reason of an OpenSSH machine names the command that logs in again)."""
    from hpcflow.cli import render

    return [f"machine {name} unreachable since {render.when(info.get('since'))}: "
            f"{info.get('reason')}"
            for name, info in sorted((status.get("unreachable") or {}).items())]


def say_if_unreachable(home: Path) -> None:
    """On stderr: the machines the running engine cannot reach (steps there wait)."""
    from hpcflow.daemon.engine import engine_pid, read_status

    if engine_pid(home) is None:
        return
    for line in unreachable_lines(read_status(home) or {}):
        click.echo(f"hpcflow: {line}", err=True)
