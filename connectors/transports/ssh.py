"""``SSHTransport``: a machine reached over SSH (paramiko), one connection per machine shared
by every step, kept alive, and reconnected with back-off when it drops.

Host keys are verified against known_hosts; an unknown key is refused unless the machine's
config explicitly allows adding new ones, and a changed key is always refused. Settings come
from ``~/.ssh/config`` (HostName, User, Port, IdentityFile, ProxyJump) under the machine's
own values. Commands are argument lists, quoted here one by one (``shlex.join``): no user
text reaches the remote shell unquoted.
"""

from __future__ import annotations

import contextlib
import logging
import os
import posixpath
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpcflow.connectors.transports.base import CommandResult, CommandTimeout, TransportError
from hpcflow.errors import HpcflowError

log = logging.getLogger("hpcflow.engine")

#: Seconds to wait before reconnecting after the n-th failure in a row (then stays at the max).
BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


class HostKeyError(HpcflowError):
    """A host key that is not trusted: never retried, the user must act."""


@dataclass(frozen=True)
class SSHTarget:
    """Where to connect; ``None`` values come from ``~/.ssh/config``, then defaults."""

    host: str
    user: str | None = None
    port: int | None = None
    key_filename: str | None = None
    known_hosts: str | None = None
    allow_new_host_keys: bool = False
    proxy_jump: str | None = None
    keepalive: int = 30
    connect_timeout: float = 15.0
    ssh_config: str | None = None
    use_agent: bool = True
    #: Only for machines a workflow describes (dflow's ``password=``): never in a config file.
    password: str | None = field(default=None, repr=False)


def remote_line(argv: list[str]) -> str:
    """The line the remote shell runs for ``argv``: each argument quoted, and whatever the
    command creates (a scheduler's log, say) the user's only."""
    return "umask 077 && " + shlex.join(argv)


