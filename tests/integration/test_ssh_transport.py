"""The SSH transport against the real sshd of tests/services (127.0.0.1:2222, user hpctest):
commands and files, host-key verification (unknown refused with how to trust it, changed
refused, new accepted only when allowed), and a dropped connection made again."""

import shutil
from pathlib import Path

import pytest

from hpcflow.connectors.transports.base import TransportError
from hpcflow.connectors.transports.ssh import HostKeyError, SSHTarget, SSHTransport


def target(ssh_env: dict, known_hosts: str, **kw) -> SSHTarget:
    return SSHTarget(host=ssh_env["HPCFLOW_TEST_SSH_HOST"],
                     port=int(ssh_env["HPCFLOW_TEST_SSH_PORT"]),
                     user=ssh_env["HPCFLOW_TEST_SSH_USER"],
                     key_filename=ssh_env["HPCFLOW_TEST_SSH_KEY"], known_hosts=known_hosts,
                     use_agent=False, ssh_config="/nonexistent", **kw)


def test_commands_and_files(ssh_env: dict):
    ssh = SSHTransport(target(ssh_env, ssh_env["HPCFLOW_TEST_SSH_KNOWN_HOSTS"]))
    try:
        done = ssh.run(["sh", "-c", 'echo "$0 $1"; echo oops >&2; exit 3', "a b", "$HOME;x"])
        assert (done.returncode, done.stdout, done.stderr) == (3, "a b $HOME;x\n", "oops\n")
        assert ssh.run(["sbatch", "--version"]).ok  # SLURM_CONF reaches ssh sessions
        home = ssh.run(["sh", "-c", "echo $HOME"]).stdout.strip()
        folder = f"{home}/hpcflow-transport-test/a/b"
        ssh.write_files(folder, {"x.txt": b"hello\n" * 1000, "y.bin": bytes(range(256))})
        assert ssh.read_file(f"{folder}/y.bin") == bytes(range(256))
        assert ssh.read_file(f"{folder}/x.txt", max_bytes=6) == b"hello\n"
        assert ssh.read_file(f"{folder}/missing") is None
        assert ssh.run(["ls", "-a", folder]).stdout.split() == [".", "..", "x.txt", "y.bin"]
        # the connection drops: the next call connects again without an error
        ssh._client.get_transport().close()
        assert ssh.run(["true"]).ok
        ssh.run(["rm", "-rf", f"{home}/hpcflow-transport-test"])
    finally:
        ssh.close()


def test_an_unknown_host_key_is_refused_with_how_to_trust_it(ssh_env: dict, tmp_path: Path):
    known = tmp_path / "known_hosts"
    known.write_text("")
    ssh = SSHTransport(target(ssh_env, str(known)))
    with pytest.raises(HostKeyError) as refused:
        ssh.run(["true"])
    message = str(refused.value)
    assert "is not in" in message and "SHA256:" in message
    assert f"ssh-keyscan -p 2222 127.0.0.1 >> {known}" in message
    assert "allow_new_host_keys = true" in message
    assert known.read_text() == ""


def test_a_changed_host_key_is_refused(ssh_env: dict, tmp_path: Path):
    import paramiko

    known = tmp_path / "known_hosts"
    other = paramiko.Ed25519Key.from_private_key_file(ssh_env["HPCFLOW_TEST_SSH_KEY"])
    known.write_text(f"[127.0.0.1]:2222 {other.get_name()} {other.get_base64()}\n")
    ssh = SSHTransport(target(ssh_env, str(known), allow_new_host_keys=True))
    with pytest.raises(HostKeyError, match=r"has CHANGED .*'ssh-keygen -R"):
        ssh.run(["true"])


def test_new_host_keys_only_when_allowed(ssh_env: dict, tmp_path: Path):
    known = tmp_path / "known_hosts"
    ssh = SSHTransport(target(ssh_env, str(known), allow_new_host_keys=True))
    try:
        assert ssh.run(["true"]).ok
    finally:
        ssh.close()
    saved = known.read_text()
    assert saved.startswith("[127.0.0.1]:2222 ")
    strict = SSHTransport(target(ssh_env, str(known)))  # now known: no need to allow
    try:
        assert strict.run(["true"]).ok
    finally:
        strict.close()


def test_an_unreachable_host_backs_off(ssh_env: dict):
    ssh = SSHTransport(SSHTarget(host="127.0.0.1", port=1, user="x", use_agent=False,
                                 ssh_config="/nonexistent", connect_timeout=2,
                                 known_hosts=ssh_env["HPCFLOW_TEST_SSH_KNOWN_HOSTS"]))
    with pytest.raises(TransportError, match="cannot connect"):
        ssh.run(["true"])
    with pytest.raises(TransportError, match="unreachable; next try in"):
        ssh.run(["true"])  # within the back-off: no new connection attempt
    assert shutil.which("ssh-keygen")  # the command the messages recommend exists here


def test_proxy_jump_and_ssh_config(ssh_env: dict, tmp_path: Path):
    """Settings from an ssh config file (HostName, User, Port, IdentityFile, ProxyJump): the
    alias 'cluster' reaches the sshd through a jump over the same sshd."""
    config = tmp_path / "ssh_config"
    host, port, user = (ssh_env["HPCFLOW_TEST_SSH_HOST"], ssh_env["HPCFLOW_TEST_SSH_PORT"],
                        ssh_env["HPCFLOW_TEST_SSH_USER"])
    config.write_text(f"Host cluster\n  HostName {host}\n  Port {port}\n  User {user}\n"
                      f"  IdentityFile {ssh_env['HPCFLOW_TEST_SSH_KEY']}\n"
                      f"  ProxyJump {user}@{host}:{port}\n")
    ssh = SSHTransport(SSHTarget(host="cluster", ssh_config=str(config), use_agent=False,
                                 known_hosts=ssh_env["HPCFLOW_TEST_SSH_KNOWN_HOSTS"]))
    try:
        done = ssh.run(["sh", "-c", "id -un; echo $SSH_CONNECTION"])
        name, connection = done.stdout.split("\n")[:2]
        assert name == user
        assert len(ssh._jumps) == 1  # the session went through the jump connection
        assert connection.split()[2:] == [host, port]
    finally:
        ssh.close()
