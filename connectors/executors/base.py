"""The ``Executor`` protocol: what the service asks of every place a job can run.

Executors see jobs, directories and files, never workflows. A job's name is
deterministic (it encodes the step id and attempt) so that after a crash the
service can ask the executor whether a job of that name exists.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol, runtime_checkable

#: The file the in-job runner writes last; its presence means the job is over.
RESULT_FILE = "result.json"
#: Written by the runner while an OP reports progress.
PROGRESS_FILE = "progress.json"
#: Created exclusively by the runner that runs the step; a second launch exits at once.
#: It holds "PID HOST"; its mtime is renewed every ``CLAIM_BEAT`` seconds while it runs.
CLAIM_FILE = "claim"
CLAIM_BEAT = 30.0
#: A runner of another host whose claim went this long without a beat is taken for dead
#: (its host down): far above ``CLAIM_BEAT``, and above clock differences between hosts.
FOREIGN_CLAIM_STALE = 600.0
#: The runner's exit code when another runner already claimed the step directory.
EXIT_ALREADY_CLAIMED = 75
#: The variable that hands a job the keys its runner seals results with: JSON, step
#: directory name -> key. Never written into a file or a command line.
RESULT_KEYS_ENV = "HPCFLOW_RESULT_KEYS"
#: The variable that tells a local step's processes their step directory (a workflow they
#: submit to the same home is nested in the step).
STEP_DIR_ENV = "HPCFLOW_STEP_DIR"
#: A step's subdirectory holding one empty file per live nested workflow (named by its id):
#: while any is there, the step does not hold a local executor slot.
NESTED_DIR = "nested"
#: The field of ``result.json`` that holds the seal.
SEAL_FIELD = "seal"


def _result_mac(result: dict[str, Any], key: str) -> str:
    body = json.dumps({k: v for k, v in result.items() if k != SEAL_FIELD}, sort_keys=True,
                      separators=(",", ":"))
    return hmac.new(key.encode(), body.encode(), hashlib.sha256).hexdigest()


def seal_result(result: dict[str, Any], key: str) -> dict[str, Any]:
    """``result`` with the seal that shows the daemon the runner it started wrote it.

    >>> sealed = seal_result({"phase": "Succeeded", "outputs": {}}, "k")
    >>> trusted_result(sealed, "k") == {"phase": "Succeeded", "outputs": {}}
    True
    """
    return {**result, SEAL_FIELD: _result_mac(result, key)}


def trusted_result(result: dict[str, Any], key: str | None) -> dict[str, Any]:
    """A step's result as the daemon may use it. Outputs (which may hold pickles) are taken
    only from a result sealed under the step's key: one that another account planted or
    altered becomes an Error that says so, and nothing of it is used. An unsealed result
    without outputs (an executor's own account of a job that ended without one) is text
    only and kept as it is.

    >>> trusted_result({"phase": "Succeeded", "outputs": {"parameters": {}}}, "k")["phase"]
    'Error'
    >>> trusted_result({"phase": "Failed", "reason": "TIMEOUT"}, "k")["reason"]
    'TIMEOUT'
    """
    seal = result.get(SEAL_FIELD)
    if seal is None and result.get("outputs") is None and result.get("phase") != "Succeeded":
        return result
    if key is not None and isinstance(seal, str) and hmac.compare_digest(
            seal, _result_mac(result, key)):
        return {k: v for k, v in result.items() if k != SEAL_FIELD}
    why = "has no seal" if seal is None else "has a seal that does not match"
    return {"phase": "Error", "outputs": None, "reason": (
        f"the step's result.json {why}: it was not written by the runner hpcflow started "
        f"(another account may have planted or altered it); nothing of it was used")}


def safe_dir_name(name: str) -> str:
    """A step name as a directory name that every scheduler and shell takes as it is.

    >>> safe_dir_name("fan(3:3)")
    'fan_3_3_'
    """
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:80]


def step_dir_name(step_name: str, step_id: int, attempt: int) -> str:
    """The last part of a step's directory, the same on every executor.

    >>> step_dir_name("fan(3:3)", 12, 0), step_dir_name("fit", 7, 2)
    ('fan_3_3_-12', 'fit-7-2')
    """
    suffix = f"-{attempt}" if attempt else ""
    return f"{safe_dir_name(step_name)}-{step_id}{suffix}"


class JobState(str, Enum):
    """A job's life, as the store records it and executors report it (the values are what
    the store holds; a ``str`` enum, so rows compare equal to their members).

    >>> JobState("queued") is JobState.QUEUED, JobState.QUEUED in LIVE_JOB_STATES
    (True, True)
    >>> check_job_transition(JobState.QUEUED, JobState.RUNNING)
    >>> check_job_transition(JobState.FINISHED, JobState.RUNNING)
    Traceback (most recent call last):
    ...
    hpcflow.connectors.executors.base.InvalidJobTransition: job cannot go from finished to running
    """

    #: Recorded before the executor is asked (exactly-once: after a crash the job is found
    #: by name or submitted, never both).
    INTENT = "intent"
    #: The executor took it; nothing known yet of where it is.
    SUBMITTED = "submitted"
    #: Waiting in the scheduler's queue (its reason in the job's detail).
    QUEUED = "queued"
    RUNNING = "running"
    #: Over, with the runner's result or the scheduler's account of why there is none.
    FINISHED = "finished"
    #: Neither the scheduler nor the step directory knows it any more.
    LOST = "lost"
    #: Stopped by hpcflow (terminate, a pack's other steps).
    CANCELLED = "cancelled"
    #: The executor refused it (a bad resource, an unknown partition).
    REFUSED = "refused"
    #: Killed at the step's own ``timeout``.
    TIMED_OUT = "timeout"

    def __str__(self) -> str:
        return self.value


LIVE_JOB_STATES = frozenset({JobState.INTENT, JobState.SUBMITTED, JobState.QUEUED,
                             JobState.RUNNING})
_ENDS = frozenset({JobState.FINISHED, JobState.LOST, JobState.CANCELLED, JobState.TIMED_OUT})
#: None stands for "no row yet". A running job may be queued again (Slurm requeues a
#: preempted job); a submitted one may be seen first as running or already over.
JOB_TRANSITIONS: dict[JobState | None, frozenset[JobState]] = {
    None: frozenset({JobState.INTENT}),
    JobState.INTENT: frozenset({JobState.SUBMITTED, JobState.REFUSED, JobState.CANCELLED}),
    JobState.SUBMITTED: frozenset({JobState.QUEUED, JobState.RUNNING}) | _ENDS,
    JobState.QUEUED: frozenset({JobState.RUNNING}) | _ENDS,
    JobState.RUNNING: frozenset({JobState.QUEUED}) | _ENDS,
    JobState.FINISHED: frozenset(),
    JobState.LOST: frozenset(),
    JobState.CANCELLED: frozenset(),
    JobState.REFUSED: frozenset(),
    JobState.TIMED_OUT: frozenset(),
}


class InvalidJobTransition(RuntimeError):
    """A job state change not in the table: a bug in the engine, never a user's mistake."""


