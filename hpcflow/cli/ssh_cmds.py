"""``hpcflow ssh login | logout MACHINE``: the user's own OpenSSH master connection to a
machine with ``transport = "openssh"`` (sites that ask for a one-time code), which the daemon
then runs every command through (``connectors/transports/openssh.py``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click


def _home() -> Path:
    from hpcflow.settings import home

    return home()


def _fail(message: str) -> None:
    click.echo(f"hpcflow: {message}", err=True)
    sys.exit(1)


def _target(home: Path, name: str) -> object:
    """The OpenSSH target of machine ``name`` of the config file (one line otherwise)."""
    from hpcflow.config_file import config_path, load_config
    from hpcflow.connectors.executors.registry import openssh_target

    machines = load_config(home).machines
    machine = machines.get(name)
    if machine is None:
        ssh = sorted(n for n, m in machines.items() if m.transport == "openssh")
        _fail(f"no machine {name!r} in {config_path(home)}"
              + (f" (machines with transport = \"openssh\": {', '.join(ssh)})" if ssh else
                 ": declare it in [machines." + name + "] with host and "
                 "transport = \"openssh\""))
    assert machine is not None
    if machine.host is None or machine.transport != "openssh":
        _fail(f"machine {name} is not reached with OpenSSH ("
              + ("it is this machine" if machine.host is None else "transport = \"paramiko\"")
              + f"): set host and transport = \"openssh\" in [machines.{name}] of "
              f"{config_path(home)} to log in with ssh")
    return openssh_target(machine, home)


@click.group()
def ssh() -> None:
    """Log in to a machine with transport = "openssh" (a key plus a one-time code)."""


@ssh.command(name="login")
@click.argument("machine")
def ssh_login(machine: str) -> None:
    """Log in to MACHINE once, answering its prompts (a one-time code); the daemon runs its
    commands through this connection until it ends."""
    from hpcflow.connectors.transports.openssh import (
        OpenSSHTarget,
        login_argv,
        master_alive,
        private_control_dir,
    )
    from hpcflow.daemon.engine import wake

    home = _home()
    target = _target(home, machine)
    assert isinstance(target, OpenSSHTarget)
    private_control_dir(home)
    if not master_alive(target):
        # a master killed without a goodbye leaves its socket: ssh -M would refuse it
        if os.path.lexists(target.control_path):
            os.unlink(target.control_path)
        code = subprocess.run(login_argv(target)).returncode
        if code != 0 or not master_alive(target):
            where = target.known_hosts or "~/.ssh/known_hosts"
            _fail(f"login to {machine} ({target.host}) failed (ssh exit status {code}; ssh "
                  f"said why above). A host key is checked against {where}: an unknown "
                  "or changed one is refused, never added")
        click.echo(f"logged in to {machine} ({target.host}): the daemon runs its commands "
                   "through this connection until it ends (idle for "
                   f"{target.control_persist}, or `hpcflow ssh logout {machine}`)")
    else:
        click.echo(f"already logged in to {machine} ({target.host})")
    wake(home)  # machines that waited for this login are tried at once


@ssh.command(name="logout")
@click.argument("machine")
def ssh_logout(machine: str) -> None:
    """End the connection to MACHINE (its steps wait until the next login)."""
    from hpcflow.connectors.transports.openssh import OpenSSHTarget, control_argv, master_alive

    home = _home()
    target = _target(home, machine)
    assert isinstance(target, OpenSSHTarget)
    if not master_alive(target):
        click.echo(f"not logged in to {machine}")
        return
    subprocess.run(control_argv(target, "exit"), capture_output=True,
                   stdin=subprocess.DEVNULL, timeout=30)
    click.echo(f"logged out of {machine}")