def _known_hosts_name(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


class _RecordingPolicy:
    """paramiko's missing-host-key hook: trust on first use only when allowed (and then save
    the key), otherwise refuse with the fingerprint and the command that trusts it."""

    def __init__(self, target: SSHTarget, known_hosts: str, port: int) -> None:
        self.target = target
        self.known_hosts = known_hosts
        self.port = port

    def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
        fingerprint = key.fingerprint if hasattr(key, "fingerprint") else key.get_name()
        if self.target.allow_new_host_keys:
            client.get_host_keys().add(hostname, key.get_name(), key)
            Path(self.known_hosts).parent.mkdir(parents=True, exist_ok=True)
            with open(self.known_hosts, "a") as f:
                f.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
            log.warning("trusted the new host key of %s (%s), saved in %s", hostname,
                        fingerprint, self.known_hosts)
            return
        scan = f"ssh-keyscan -p {self.port} {self.target.host}" if self.port != 22 \
            else f"ssh-keyscan {self.target.host}"
        raise HostKeyError(
            f"the host key of {hostname} ({key.get_name()} {fingerprint}) is not in "
            f"{self.known_hosts}: check the fingerprint with the machine's administrators, "
            f"then trust it with '{scan} >> {self.known_hosts}' (or connect once with ssh), "
            "or set allow_new_host_keys = true for this machine")


def changed_key_error(host: str, port: int, key: Any, known_hosts: str) -> HostKeyError:
    name = _known_hosts_name(host, port)
    return HostKeyError(
        f"the host key of {name} has CHANGED (it offers {key.get_name()} {key.fingerprint}; "
        f"{known_hosts} has another): this can be an attack; if the administrators changed "
        f"the key, remove the old entry with 'ssh-keygen -R \"{name}\" -f {known_hosts}' and "
        "trust the new one")


def verify_host_key(host: str, port: int = 22, known_hosts: str | None = None,
                    allow_new_host_keys: bool = False, timeout: float = 15.0) -> None:
    """Check the key ``host`` offers against ``known_hosts`` without logging in: for tools
    that connect without checking (dpdispatcher's SSHContext). Raises ``HostKeyError`` for
    an unknown key (unless new keys are allowed: then it is saved) or a changed one, and
    ``TransportError`` when the host cannot be reached."""
    import socket

    import paramiko

    known = os.path.expanduser(known_hosts or "~/.ssh/known_hosts")
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise TransportError(f"cannot reach {host}:{port}: {exc}") from None
    transport = paramiko.Transport(sock)
    try:
        transport.banner_timeout = timeout
        transport.start_client(timeout=timeout)
        key = transport.get_remote_server_key()
    except (paramiko.SSHException, OSError, EOFError) as exc:
        raise TransportError(f"no SSH handshake with {host}:{port}: {exc}") from None
    finally:
        transport.close()
    check_offered_key(host, port, key, known, allow_new_host_keys)


def check_offered_key(host: str, port: int, key: Any, known_hosts: str | None,
                      allow_new_host_keys: bool = False) -> None:
    """Check the key a server offered (read after the key exchange, before any credential
    is sent) against ``known_hosts``: ``HostKeyError`` for a changed key, or for an unknown
    one unless new keys are allowed (then it is saved)."""
    import paramiko

    known = os.path.expanduser(known_hosts or "~/.ssh/known_hosts")
    keys = paramiko.HostKeys()
    if os.path.exists(known):
        keys.load(known)
    name = _known_hosts_name(host, port)
    offered = keys.lookup(name) or {}
    if key.get_name() in offered:
        if offered[key.get_name()] != key:
            raise changed_key_error(host, port, key, known)
        return
    if offered:  # the host is known with another key type: treat as changed
        raise changed_key_error(host, port, key, known)

    class _Keys:
        def get_host_keys(self) -> Any:
            return keys

    _RecordingPolicy(SSHTarget(host=host, port=port, known_hosts=known,
                               allow_new_host_keys=allow_new_host_keys),
                     known, port).missing_host_key(_Keys(), name, key)


class SSHTransport:
    shares_files = False

    def __init__(self, target: SSHTarget) -> None:
        self.target = target
        self._client: Any = None
        self._jumps: list[Any] = []
        self._sftp: Any = None
        self._failures = 0
        self._retry_at = 0.0
        #: The connection was lost (not refused): the next connect says it reconnected.
        self._was_lost = False

    # -- connection ---------------------------------------------------------------------
    def _settings(self) -> dict[str, Any]:
        import paramiko

        path = self.target.ssh_config or os.path.expanduser("~/.ssh/config")
        found: dict[str, Any] = {}
        if os.path.exists(path):
            found = dict(paramiko.SSHConfig.from_path(path).lookup(self.target.host))
        identity = found.get("identityfile") or []
        return {
            "hostname": found.get("hostname", self.target.host),
            "user": self.target.user or found.get("user") or os.environ.get("USER") or "root",
            "port": int(self.target.port or found.get("port") or 22),
            "key": self.target.key_filename or (os.path.expanduser(identity[0])
                                                if identity else None),
            "proxy_jump": self.target.proxy_jump or found.get("proxyjump"),
        }

    def _connect_one(self, host: str, user: str, port: int, key: str | None,
                     sock: Any = None, password: str | None = None) -> Any:
        import paramiko

        known = os.path.expanduser(self.target.known_hosts or "~/.ssh/known_hosts")
        client = paramiko.SSHClient()
        if os.path.exists(known):
            client.load_host_keys(known)
        client.set_missing_host_key_policy(_RecordingPolicy(self.target, known, port))
        try:
            client.connect(host, port=port, username=user, key_filename=key, sock=sock,
                           password=password,
                           timeout=self.target.connect_timeout,
                           banner_timeout=self.target.connect_timeout,
                           auth_timeout=self.target.connect_timeout,
                           allow_agent=self.target.use_agent, look_for_keys=key is None)
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise changed_key_error(host, port, exc.key, known) from None
        except paramiko.AuthenticationException as exc:
            client.close()
            raise HpcflowError(f"ssh to {user}@{host}:{port} refused the credentials ({exc}): "
                               "check IdentityFile / key_filename and the ssh-agent") from None
        except HostKeyError:
            client.close()
            raise
        transport = client.get_transport()
        if transport is not None:
            transport.set_keepalive(self.target.keepalive)
        return client

    def _connect(self) -> Any:
        settings = self._settings()
        sock = None
        jumps = []
        for hop in (settings["proxy_jump"] or "").split(","):
            hop = hop.strip()
            if not hop or hop.lower() == "none":
                continue
            user, _, hostport = hop.rpartition("@")
            host, _, port = hostport.partition(":")
            jump = self._connect_one(host, user or settings["user"], int(port or 22),
                                     settings["key"], sock)
            jumps.append(jump)
            sock = jump.get_transport().open_channel(
                "direct-tcpip", (settings["hostname"], settings["port"]), ("127.0.0.1", 0))
        # a password goes to the machine only, never to a jump host on the way
        client = self._connect_one(settings["hostname"], settings["user"], settings["port"],
                                   settings["key"], sock, self.target.password)
        self._jumps = jumps
        return client

    def _alive(self) -> bool:
        transport = self._client.get_transport() if self._client is not None else None
        return bool(transport is not None and transport.is_active())

    def client(self) -> Any:
        """The shared connection, (re)made if needed; ``TransportError`` while backing off."""
        if self._alive():
            return self._client
        self._drop()
        now = time.monotonic()
        if now < self._retry_at:
            raise TransportError(f"{self.target.host} is unreachable; next try in "
                                 f"{self._retry_at - now:.0f} s")
        try:
            self._client = self._connect()
        except HpcflowError:  # a host key or credentials problem: the user must act
            raise
        except Exception as exc:  # paramiko.SSHException, socket errors, EOF
            wait = BACKOFF[min(self._failures, len(BACKOFF) - 1)]
            self._failures += 1
            self._retry_at = now + wait
            raise TransportError(f"cannot connect to {self.target.host}: {exc} (retrying in "
                                 f"{wait:.0f} s)") from exc
        if self._failures or self._was_lost:
            log.info("reconnected to %s after %d failed attempts", self.target.host,
                     self._failures)
        self._failures = 0
        self._was_lost = False
        return self._client

    def _drop(self) -> None:
        for conn in (self._sftp, self._client, *reversed(self._jumps)):
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
        self._sftp = self._client = None
        self._jumps = []

    def _lost(self, exc: BaseException | str) -> TransportError:
        self._drop()
        self._was_lost = True
        return TransportError(f"connection to {self.target.host} lost: {exc}")

    def sftp(self) -> Any:
        if self._sftp is None or not self._alive():
            client = self.client()
            try:
                self._sftp = client.open_sftp()
            except Exception as exc:
                raise self._lost(exc) from exc
        return self._sftp

    # -- the Transport protocol ---------------------------------------------------------
    def run(self, argv: list[str], timeout: float = 120.0,
            input_text: str | None = None) -> CommandResult:
        client = self.client()
        try:
            stdin, stdout, stderr = client.exec_command(remote_line(argv), timeout=timeout)
            if input_text is not None:
                stdin.write(input_text)
            stdin.channel.shutdown_write()
            out = stdout.read().decode(errors="replace")
            err = stderr.read().decode(errors="replace")
            code = stdout.channel.recv_exit_status()
        except TimeoutError as exc:
            raise CommandTimeout(f"{argv[0]} on {self.target.host} did not answer within "
                                 f"{timeout:.0f} s") from exc
        except Exception as exc:  # the connection dropped mid-command
            raise self._lost(exc) from exc
        if code == -1:
            # paramiko's "no exit status": the channel closed under the command (sshd killed,
            # say); a command's own status is 0-255
            raise self._lost(f"{argv[0]} got no exit status")
        return CommandResult(code, out, err)

    def write_files(self, directory: str, files: dict[str, bytes]) -> None:
        sftp = self.sftp()
        try:
            self._makedirs(sftp, directory)
            for name, data in files.items():
                target = posixpath.join(directory, name)
                if "/" in name:  # e.g. inputs/parameters/NAME
                    self._makedirs(sftp, posixpath.dirname(target))
                tmp = posixpath.join(posixpath.dirname(target),
                                     f".{posixpath.basename(target)}.tmp")
                with sftp.open(tmp, "wb") as f:
                    f.chmod(0o600)  # created under the SFTP server's umask
                    f.set_pipelined(True)
                    f.write(data)
                sftp.posix_rename(tmp, target)
        except OSError:
            raise
        except Exception as exc:
            raise self._lost(exc) from exc

    @staticmethod
    def _makedirs(sftp: Any, directory: str) -> None:
        parts = directory.rstrip("/").split("/")
        for i in range(2, len(parts) + 1):
            path = "/".join(parts[:i]) or "/"
            try:
                sftp.stat(path)
            except FileNotFoundError:
                sftp.mkdir(path, mode=0o700)

    def read_file(self, path: str, max_bytes: int | None = None) -> bytes | None:
        sftp = self.sftp()
        try:
            with sftp.open(path, "rb") as f:
                if max_bytes is not None:
                    size = f.stat().st_size
                    f.seek(max(0, size - max_bytes))
                data: bytes = f.read()
                return data
        except FileNotFoundError:
            return None
        except OSError:
            raise
        except Exception as exc:
            raise self._lost(exc) from exc

    def list_files(self, path: str) -> list[str]:
        import stat

        sftp = self.sftp()
        try:
            try:
                top = sftp.stat(path)
            except FileNotFoundError:
                return []
            if not stat.S_ISDIR(top.st_mode or 0):
                return [path]
            found, pending = [], [path]
            while pending:
                folder = pending.pop()
                for entry in sftp.listdir_attr(folder):
                    full = posixpath.join(folder, entry.filename)
                    if stat.S_ISDIR(entry.st_mode or 0):
                        pending.append(full)
                    else:
                        found.append(full)
            return sorted(found)
        except OSError:
            raise
        except Exception as exc:
            raise self._lost(exc) from exc

    def close(self) -> None:
        self._drop()
