"""The OpenSSH transport's commands (no server: the real one is in
tests/integration/test_mfa_ssh.py), the config keys that choose it, and the engine's record
of unreachable machines."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from hpcflow.config_file import ConfigError, parse_config
from hpcflow.connectors.executors.registry import make_transport, openssh_target
from hpcflow.connectors.transports.openssh import (
    NoLoginError,
    OpenSSHTarget,
    OpenSSHTransport,
    client_argv,
    control_path,
    login_argv,
    private_control_dir,
)
from hpcflow.connectors.transports.ssh import SSHTransport
from hpcflow.daemon.reach import Reachability


def machines(**keys: object) -> dict:
    table = {"scheduler": "slurm", "host": "login.example", "work_root": "/w", **keys}
    return parse_config({"machines": {"hpc": table}}).machines


def test_paramiko_stays_the_default(tmp_path: Path):
    machine = machines()["hpc"]
    assert machine.transport == "paramiko"
    assert isinstance(make_transport(machine, tmp_path), SSHTransport)
    chosen = machines(transport="openssh")["hpc"]
    assert isinstance(make_transport(chosen, tmp_path), OpenSSHTransport)


@pytest.mark.parametrize("keys, said", [
    ({"transport": "ssh"}, "machines.hpc.transport must be one of paramiko, openssh"),
    ({"transport": "openssh", "control_persist": "12 hours"},
     "machines.hpc.control_persist must be seconds or a time"),
    ({"control_persist": "1h"}, 'control_persist is for transport = "openssh" only'),
    ({"transport": "openssh", "allow_new_host_keys": True},
     'allow_new_host_keys cannot be used with transport = "openssh"'),
])
def test_bad_settings_are_one_line_naming_the_key(keys: dict, said: str):
    with pytest.raises(ConfigError) as caught:
        machines(**keys)
    assert said in str(caught.value) and "\n" not in str(caught.value)


def test_the_login_checks_host_keys_strictly_and_stays_in_the_background(tmp_path: Path):
    machine = machines(transport="openssh", port=2223, user="me", key_filename="/k",
                       known_hosts="/kh", control_persist=600)["hpc"]
    target = openssh_target(machine, tmp_path)
    assert target.control_path == str(tmp_path / "ssh" / "hpc")
    argv = login_argv(target)
    assert argv[:4] == ["ssh", "-M", "-f", "-N"] and argv[-1] == "login.example"
    text = " ".join(argv)
    for option in ("ControlPersist=600", "StrictHostKeyChecking=yes", "UserKnownHostsFile=/kh",
                   f"ControlPath={tmp_path}/ssh/hpc", "-p 2223", "-l me", "-i /k"):
        assert option in text
    assert "accept-new" not in text and "StrictHostKeyChecking=no" not in text


def test_commands_go_through_the_master_only_and_quoted():
    target = OpenSSHTarget(machine="hpc", host="h", control_path="/s/hpc")
    argv = client_argv(target, "umask 077 && " + shlex.join(["echo", "a b", "$(rm -rf ~)"]))
    text = " ".join(argv[:-1])
    # no prompt, no connection of its own if the master is gone (it would ask for a code)
    for option in ("ControlMaster=no", "BatchMode=yes", "ProxyCommand=exec false",
                   "ControlPath=/s/hpc"):
        assert option in text
    assert argv[-1] == "umask 077 && echo 'a b' '$(rm -rf ~)'"


def test_no_login_is_one_line_naming_the_command(tmp_path: Path):
    transport = OpenSSHTransport(OpenSSHTarget(machine="hpc", host="h",
                                               control_path=str(tmp_path / "ssh" / "hpc")))
    with pytest.raises(NoLoginError) as caught:
        transport.run(["true"])
    assert str(caught.value) == "no SSH login to hpc (h): log in again with " \
                                "`hpcflow ssh login hpc`"


def test_the_socket_directory_is_private_and_the_path_fits(tmp_path: Path):
    (tmp_path / "ssh").mkdir(mode=0o755)
    assert (private_control_dir(tmp_path).stat().st_mode & 0o777) == 0o700
    from hpcflow.errors import HpcflowError

    with pytest.raises(HpcflowError, match="too long for a Unix socket"):
        control_path(tmp_path / ("x" * 100), "hpc")


def test_unreachable_machines_are_reported_until_reached():
    reach = Reachability()
    assert reach.report() == {}
    reach.lost("hpc", "no SSH login to hpc (h): log in again")
    since = reach.report()["unreachable"]["hpc"]["since"]
    reach.lost("hpc", "still")
    assert reach.report() == {"unreachable": {"hpc": {"since": since, "reason": "still"}}}
    reach.reached("hpc")
    assert reach.report() == {}
