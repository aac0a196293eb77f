"""``LocalExecutor``: each step is its own process on this machine, in its own session.

Processes outlive the engine (they are started in a new session), so a killed
engine loses nothing: on restart it finds finished steps by their result file
and running ones by the lock their runner holds on the claim file.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from hpcflow.connectors.executors.base import (
    ADOPTED,
    CLAIM_FILE,
    EXIT_ALREADY_CLAIMED,
    FOREIGN_CLAIM_STALE,
    NESTED_DIR,
    OP_FILE,
    PROGRESS_FILE,
    RESULT_FILE,
    STEP_DIR_ENV,
    JobRecord,
    JobResult,
    JobSpec,
    JobState,
    JobStatus,
    step_dir_name,
)
from hpcflow.connectors.executors.forkserver import NOT_STARTED, ForkedChild, ForkServer
from hpcflow.connectors.transports.local import write_files_atomically
from hpcflow.daemon.disk import full_disk_note
from hpcflow.secrets import ResultKeys, without_credentials

log = logging.getLogger("hpcflow.engine")

#: Seconds between SIGTERM and SIGKILL when a job is cancelled.
CANCEL_GRACE = 5.0
#: The native id of a runner asked of the fork server (its pid comes later, and is in the
#: step's claim file).
FORKED = "forked"
#: Fork servers in a row that end without starting a runner before the engine gives up on
#: them and starts runners as new processes.
BARREN_SERVERS = 3



def claim_is_held(step_dir: Path) -> bool:
    """True while a runner holds the lock on the step's claim file."""
    try:
        fd = os.open(step_dir / CLAIM_FILE, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return True
        raise
    finally:
        os.close(fd)
    return False


def foreign_claim(step_dir: Path) -> tuple[str, float] | None:
    """(host, seconds since its last beat) when another host's runner claimed the step:
    its lock may not be visible here, so its beats are what tells it is alive."""
    try:
        fields = (step_dir / CLAIM_FILE).read_text().split()
        mtime = (step_dir / CLAIM_FILE).stat().st_mtime
    except (FileNotFoundError, NotADirectoryError):
        return None
    if len(fields) < 2 or fields[1] == socket.gethostname():
        return None
    return fields[1], max(0.0, time.time() - mtime)


def read_result(step_dir: Path) -> JobResult | None:
    """The runner's result in a step directory of this machine; None when there is none
    (yet)."""
    try:
        return JobResult.from_bytes((step_dir / RESULT_FILE).read_bytes())
    except FileNotFoundError:
        return None


Process = subprocess.Popen | ForkedChild


class LocalExecutor:
    """Runs the in-job runner for each step, ``parallelism`` at once.

    With ``fork_server`` (the default) runners are forked from a process that imported the
    runner once; otherwise each is ``python -m hpcflow.daemon.runner STEP_DIR``.
    """

    name = "local"
    queues = False
    #: A runner started twice for a step directory runs it once (``ClaimGuarded``).
    claim_guarded = True

    def __init__(self, runs_root: Path, parallelism: int, python: str | None = None,
                 env: dict[str, str] | None = None, fork_server: bool = True,
                 result_keys: ResultKeys | None = None,
                 job_finished: Callable[[str], None] | None = None,
                 preload: tuple[str, ...] = ()) -> None:
        self.runs_root = runs_root
        #: Modules the fork server imports before it forks (``executors.local.preload``).
        self.preload = preload
        #: Tells the engine a forked runner finished (None: runners leave a file in the
        #: wake directory, which the engine watches).
        self.job_finished = job_finished
        #: Hands each runner the key it seals its result with (None: results go unsealed,
        #: and the service refuses their outputs).
        self.result_keys = result_keys
        self.parallelism = parallelism
        self.python = python or sys.executable
        self.env = env
        self.use_fork_server = self._wants_fork_server = fork_server
        self._server: ForkServer | None = None
        self._barren = 0
        self._procs: dict[str, Process] = {}
        self._adopted: set[str] = set()
        #: Processes that are over for the engine but not yet gone, with the time after
        #: which their process group gets SIGKILL (None: let them finish on their own).
        self._reaping: list[tuple[Process, float | None]] = []
        self._progress_seen: dict[str, int] = {}
        #: Each job's step directory (for the nested workflows it waits for).
        self._dirs: dict[str, Path] = {}

    def step_dir(self, workflow_id: str, step_id: int, step_name: str, attempt: int) -> str:
        # A looped step's name holds parentheses: its directory must not (scripts name it).
        return str(self.runs_root / workflow_id / step_dir_name(step_name, step_id, attempt))

    def free_slots(self) -> int:
        self._reap()
        live = [n for n, p in self._procs.items() if p.poll() is None] + sorted(self._adopted)
        holding = sum(1 for name in live if not self._lends_slot(name))
        return max(0, self.parallelism - holding)

    def _lends_slot(self, job_name: str) -> bool:
        """A step waiting for a workflow it submitted to this home holds no slot (the nested
        workflow's steps may need it: two such steps on two slots would wait forever)."""
        step_dir = self._dirs.get(job_name)
        if step_dir is None:
            return False
        try:
            return any(os.scandir(step_dir / NESTED_DIR))
        except (FileNotFoundError, NotADirectoryError):
            return False

    def _launch(self, job_name: str, step_dir: Path) -> str:
        self._dirs[job_name] = step_dir
        keys = self.result_keys.env([str(step_dir)]) if self.result_keys else {}
        keys[STEP_DIR_ENV] = str(step_dir)
        if self.use_fork_server:
            try:
                if self._server is None or not self._server.alive():
                    self._count_barren(self._server)
                    self._server = ForkServer(self.python, self._environ(), self._wakes(),
                                              preload=self.preload)
                self._procs[job_name] = self._server.spawn(str(step_dir), keys)
                return FORKED
            except OSError as exc:
                log.warning("fork server failed (%s): starting runners as new processes", exc)
                self.use_fork_server = False
        with open(step_dir / "log.txt", "ab") as log_file:
            # "." (the cwd): `ps` shows other accounts no workflow id or step name
            proc = subprocess.Popen(
                [self.python, "-m", "hpcflow.daemon.runner", "."],
                stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                cwd=str(step_dir), start_new_session=True, close_fds=True,
                env={**self._environ(), **keys},
            )
        self._procs[job_name] = proc
        return str(proc.pid)

    def _count_barren(self, ended: ForkServer | None) -> None:
        """Count fork servers in a row that ended without forking a runner (one that cannot
        start: see ``logs/daemon.out``); after ``BARREN_SERVERS`` of them, runners are
        started as new processes, rather than asking for a new server every few seconds."""
        if ended is None:
            return
        self._barren = 0 if ended.forked else self._barren + 1
        if self._barren >= BARREN_SERVERS:
            raise OSError(f"{self._barren} fork servers in a row ended without starting a "
                          "runner (their errors are in logs/daemon.out)")

    def set_preload(self, preload: tuple[str, ...]) -> None:
        """A new ``executors.local.preload`` (the config file reloaded): the next runner
        comes from a fork server that imported those (runners already started go on), also
        after servers that could not start made runners new processes (the list was why)."""
        if preload != self.preload:
            self.preload = preload
            self.close()
            self.use_fork_server, self._barren = self._wants_fork_server, 0

    def _wakes(self) -> Callable[[], None] | None:
        """What the fork server's relay calls when its runners finish."""
        finished, name = self.job_finished, self.name
        return None if finished is None else lambda: finished(name)

    def _environ(self) -> dict[str, str]:
        """What a runner starts with: never a credential of the daemon's environment."""
        return without_credentials(self.env)

    def submit(self, job: JobSpec) -> str:
        path = Path(job.step_dir)
        files = job.to_files()
        op = files.pop(OP_FILE, None)
        write_files_atomically(path, files)
        if op is not None:
            self._link_op(path, op)
        return self._launch(job.name, path)

    def _link_op(self, step_dir: Path, op: bytes) -> None:
        """``op.pkl`` as a hard link to one copy per workflow and OP (removed with the
        workflow's runs): a new file costs the filesystem far more than a link (about 400
        against 30 µs on ext4 here), and a fan-out's steps all share one OP."""
        shared = step_dir.parent / f".op-{hashlib.sha256(op).hexdigest()}.pkl"
        tmp = step_dir / f".{OP_FILE}.tmp"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        try:
            os.link(shared, tmp)
        except FileNotFoundError:
            _write_private(shared, op)
            os.link(shared, tmp)
        except OSError:  # a filesystem without hard links: a copy of its own
            write_files_atomically(step_dir, {OP_FILE: op})
            return
        os.replace(tmp, step_dir / OP_FILE)

    def poll(self, jobs: list[JobRecord]) -> list[JobStatus]:
        statuses = []
        for job in jobs:
            statuses.append(self._poll_one(job))
        return statuses

    def _poll_one(self, job: JobRecord) -> JobStatus:
        step_dir = Path(job.step_dir)
        result = read_result(step_dir)
        if result is not None:
            progress = self._progress(job)
            self._forget(job.name)
            return JobStatus(job.name, JobState.FINISHED, result, progress=progress)
        proc = self._procs.get(job.name)
        if proc is not None and proc.poll() is None:
            return JobStatus(job.name, JobState.RUNNING, progress=self._progress(job))
        foreign = foreign_claim(step_dir)
        if foreign is not None:  # run by an engine of another host (a shared home)
            host, idle = foreign
            if idle < FOREIGN_CLAIM_STALE:
                self._adopted.add(job.name)
                self._dirs[job.name] = step_dir
                return JobStatus(job.name, JobState.RUNNING, progress=self._progress(job))
            self._forget(job.name)
            return JobStatus(job.name, JobState.LOST, detail=(
                f"the step's process on host {host} gave no sign of life for {idle:.0f} s "
                f"(that host may be down); see {step_dir / 'log.txt'}"))
        if claim_is_held(step_dir):
            self._adopted.add(job.name)
            self._dirs[job.name] = step_dir
            return JobStatus(job.name, JobState.RUNNING, progress=self._progress(job))
        result = read_result(step_dir)  # the runner may have finished between the two checks
        if result is not None:
            self._forget(job.name)
            return JobStatus(job.name, JobState.FINISHED, result)
        if (step_dir / CLAIM_FILE).exists():
            self._forget(job.name)
            code = proc.returncode if proc is not None else None
            return JobStatus(job.name, JobState.LOST,
                             detail=f"the step process died without a result (exit code {code}); "
                                    f"see {step_dir / 'log.txt'}{full_disk_note(step_dir)}")
        if proc is not None and proc.returncode == NOT_STARTED:
            log.warning("the fork server did not start %s (%s): starting it again",
                        job.name, getattr(proc, "refused", None))
            self._launch(job.name, step_dir)
            return JobStatus(job.name, JobState.RUNNING)
        if proc is not None and proc.returncode not in (None, EXIT_ALREADY_CLAIMED):
            self._forget(job.name)
            return JobStatus(job.name, JobState.LOST,
                             detail=f"the step process could not start (exit code "
                                    f"{proc.returncode}); see {step_dir / 'log.txt'}"
                                    f"{full_disk_note(step_dir)}")
        if proc is None:
            # Submitted by an engine that died before its runner claimed the directory (the
            # fork server dies with the engine). Launching again is safe: of two runners only
            # the one that takes the claim runs the step, the other exits at once.
            self._launch(job.name, step_dir)
        return JobStatus(job.name, JobState.RUNNING)

    def read_step_file(self, job: JobRecord, rel: str) -> bytes | None:
        """A file the runner left in the step's directory (a large output value), or None."""
        try:
            return (Path(job.step_dir) / rel).read_bytes()
        except FileNotFoundError:
            return None

    def _progress(self, job: JobRecord) -> tuple[int, int] | None:
        """The OP's progress if ``progress.json`` changed since the last poll (one stat)."""
        path = Path(job.step_dir) / PROGRESS_FILE
        try:
            mtime = path.stat().st_mtime_ns
        except FileNotFoundError:
            return None
        if self._progress_seen.get(job.name) == mtime:
            return None
        self._progress_seen[job.name] = mtime
        try:
            data = json.loads(path.read_text())
            return int(data["current"]), int(data["total"])
        except (OSError, ValueError, KeyError):
            return None

    def _forget(self, job_name: str, kill_after: float | None = None) -> None:
        self._progress_seen.pop(job_name, None)
        proc = self._procs.pop(job_name, None)
        self._adopted.discard(job_name)
        self._dirs.pop(job_name, None)
        if proc is not None:
            self._reaping.append((proc, kill_after))

    def _reap(self) -> None:
        """Collect exited children (no zombies); SIGKILL cancelled ones that outstay their grace."""
        still: list[tuple[Process, float | None]] = []
        for proc, kill_after in self._reaping:
            if proc.poll() is not None:
                continue
            if kill_after is not None and time.time() > kill_after and proc.pid:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
            still.append((proc, kill_after))
        self._reaping = still

    def reconcile(self, record: JobRecord, job: JobSpec) -> str:
        step_dir = Path(record.step_dir)
        if (step_dir / CLAIM_FILE).exists() or (step_dir / RESULT_FILE).exists():
            self._adopted.add(record.name)
            self._dirs[record.name] = step_dir
            return record.native_id or ADOPTED
        return self.submit(job)

    def cancel(self, jobs: list[JobRecord]) -> None:
        """SIGTERM each job's process group; SIGKILL after ``CANCEL_GRACE`` seconds."""
        for job in jobs:
            pid = self._pid_of(job)
            if pid:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGTERM)
            self._forget(job.name, kill_after=time.time() + CANCEL_GRACE)
        self._reap()

    def log_tail(self, job: JobRecord, lines: int) -> str | None:
        return read_log_tail(job.step_dir, lines)

    def close(self) -> None:
        """Stop the fork server (runners it started keep running)."""
        if self._server is not None:
            self._server.close()
            self._server = None

    def _pid_of(self, job: JobRecord) -> int | None:
        try:
            text = (Path(job.step_dir) / CLAIM_FILE).read_text().split()
            if len(text) > 1 and text[1] != socket.gethostname():
                return None  # a process of another host: never signal a pid of ours
            return int(text[0]) if text else None
        except (FileNotFoundError, ValueError):
            proc = self._procs.get(job.name)
            return proc.pid if proc is not None else None


def _write_private(path: Path, data: bytes) -> None:
    """``data`` at ``path``, readable by its owner only whatever the umask, through a
    temporary name (a reader never sees half of it)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def read_log_tail(step_dir: str, lines: int) -> str | None:
    """The last ``lines`` lines of a step directory's ``log.txt`` on this machine (only its
    last 16 KiB are read)."""
    try:
        with open(Path(step_dir) / "log.txt", "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode(errors="replace")
    except FileNotFoundError:
        return None
    tail = text.splitlines()[-lines:]
    return "\n".join(tail) if tail else None
