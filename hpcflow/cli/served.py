"""The line the commands that show workflows print on stderr when nothing serves the home
though workflows are live (``hpcflow.daemon.liveness``)."""

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
