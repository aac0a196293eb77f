"""``OpenSSHTransport``: a machine reached through the user's own OpenSSH master connection.

For sites that want a key plus a one-time code (TOTP, Duo...): an unattended daemon cannot
answer the code, so the user logs in once, interactively (``hpcflow ssh login MACHINE`` runs
``ssh -M`` with ``ControlPersist``), and every command and file of the daemon then goes
through that master's socket (``ssh -o ControlMaster=no -o BatchMode=yes``) for as long as it
lives. The socket lives in ``$HPCFLOW_HOME/ssh/`` (mode 0700): whoever can reach it is
logged in as the user.

Without a live master nothing falls back to a fresh connection (``ProxyCommand`` of a client
is a command that fails, and the code could not be answered anyway): the call raises
``TransportError`` naming the command that logs in again, so steps wait and nothing fails.
Host keys are checked by the login (``StrictHostKeyChecking=yes`` against the machine's
known_hosts: an unknown or changed key is refused, never added). Commands are argument lists,
quoted one by one (``remote_line``) before they reach the remote shell.
"""

from __future__ import annotations

import os
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from hpcflow.connectors.transports.base import CommandResult, TransportError
from hpcflow.connectors.transports.ssh import remote_line
from hpcflow.errors import HpcflowError

#: Under ``$HPCFLOW_HOME``: the master connections' sockets, one per machine.
CONTROL_DIR = "ssh"
#: ssh binds the master's socket under a name 17 characters longer, then renames it; a Unix
#: socket's path has at most 107 bytes.
MAX_CONTROL_PATH = 107 - 17
#: ``read_file``'s exit status for a missing file (a command's own statuses are 0-255, and
#: ``sh`` and ``cat`` never use this one).
MISSING = 44


def login_hint(machine: str) -> str:
    return f"log in again with `hpcflow ssh login {machine}`"


def control_path(home: Path, machine: str) -> Path:
    """The socket of ``machine``'s master connection (its directory is not made here)."""
    path = Path(home) / CONTROL_DIR / machine
    if len(os.fsencode(str(path))) > MAX_CONTROL_PATH:
        raise HpcflowError(
            f"the SSH socket path {path} is too long for a Unix socket ({MAX_CONTROL_PATH} "
            "bytes at most): use a shorter HPCFLOW_HOME")
    return path


def private_control_dir(home: Path) -> Path:
    """``$HPCFLOW_HOME/ssh``, made if needed: the user's own, mode 0700."""
    path = Path(home) / CONTROL_DIR
    path.mkdir(mode=0o700, exist_ok=True)
    st = path.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        raise HpcflowError(f"refusing {path} for SSH sockets: it is not a directory of "
                           "yours; remove it")
    if st.st_mode & 0o077:
        path.chmod(0o700)
    return path


@dataclass(frozen=True)
class OpenSSHTarget:
    """A machine's SSH settings; ``None`` values come from ``~/.ssh/config``, then ssh's
    defaults."""

    machine: str
    host: str
    control_path: str
    user: str | None = None
    port: int | None = None
    key_filename: str | None = None
    known_hosts: str | None = None
    proxy_jump: str | None = None
    #: ssh's ``ControlPersist``: how long the master stays with no command through it.
    control_persist: str = "12h"
    connect_timeout: int = 15


def _options(target: OpenSSHTarget) -> list[str]:
    """Options of every ssh call: the socket, the host key check, where and who."""
    argv = ["-o", f"ControlPath={target.control_path}", "-o", "StrictHostKeyChecking=yes",
            "-o", f"ConnectTimeout={target.connect_timeout}"]
    if target.known_hosts:
        argv += ["-o", f"UserKnownHostsFile={os.path.expanduser(target.known_hosts)}"]
    if target.port:
        argv += ["-p", str(target.port)]
    if target.user:
        argv += ["-l", target.user]
    if target.key_filename:
        argv += ["-i", os.path.expanduser(target.key_filename), "-o", "IdentitiesOnly=yes"]
    return argv


def login_argv(target: OpenSSHTarget) -> list[str]:
    """The interactive login: a master that goes to the background once authenticated and
    ends on its own when the server stops answering."""
    jump = ["-J", target.proxy_jump] if target.proxy_jump else []
    return ["ssh", "-M", "-f", "-N", "-o", f"ControlPersist={target.control_persist}",
            "-o", "ServerAliveInterval=30", "-o", "ServerAliveCountMax=3", *jump,
            *_options(target), target.host]


