"""One engine per ``$HPCFLOW_HOME`` and host: the lock that enforces it, and starting one on
demand.

The lock is an ``flock`` held for the life of the engine process: it dies with
the process, so a killed engine never leaves a stale lock behind. Starting one is
serialised by a second lock (``engine-start.lock``), held by the starter until its engine
holds the engine lock: of many submissions at once, one starts an engine and the others
find it running.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hpcflow.privacy import module_command, private_umask

#: One engine per home and host: the lock files are named after the host (``flock`` works
#: between the processes of one host; which host leads a home shared between login nodes
#: is the leader lease's business, ``daemon/leader.py``).
LOCK_FILE = "engine-{host}.lock"
START_LOCK_FILE = "engine-start-{host}.lock"
WAKE_DIR = "wake"
#: The running engine's pid, version, last polls, problems and unreachable machines
#: (``daemon/process.py`` keeps it current).
STATUS_FILE = "daemon.json"
#: How long a starter waits for its engine to take the engine lock (imports on a loaded
#: login node can be slow); past it, others may start one (the engine lock still decides).
START_WAIT = 60.0


def _host_file(home: Path, pattern: str) -> Path:
    host = re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname()) or "localhost"
    return home / pattern.format(host=host)


#: The lock of engines of hpcflow before the per-host locks: one still running (an upgrade
#: under a live daemon) is seen, never taken.
LEGACY_LOCK_FILE = "engine.lock"
#: Tries (and seconds between them) to take the engine lock before another engine is taken
#: to hold it.
LOCK_TRIES = 10
LOCK_RETRY = 0.02


def _held_pid(path: Path) -> int | None:
    """The pid written in the lock file ``path`` while some process holds its flock."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        text = path.read_text().strip()
        return int(text) if text.isdigit() else -1
    finally:
        os.close(fd)
    return None


def try_lock(home: Path) -> int | None:
    """Take the engine lock; the fd to keep open, or None if another engine holds it."""
    if _held_pid(home / LEGACY_LOCK_FILE) is not None:
        return None  # an engine of an older hpcflow serves this home
    fd = os.open(_host_file(home, LOCK_FILE), os.O_CREAT | os.O_RDWR, 0o600)
    for attempt in range(LOCK_TRIES):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                os.close(fd)
                raise
            if attempt == LOCK_TRIES - 1:
                os.close(fd)
                return None
            # ``engine_pid`` probes with a shared lock held for microseconds (every
            # `hpcflow status` does): only a lock held this long is an engine's
            time.sleep(LOCK_RETRY)
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


def engine_pid(home: Path) -> int | None:
    """The pid of the engine serving ``home`` on this host, or None if none runs."""
    found = _held_pid(_host_file(home, LOCK_FILE))
    return found if found is not None else _held_pid(home / LEGACY_LOCK_FILE)


def read_status(home: Path) -> dict | None:
    """The engine's status file, if there is one (cheap: every ``hpcflow status`` may read
    it)."""
    try:
        data: dict = json.loads((home / STATUS_FILE).read_text())
        return data
    except (FileNotFoundError, ValueError):
        return None


def wake(home: Path) -> None:
    """Tell a running engine there is new work (it watches the wake directory)."""
    folder = home / WAKE_DIR
    with private_umask():
        folder.mkdir(exist_ok=True)
        (folder / f"req-{uuid.uuid4().hex[:12]}").touch()


def start_engine(home: Path, idle_exit: float | None,
                 env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start an engine in the background (new session, log under ``logs/``); a broken config
    file is reported here, in the caller's terminal, rather than in the engine's log."""
    from hpcflow.config_file import load_config

    load_config(home)
    logs = home / "logs"
    with private_umask():  # the log files are the user's only, whatever the caller's umask
        logs.mkdir(exist_ok=True, mode=0o700)
        (logs / "daemon.out").touch()
    cmd = [*module_command(sys.executable, "hpcflow.daemon.process"), "--home", str(home),
           "--log-file", str(logs / "daemon.log")]
    if idle_exit is not None:
        cmd += ["--idle-exit", str(idle_exit)]
    # stdout/stderr catch what happens before logging is set up (an import error, say).
    with open(logs / "daemon.out", "ab") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True,
                                env={**os.environ, **(env or {})})
    return proc


@contextmanager
def start_lock(home: Path) -> Iterator[None]:
    """Held while one process starts an engine and waits for it to take the engine lock."""
    fd = os.open(_host_file(home, START_LOCK_FILE), os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def wait_for_lock(home: Path, proc: subprocess.Popen, timeout: float = START_WAIT) -> bool:
    """Whether the engine ``proc`` took the engine lock; False if it exited first (another
    engine holds it, or it failed: see ``logs/daemon.out``) or is not there after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if engine_pid(home) == proc.pid:
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.02)
    return False


def ensure_engine(home: Path, idle_exit: float | None, announce: bool = True,
                  env: dict[str, str] | None = None, autostart: bool = True) -> None:
    """Wake the engine serving ``home``, or start one (with ``env`` added to its environment);
    with ``autostart`` off (cron drives this home) only leave the wake-up for the next tick.
    Only the starter whose engine took the engine lock announces it."""
    if engine_pid(home) is not None or not autostart:
        wake(home)
        return
    with start_lock(home):
        if engine_pid(home) is not None:  # started by another submission meanwhile
            wake(home)
            return
        proc = start_engine(home, idle_exit, env)
        serving = wait_for_lock(home, proc)
    if not serving:
        wake(home)  # whichever engine serves (or comes next) finds the work
    elif announce:
        print(f"hpcflow: started an engine (pid {proc.pid}) for {home}", file=sys.stderr)