def check_job_transition(current: JobState | str | None, new: JobState | str) -> None:
    old = None if current is None else JobState(current)
    if JobState(new) not in JOB_TRANSITIONS[old]:
        raise InvalidJobTransition(f"job cannot go from {old} to {JobState(new)}")


@dataclass(frozen=True)
class JobRecord:
    """A live job as stored: enough to poll, reconcile or cancel it."""

    id: int
    name: str
    step_dir: str
    native_id: str | None
    state: str
    created_at: float
    #: The scheduler job this step shares with others (``group_size``), if any.
    pack: str | None = None


@dataclass(frozen=True)
class JobStatus:
    """What a poll found: ``submitted`` (no news), ``queued`` (``detail`` says why it
    waits), ``running``, ``finished`` (with the runner's result) or ``lost``."""

    name: str
    state: str
    result: dict[str, Any] | None = None
    detail: str | None = None
    #: (current, total) reported by a running OP, when it changed since the last poll.
    progress: tuple[int, int] | None = None


class Executor(Protocol):
    name: str
    #: Jobs wait in a scheduler's queue before they run: a submitted step stays Pending
    #: (with the scheduler's reason) until a poll reports its job ``running``.
    queues: bool

    def step_dir(self, workflow_id: str, step_id: int, step_name: str, attempt: int) -> str:
        """Where the step's files live for this executor."""

    def free_slots(self) -> int:
        """How many more jobs may be submitted now."""

    def submit(self, job_name: str, step_dir: str, files: dict[str, bytes],
               resources: dict[str, Any] | None = None) -> str:
        """Write ``files`` into ``step_dir``, start the job with ``resources`` (the step's
        executor's, over the machine's defaults), return its native id."""

    def poll(self, jobs: list[JobRecord]) -> list[JobStatus]:
        """The state of every given job, in as few calls to the outside as possible."""

    def reconcile(self, job: JobRecord, files: dict[str, bytes],
                  resources: dict[str, Any] | None = None) -> str:
        """After a crash, for a job recorded only as an intent: find it or submit it once."""

    def cancel(self, jobs: list[JobRecord]) -> None:
        """Stop the given jobs (their steps are failed by the service)."""

    def close(self) -> None:
        """Release connections and helper processes; running jobs keep running."""

    def log_tail(self, job: JobRecord, lines: int) -> str | None:
        """The last ``lines`` lines of the job's log, if the executor can read it cheaply."""


@runtime_checkable
class PacksJobs(Protocol):
    """Optional: several steps as one job (``group_size``), and, after a crash, a pack found
    by its name or its steps' traces (exactly-once for packs)."""

    def submit_pack(self, pack_name: str, members: list[tuple[str, dict[str, bytes]]],
                    resources: dict[str, Any] | None = None) -> str:
        """Write each member's files into its step directory and start one job that runs
        them one after the other; its native id. Called once per pack name, after the
        packs' intents committed."""

    def find(self, pack_name: str) -> str | None:
        """The native id of a live or finished job named ``pack_name``, if the executor has
        one (a crash came between its submission and the record of its id)."""

    def ran(self, step_dir: str) -> bool:
        """Whether a runner started in ``step_dir`` (its claim or result is there)."""


@runtime_checkable
class ReadsStepFiles(Protocol):
    """Optional: read a file of a step directory where the job ran, so large output values
    stay in files until the daemon stores them (by digest)."""

    def read_step_file(self, job: JobRecord, rel: str) -> bytes | None:
        """The file ``rel`` of the job's step directory; None when it is not there."""
