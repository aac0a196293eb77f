"""A fork server for local steps: one process imports the runner once and forks per step.

Starting a Python interpreter and importing hpcflow costs ~40 ms per step; a fork costs
~1 ms. Children are exactly what ``python -m hpcflow.daemon.runner STEP_DIR`` would be:
their own session, stdout and stderr appended to ``STEP_DIR/log.txt``, the same claim and
result files. The server imports hpcflow's own modules that every Python OP's runner needs
(``hpcflow.python``: about 40 ms more per step otherwise) and never runs user code itself,
so no step sees another's imports.

A finished runner wakes the engine with a byte on a pipe the server was given (``--wake-fd``;
its children inherit it, closed on ``exec`` so no program a step runs holds it) instead of
a file in the engine's wake directory: a new file, its inotify event and its removal cost
the engine and the filesystem more than the step's own work on a busy machine.

Protocol (pipes): the client writes one JSON object per line, ``{"dir": STEP_DIR, "env":
{NAME: VALUE}}`` (variables the child gets, such as its result key: never on a command
line); the server answers the pid of the forked child (or ``error <reason>``) per line, in
the order of the requests. End of input stops the server; its children keep running.

The engine does not wait for the answer: a fork takes the server a millisecond or more on a
busy machine, which a blocking round trip per step would add to every step. A request
returns a ``ForkedChild`` at once; its pid is read when something first asks for it (by
then it has long arrived). A request the server never answered (it died) counts as never
started, which is safe to start again: of two runners of one step directory only the one
that takes its claim runs it.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import select
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable
from typing import IO

from hpcflow import import_timing
from hpcflow.privacy import module_command

#: How long a reply may take before the server is taken for stuck (it only forks).
REPLY_TIMEOUT = 30.0
#: ``ForkedChild.returncode`` of a request the server did not carry out.
NOT_STARTED = -1000


def _reap(signum: int, frame: object) -> None:
    with contextlib.suppress(ChildProcessError):
        while True:
            pid, _ = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                return


def fresh_random_state() -> None:
    """In a forked child: numpy's global random state seeded anew, as a new process seeds
    it (a fork inherits its parent's, so every step would draw the same numbers; Python's
    ``random`` module reseeds itself after a fork). Only if numpy was preloaded."""
    numpy_random = sys.modules.get("numpy.random")
    if numpy_random is not None:
        numpy_random.seed()


def preload_modules(names: list[str]) -> None:
    """``executors.local.preload``: import each module once, here, so that the runners
    forked from here find it imported. One that fails is said on stderr (the engine's log)
    and left out: a step that needs it imports it itself, and fails there if it must.

    What a module prints as it is imported goes to stderr too: this process's stdout is
    its answers to the engine, one pid a line, which a stray line would shift."""
    if not names:
        return
    import ctypes
    import importlib

    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)  # a C extension's own printf as well as Python's print
    try:
        with contextlib.redirect_stdout(sys.stderr):
            for name in names:
                try:
                    importlib.import_module(name)
                except (Exception, SystemExit) as exc:  # a module's import may raise anything
                    print(f"hpcflow fork server: preload of {name!r} failed, steps import "
                          f"it themselves: {type(exc).__name__}: {exc}", file=sys.stderr,
                          flush=True)
            sys.stderr.flush()
            with contextlib.suppress(OSError, AttributeError):
                ctypes.CDLL(None).fflush(None)  # C stdio's buffered output, before fd 1 is back
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def run_child(step_dir: str, runner_main: object, env: dict[str, str] | None = None) -> None:
    """In the forked child: become a session leader with the step's log as stdout/stderr."""
    try:
        import_timing.reset()
        fresh_random_state()
        os.environ.update(env or {})
        os.setsid()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        log = os.open(os.path.join(step_dir, "log.txt"), os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                      0o600)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.close(null)
        sys.stdin = open(0, closefd=False)  # noqa: SIM115 - fds 0-2 live as long as the process
        sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
        os.chdir(step_dir)
        code = runner_main([step_dir])  # type: ignore[operator]
    except BaseException:  # the child must never return into the server's loop
        import traceback

        traceback.print_exc()
        code = 70
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 0)


def serve(requests: IO[str], replies: IO[str], wake_fd: int | None = None,
          preload: list[str] | None = None) -> None:
    import cloudpickle  # noqa: F401  (children unpickle OPs with it)

    import hpcflow.context_syntax
    import hpcflow.daemon.script_step
    import hpcflow.daemon.slice_group
    import hpcflow.python.hdf5
    import hpcflow.python.op
    import hpcflow.python.signs
    import hpcflow.python.typecheck
    import hpcflow.settings  # noqa: F401  (what a runner imports as it goes, once here)
    from hpcflow.daemon import runner

    if wake_fd is not None:
        os.set_inheritable(wake_fd, False)
        os.set_blocking(wake_fd, False)
        runner.wake_engine_through(wake_fd)
    preload_modules(preload or [])
    # each runner reports what it imported itself, which a preload would have spared it
    import_timing.install()
    # What is loaded now is never collected: the children's garbage collector leaves it
    # alone instead of touching (and so copying) every page of it.
    gc.freeze()
    signal.signal(signal.SIGCHLD, _reap)
    for line in requests:
        if not line.strip():
            continue
        request = json.loads(line)
        step_dir, env = str(request["dir"]), dict(request.get("env") or {})
        try:
            pid = os.fork()
        except OSError as exc:
            replies.write(f"error {exc}\n")
            replies.flush()
            continue
        if pid == 0:
            requests.close()
            run_child(step_dir, runner.main, env)
        replies.write(f"{pid}\n")
        replies.flush()


