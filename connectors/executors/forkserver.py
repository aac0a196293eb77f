"""A fork server for local steps: one process imports the runner once and forks per step.

Starting a Python interpreter and importing hpcflow costs ~40 ms per step; a fork costs
~1 ms. Children are exactly what ``python -m hpcflow.daemon.runner STEP_DIR`` would be:
their own session, stdout and stderr appended to ``STEP_DIR/log.txt``, the same claim and
result files. The server imports hpcflow's own modules that every Python OP's runner needs
(``hpcflow.python``: about 40 ms more per step otherwise) and never runs user code itself,
so no step sees another's imports.

Protocol (pipes): the client writes one JSON object per line, ``{"dir": STEP_DIR, "env":
{NAME: VALUE}}`` (variables the child gets, such as its result key: never on a command
line); the server answers the pid of the forked child (or ``error <reason>``) per line. End
of input stops the server; its children keep running.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from typing import IO


def _reap(signum: int, frame: object) -> None:
    with contextlib.suppress(ChildProcessError):
        while True:
            pid, _ = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                return


def run_child(step_dir: str, runner_main: object, env: dict[str, str] | None = None) -> None:
    """In the forked child: become a session leader with the step's log as stdout/stderr."""
    try:
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


def serve(requests: IO[str], replies: IO[str]) -> None:
    import cloudpickle  # noqa: F401  (children unpickle OPs with it)

    import hpcflow.python.hdf5
    import hpcflow.python.op
    import hpcflow.python.signs
    import hpcflow.python.typecheck  # noqa: F401  (what run_python_op imports, once here)
    from hpcflow.daemon import runner

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


class ForkServer:
    """The engine's handle on a fork server process."""

    def __init__(self, python: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [python, "-m", "hpcflow.connectors.executors.forkserver"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1, env=env,
            close_fds=True,
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def spawn(self, step_dir: str, env: dict[str, str] | None = None) -> int:
        """Fork a runner for ``step_dir`` with ``env`` added to its environment; its pid.
        Raises OSError if the server is gone."""
        if self.proc.stdin is None or self.proc.stdout is None or not self.alive():
            raise OSError("the fork server is not running")
        try:
            self.proc.stdin.write(json.dumps({"dir": step_dir, "env": env or {}}) + "\n")
            self.proc.stdin.flush()
            reply = self.proc.stdout.readline().strip()
        except (BrokenPipeError, ValueError) as exc:
            raise OSError(f"the fork server is gone: {exc}") from exc
        if not reply.isdigit():
            raise OSError(f"the fork server could not fork: {reply or 'no reply'}")
        return int(reply)

    def close(self) -> None:
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


if __name__ == "__main__":
    serve(sys.stdin, sys.stdout)