def control_argv(target: OpenSSHTarget, command: str) -> list[str]:
    """``ssh -O COMMAND`` (check, exit) for the master."""
    return ["ssh", "-O", command, *_options(target), target.host]


def client_argv(target: OpenSSHTarget, line: str) -> list[str]:
    """``line`` run through the master only: never a connection (or a prompt) of its own."""
    return ["ssh", "-o", "ControlMaster=no", "-o", "BatchMode=yes",
            "-o", "ProxyCommand=exec false", "-T", *_options(target), target.host, line]


def master_alive(target: OpenSSHTarget) -> bool:
    if not os.path.exists(target.control_path):
        return False
    try:
        done = subprocess.run(control_argv(target, "check"), capture_output=True,
                              stdin=subprocess.DEVNULL, timeout=30)
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


class NoLoginError(TransportError):
    """No master connection to ride on: the machine waits for the user's login."""


class OpenSSHTransport:
    shares_files = False

    def __init__(self, target: OpenSSHTarget) -> None:
        self.target = target

    def _not_logged_in(self) -> NoLoginError:
        return NoLoginError(f"no SSH login to {self.target.machine} ({self.target.host}): "
                            f"{login_hint(self.target.machine)}")

    def _ssh(self, argv: list[str], timeout: float, data: bytes | None
             ) -> tuple[int, bytes, bytes]:
        if not os.path.exists(self.target.control_path):
            raise self._not_logged_in()
        try:
            done = subprocess.run(client_argv(self.target, remote_line(argv)), input=data,
                                  capture_output=True, timeout=timeout,
                                  stdin=None if data is not None else subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise TransportError(f"{argv[0]} on {self.target.machine} did not answer within "
                                 f"{timeout:.0f} s") from exc
        except FileNotFoundError as exc:
            raise HpcflowError(f"machine {self.target.machine} uses OpenSSH, but there is no "
                               f"ssh command here ({exc.strerror})") from None
        # 255: ssh's own failure, or a command that exits 255: the master decides
        if done.returncode == 255 and not master_alive(self.target):
            raise self._not_logged_in()
        return done.returncode, done.stdout, done.stderr

    # -- the Transport protocol ---------------------------------------------------------
    def run(self, argv: list[str], timeout: float = 120.0,
            input_text: str | None = None) -> CommandResult:
        code, out, err = self._ssh(argv, timeout,
                                   None if input_text is None else input_text.encode())
        return CommandResult(code, out.decode(errors="replace"), err.decode(errors="replace"))

    def _checked(self, argv: list[str], what: str, data: bytes | None = None,
                 missing: bool = False) -> bytes | None:
        code, out, err = self._ssh(argv, 300.0, data)
        if missing and code == MISSING:
            return None
        if code != 0:
            said = err.decode(errors="replace").strip()[:300] or f"exit status {code}"
            raise OSError(f"{what} on {self.target.machine}: {said}")
        return out

    def write_files(self, directory: str, files: dict[str, bytes]) -> None:
        # each file through a temporary name beside it, then renamed: a reader never sees
        # half of it; what is made is the user's only (the umask of remote_line)
        script = ('mkdir -p -- "$(dirname -- "$1")" && cat > "$2" && mv -f -- "$2" "$1"')
        if not files:
            self._checked(["mkdir", "-p", "--", directory], directory)
        for name, data in files.items():
            target = f"{directory.rstrip('/')}/{name}"
            tmp = f"{os.path.dirname(target)}/.{os.path.basename(target)}.tmp"
            self._checked(["sh", "-c", script, "sh", target, tmp], target, data)

    def read_file(self, path: str, max_bytes: int | None = None) -> bytes | None:
        read = 'exec cat -- "$1"' if max_bytes is None else 'exec tail -c "$2" -- "$1"'
        script = f'[ -e "$1" ] || exit {MISSING}; {read}'
        argv = ["sh", "-c", script, "sh", path]
        if max_bytes is not None:
            argv.append(str(max_bytes))
        return self._checked(argv, path, missing=True)

    def list_files(self, path: str) -> list[str]:
        script = '[ -e "$1" ] || exit 0; exec find "$1" ! -type d -print0'
        out = self._checked(["sh", "-c", script, "sh", path], path) or b""
        return sorted(p.decode(errors="surrogateescape") for p in out.split(b"\0") if p)

    def close(self) -> None:
        """Nothing to release: the master is the user's (``hpcflow ssh logout`` ends it)."""
