"""What the PBS and LSF stand-ins share: the state directory, job records, and the supervisor
that runs one job script as a local background process.

No PBS or LSF server can run on this machine (neither is packaged for Debian; LSF is
proprietary), so ``tests/standins/{pbs,lsf}/`` hold stand-ins for their commands. They reply
in the output formats documented for the real tools and really run the job scripts. State:
one JSON file per job in ``$HPCFLOW_STANDIN_STATE``, always replaced atomically; a lock file
per job serialises read-modify-write between the commands and the job's supervisor.

Stdlib only: the stand-ins run with whatever ``python3`` is first on PATH.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

#: How long a job shows as queued before its supervisor starts it.
QUEUE_DELAY = 0.1
#: How often the supervisor looks at the job and its limits.
TICK = 0.1
#: A job's id: a plain job's (or an array's) sequence number, or an array's element SEQ[i].
JOB_ID = re.compile(r"^\d+(\[\d+\])?$")


def state_dir() -> str:
    path = os.environ.get("HPCFLOW_STANDIN_STATE")
    if not path:
        sys.stderr.write("stand-in: HPCFLOW_STANDIN_STATE is not set (the directory that "
                         "holds the stand-in scheduler's jobs)\n")
        sys.exit(2)
    os.makedirs(path, exist_ok=True)
    return path


def host() -> str:
    return socket.gethostname().split(".")[0]


def user() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


@contextlib.contextmanager
def locked(name: str) -> Iterator[None]:
    with open(os.path.join(state_dir(), f"{name}.lock"), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def write_atomic(path: str, data: Any) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def next_id() -> int:
    """Job ids count up across both stand-ins, like one cluster's sequence numbers."""
    path = os.path.join(state_dir(), "last_id")
    with locked("last_id"):
        try:
            with open(path) as f:
                last = int(f.read().strip() or 0)
        except FileNotFoundError:
            last = 1000
        with open(f"{path}.tmp", "w") as f:
            f.write(str(last + 1))
        os.replace(f"{path}.tmp", path)
    return last + 1


def job_path(kind: str, job_id: int | str) -> str:
    return os.path.join(state_dir(), f"{kind}-{job_id}.json")


def read_job(kind: str, job_id: int | str) -> dict[str, Any] | None:
    if not JOB_ID.match(str(job_id)):
        return None
    try:
        with open(job_path(kind, job_id)) as f:
            data: dict[str, Any] = json.load(f)
            return data
    except FileNotFoundError:
        return None


def update_job(kind: str, job_id: int | str,
               change: Callable[[dict[str, Any]], Any]) -> tuple[dict[str, Any] | None, Any]:
    """Apply ``change`` to the job under its lock; (the job as written, what change returned)."""
    with locked(f"{kind}-{job_id}"):
        job = read_job(kind, job_id)
        if job is None:
            return None, None
        answer = change(job)
        write_atomic(job_path(kind, job_id), job)
        return job, answer


def all_jobs(kind: str) -> list[dict[str, Any]]:
    jobs = []
    for entry in os.listdir(state_dir()):
        if entry.startswith(f"{kind}-") and entry.endswith(".json"):
            job = read_job(kind, entry[len(kind) + 1:-5])
            if job is not None:
                jobs.append(job)
    return sorted(jobs, key=_order)


def _order(job: dict[str, Any]) -> tuple[int, int]:
    """An array's elements after the array, in index order."""
    return int(str(job["id"]).split("[")[0]), int(job.get("index") or 0)


def elements(kind: str, array_id: int | str) -> list[dict[str, Any]]:
    """The elements of the array ``array_id`` (records ``KIND-SEQ[i].json``)."""
    prefix = f"{kind}-{array_id}["
    found = []
    for entry in os.listdir(state_dir()):
        if entry.startswith(prefix) and entry.endswith("].json"):
            job = read_job(kind, entry[len(kind) + 1:-5])
            if job is not None:
                found.append(job)
    return sorted(found, key=_order)


def create_array(array: dict[str, Any], element: Callable[[int], dict[str, Any]],
                 indices: list[int]) -> None:
    """An array job: its own record (no process of its own) and one record per element,
    ``element(i)`` for each index, each run by its own supervisor."""
    write_atomic(job_path(array["kind"], array["id"]), array)
    for index in indices:
        job = element(index)
        write_atomic(job_path(job["kind"], job["id"]), job)
    for index in indices:
        start_supervisor(array["kind"], f"{array['id']}[{index}]")


def array_finished(kind: str, array: dict[str, Any]) -> bool:
    """Every element of the array has ended."""
    return all(j.get("finished") for j in elements(kind, array["id"]))


def create_job(job: dict[str, Any]) -> None:
    write_atomic(job_path(job["kind"], job["id"]), job)