def _relay_wakes(fd: int, wake: Callable[[], None]) -> None:
    """Calls ``wake`` whenever runners wrote to the wake-up pipe; ends when the server and
    every runner it forked are gone."""
    try:
        while os.read(fd, 4096):
            wake()
    except OSError:
        pass
    finally:
        os.close(fd)


class ForkedChild:
    """A runner the fork server was asked for. It is not the engine's child (the server
    reaps it); its pid arrives with the server's reply."""

    def __init__(self, server: ForkServer) -> None:
        self._server = server
        self._pid: int | None = None
        #: Why the server did not fork it (None: it did, or has not answered yet).
        self.refused: str | None = None
        self.returncode: int | None = None

    def _answered(self, reply: str) -> None:
        if reply.isdigit():
            self._pid = int(reply)
            self._server.forked += 1
        else:
            self.refused = reply or "no reply"
            self.returncode = NOT_STARTED

    @property
    def pid(self) -> int | None:
        """The child's pid (None: it was not started, ``refused`` says why)."""
        if self._pid is None and self.refused is None:
            self._server.take_replies(until=self)
        return self._pid

    def poll(self) -> int | None:
        """None while it runs (or is being forked); its return code (-1: gone,
        ``NOT_STARTED``) after. Never waits for the server."""
        if self._pid is None and self.refused is None:
            self._server.take_replies()
        if self.returncode is None:
            pid = self._pid
            if pid is None:
                return self.returncode
            try:
                with open(f"/proc/{pid}/stat") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
                if state == "Z":
                    self.returncode = -1
            except (OSError, IndexError):  # gone (ENOENT, or ESRCH while it exits)
                self.returncode = -1
        return self.returncode


class ForkServer:
    """The engine's handle on a fork server process."""

    def __init__(self, python: str, env: dict[str, str] | None = None,
                 on_runner_done: Callable[[], None] | None = None,
                 preload: tuple[str, ...] = ()) -> None:
        """``on_runner_done`` is called (from a thread of its own) when runners say they
        finished; without it they leave a file in the engine's wake directory. ``preload``:
        modules the server imports before it forks (module names, checked by the config
        file's reader)."""
        argv = module_command(python, "hpcflow.connectors.executors.forkserver")
        if preload:
            argv += ["--preload", ",".join(preload)]
        wake_read = wake_write = None
        if on_runner_done is not None:
            wake_read, wake_write = os.pipe()
            argv += ["--wake-fd", str(wake_write)]
        try:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0, env=env,
                close_fds=True, pass_fds=() if wake_write is None else (wake_write,))
        except BaseException:
            for fd in (wake_read, wake_write):
                if fd is not None:
                    os.close(fd)
            raise
        if wake_read is not None and wake_write is not None and on_runner_done is not None:
            os.close(wake_write)  # the server and its runners hold it now
            threading.Thread(target=_relay_wakes, args=(wake_read, on_runner_done),
                             name="runner-wakes", daemon=True).start()
        #: Requests not answered yet, in the order they were sent.
        self._waiting: deque[ForkedChild] = deque()
        #: How many runners it forked.
        self.forked = 0
        self._partial = b""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def spawn(self, step_dir: str, env: dict[str, str] | None = None) -> ForkedChild:
        """Ask for a runner for ``step_dir`` with ``env`` added to its environment, without
        waiting for the fork. Raises OSError if the server is gone."""
        if self.proc.stdin is None or not self.alive():
            raise OSError("the fork server is not running")
        line = json.dumps({"dir": step_dir, "env": env or {}}) + "\n"
        try:
            self.proc.stdin.write(line.encode())
        except (BrokenPipeError, ValueError) as exc:
            raise OSError(f"the fork server is gone: {exc}") from exc
        child = ForkedChild(self)
        self._waiting.append(child)
        return child

    def take_replies(self, until: ForkedChild | None = None) -> None:
        """Read the replies that arrived; with ``until``, wait (up to ``REPLY_TIMEOUT``) for
        that request's. A server that ended or stalls leaves its unanswered requests
        not started."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while self._waiting:
            waiting = until is not None and until in self._waiting
            ready, _, _ = select.select([fd], [], [], REPLY_TIMEOUT if waiting else 0)
            if not ready:
                if waiting:
                    self._abandon("the fork server did not answer")
                return
            chunk = os.read(fd, 65536)
            if not chunk:
                self._abandon("the fork server ended")
                return
            *lines, self._partial = (self._partial + chunk).split(b"\n")
            for line in lines:
                if self._waiting:
                    self._waiting.popleft()._answered(line.decode().strip())

    def _abandon(self, why: str) -> None:
        while self._waiting:
            self._waiting.popleft()._answered(f"error {why}")

    def close(self) -> None:
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._abandon("the fork server was stopped")


def _option(name: str) -> str | None:
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else None


if __name__ == "__main__":
    _wake, _preload = _option("--wake-fd"), _option("--preload")
    serve(sys.stdin, sys.stdout, int(_wake) if _wake is not None else None,
          _preload.split(",") if _preload else None)
