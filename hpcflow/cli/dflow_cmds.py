"""``hpcflow dflow-hook install | remove | status``: the ``.pth`` line behind
``HPCFLOW_AS_DFLOW=1`` (see ``hpcflow.as_dflow``)."""

from __future__ import annotations

import click


@click.group(name="dflow-hook")
def dflow_hook() -> None:
    """The switch that lets any program run dflow code on hpcflow: once installed,
    HPCFLOW_AS_DFLOW=1 PROGRAM ... serves its 'import dflow' from hpcflow."""


@dflow_hook.command()
def install() -> None:
    """Put the one-line .pth file into this Python's site-packages (inert unless
    HPCFLOW_AS_DFLOW is set)."""
    from hpcflow.as_dflow import install_pth

    click.echo(f"installed {install_pth()}: HPCFLOW_AS_DFLOW=1 now serves 'import dflow' "
               "from hpcflow in programs of this Python")


@dflow_hook.command()
def remove() -> None:
    """Remove the .pth file again."""
    from hpcflow.as_dflow import pth_path, remove_pth

    click.echo(f"removed {pth_path()}" if remove_pth() else f"{pth_path()} was not there")


@dflow_hook.command()
def status() -> None:
    """Whether the .pth file is installed, and where."""
    from hpcflow.as_dflow import pth_path

    path = pth_path()
    click.echo(f"installed: {path}" if path.exists() else f"not installed (would be {path})")