def start_supervisor(kind: str, job_id: int | str) -> None:
    """The job's supervisor, detached: its own session, no inherited pipes (the caller's
    caller waits for EOF on our stdout)."""
    subprocess.Popen([sys.executable, os.path.realpath(__file__), "supervise", kind,
                      str(job_id)], start_new_session=True, stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=True,
                     cwd="/")


def request_kill(kind: str, job_id: int | str, why: str) -> tuple[dict | None, str]:
    """Ask the job's supervisor to kill it; ``unknown``, ``finished`` or ``requested``."""
    def change(job: dict[str, Any]) -> str:
        if job.get("finished"):
            return "finished"
        job.setdefault("kill_request", why)
        return "requested"

    job, answer = update_job(kind, job_id, change)
    return job, answer if job is not None else "unknown"


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def supervise(kind: str, job_id: str) -> int:
    """Run the job: queued for a moment, then ``bash SCRIPT`` in its own session with its
    output files; kill its process group on a kill request or at its time limit, following
    ``job["kill_signals"][why]`` (signal names, one per ``job["kill_grace"]`` seconds)."""
    time.sleep(QUEUE_DELAY)
    job = read_job(kind, job_id)
    if job is None:
        return 1
    if job.get("throttle") and not _slot(kind, job_id, job):
        job = read_job(kind, job_id) or job
    if job.get("kill_request"):  # deleted while queued: it never runs
        update_job(kind, job_id, lambda j: j.update(finished=time.time(), started=None,
                                                    returncode=None, killed=j["kill_request"]))
        return 0
    with contextlib.ExitStack() as files:
        return _run(kind, job_id, job, files)


def _slot(kind: str, job_id: str, job: dict[str, Any]) -> bool:
    """An array's element waits (queued) until fewer than the array's throttle of its
    siblings run; False when it was deleted while it waited."""
    while True:
        with locked(f"{kind}-{job['array']}-slots"):
            current = read_job(kind, job_id)
            if current is None or current.get("kill_request"):
                return False
            running = [j for j in elements(kind, job["array"])
                       if j.get("slot") and not j.get("finished")]
            if len(running) < int(job["throttle"]):
                update_job(kind, job_id, lambda j: j.update(slot=True))
                return True
        time.sleep(TICK)


def _run(kind: str, job_id: str, job: dict[str, Any], files: contextlib.ExitStack) -> int:
    out_mode = "a" if job.get("append_output") else "w"
    # closed by the caller's ExitStack
    out = files.enter_context(open(job.get("output_path") or os.devnull, out_mode))  # noqa: SIM115
    err = out if job.get("join") or not job.get("error_path") else \
        files.enter_context(open(job["error_path"], out_mode))  # noqa: SIM115
    env = {**os.environ, **job.get("env", {})}
    proc = subprocess.Popen(["bash", job["script_path"]], cwd=job["workdir"], env=env,
                            stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                            start_new_session=True)
    started = time.time()
    update_job(kind, job_id, lambda j: j.update(started=started, pid=proc.pid))
    limit = job.get("limit_seconds")
    killing: str | None = None
    signals: list[str] = []
    next_signal = 0.0
    while True:
        try:
            returncode = proc.wait(timeout=TICK)
            break
        except subprocess.TimeoutExpired:
            pass
        now = time.time()
        if killing is None:
            current = read_job(kind, job_id) or {}
            if current.get("kill_request"):
                killing = current["kill_request"]
            elif limit is not None and now - started >= limit:
                killing = "limit"
                note = job.get("limit_message")
                if note:
                    out.write(note.format(used=int(now - started), limit=int(limit)) + "\n")
                    out.flush()
            if killing is not None:
                signals = list(job["kill_signals"][killing])
                next_signal = now
        if killing is not None and signals and now >= next_signal:
            _signal_group(proc.pid, getattr(signal, signals.pop(0)))
            next_signal = now + job.get("kill_grace", 1.0)
    _signal_group(proc.pid, signal.SIGKILL)  # whatever the script left behind
    ended = time.time()
    report = job.get("report")
    if report:
        final = {**job, "returncode": returncode, "killed": killing, "finished": ended}
        with open(job["output_path"], "a") as f:
            f.write(report_text(kind, final, started, ended))
    update_job(kind, job_id, lambda j: j.update(finished=ended, returncode=returncode,
                                                killed=killing))
    return 0


def report_text(kind: str, job: dict[str, Any], started: float, ended: float) -> str:
    module = __import__(f"standin_{kind}")
    text: str = module.report(job, started, ended)
    return text


def hms(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


if __name__ == "__main__" and sys.argv[1:2] == ["supervise"]:
    sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
    sys.exit(supervise(sys.argv[2], sys.argv[3]))
