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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any, Protocol, runtime_checkable

from hpcflow import phases

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
#: The variable that names a file holding the same (for a job whose environment others can
#: read: an Argo Workflow's spec); the runner removes the file once read.
RESULT_KEYS_FILE_ENV = "HPCFLOW_RESULT_KEYS_FILE"
#: The variable that tells a local step's processes their step directory (a workflow they
#: submit to the same home is nested in the step).
STEP_DIR_ENV = "HPCFLOW_STEP_DIR"
#: A step's subdirectory holding one empty file per live nested workflow (named by its id):
#: while any is there, the step does not hold a local executor slot.
NESTED_DIR = "nested"
#: The field of ``result.json`` that holds the seal.
SEAL_FIELD = "seal"


def _result_mac(record: dict[str, Any], key: str) -> str:
    body = json.dumps({k: v for k, v in record.items() if k != SEAL_FIELD}, sort_keys=True,
                      separators=(",", ":"))
    return hmac.new(key.encode(), body.encode(), hashlib.sha256).hexdigest()


#: The entry of ``RESULT_KEYS_ENV`` that holds, for a job of several steps (a pack, an
#: array), one seed per workflow directory instead of a key per step: thousands of step
#: keys would not fit in a scheduler's limit for one variable (Grid Engine cuts a ``qsub
#: -v`` value at about 10 KB).
GROUP_SEEDS = "*"


def derived_key(seed: str, step_name: str) -> str:
    """The key of the step directory ``step_name`` under its workflow directory's seed."""
    return hmac.new(seed.encode(), b"result\0" + step_name.encode(),
                    hashlib.sha256).hexdigest()


def seal_result(record: dict[str, Any], key: str) -> dict[str, Any]:
    """The runner's ``record`` with the seal that shows the daemon the runner it started
    wrote it (``JobResult.trusted`` checks it)."""
    return {**record, SEAL_FIELD: _result_mac(record, key)}


#: A module name as ``result.json``'s ``imports`` may give it (text a tip may show).
_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")


def _import_seconds(value: Any) -> dict[str, float] | None:
    """``imports`` of a runner's record: module names to seconds; anything else is dropped.
    None when the runner did not measure (not forked by the fork server).

    >>> _import_seconds({"numpy": 0.075, "no such; name": 1, "x": "slow", "big": 1e999})
    {'numpy': 0.075}
    >>> _import_seconds({}), _import_seconds(None)
    ({}, None)
    """
    if not isinstance(value, dict):
        return None
    return {name: float(seconds) for name, seconds in list(value.items())[:16]
            if isinstance(name, str) and _MODULE_NAME.fullmatch(name)
            and isinstance(seconds, int | float) and 0 <= seconds < 1e6}


@dataclass(frozen=True)
class JobResult:
    """How a job ended, as its executor reports it: the runner's own record (read from
    ``result.json`` with ``from_record``, sealed with the step's key) or the executor's
    account of a job that ended without one (``without_runner``).

    The service uses a result only through ``trusted``: outputs (which may hold pickles)
    and a slice count come only from a record sealed under the step's key. A record that
    another account planted or altered becomes an Error that says so; an account without
    outputs is text and kept as it is.

    >>> record = seal_result({"phase": "Succeeded", "outputs": {"parameters": {}}}, "k")
    >>> JobResult.from_record(record).trusted("k").outputs
    {'parameters': {}}
    >>> JobResult.from_record({**record, "outputs": {"parameters": {"x": "1"}}}).trusted("k")
    JobResult(phase='Error', reason="the step's result.json has a seal that does not match: ...)
    >>> JobResult.without_runner("Failed", "TIMEOUT", timed_out=True).trusted("k").reason
    'TIMEOUT'
    """

    phase: str
    reason: str | None = None
    #: The runner's outputs: used only once ``trusted`` found them sealed.
    outputs: dict[str, Any] | None = None
    #: The OP raised ``TransientError``.
    transient: bool = False
    #: The node failed or the job was preempted: not the step's fault.
    infrastructure: bool = False
    #: Killed for a time limit (the scheduler's, or the step's ``timeout``).
    timed_out: bool = False
    #: For a slice group that failed: how many of its slices succeeded.
    succeeded_slices: int | None = None
    #: Seconds the step spent importing, per top-level module (``hpcflow.import_timing``):
    #: only from a local runner forked by the fork server ({} when it imported nothing),
    #: and used only once sealed.
    imports: dict[str, float] | None = field(default=None, compare=False)
    #: The runner's record as read, seal included (None for an executor's own account).
    record: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    #: ``trusted`` found the record sealed under the step's key.
    sealed: bool = field(default=False, repr=False)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> JobResult:
        """The runner's ``result.json``, as written (not yet trusted)."""
        count = record.get("succeeded_slices")
        reason = record.get("reason")
        return cls(phase=str(record.get("phase") or phases.ERROR),
                   reason=None if reason is None else str(reason),
                   outputs=record.get("outputs"), transient=bool(record.get("transient")),
                   infrastructure=bool(record.get("infrastructure")),
                   timed_out=bool(record.get("timed_out")),
                   succeeded_slices=count if isinstance(count, int) else None,
                   imports=_import_seconds(record.get("imports")), record=record)

    @classmethod
    def from_bytes(cls, data: bytes) -> JobResult | None:
        """A ``result.json`` as read; None while it is still being written (not JSON yet)."""
        try:
            record = json.loads(data)
        except ValueError:
            return None
        return cls.from_record(record) if isinstance(record, dict) else None

    @classmethod
    def without_runner(cls, phase: str, reason: str | None, *, infrastructure: bool = False,
                       timed_out: bool = False) -> JobResult:
        """The executor's account of a job that ended without the runner's record (the
        scheduler killed it, its outputs could not be brought back, ...)."""
        return cls(phase=phase, reason=reason, infrastructure=infrastructure,
                   timed_out=timed_out)

    @classmethod
    def lost(cls, detail: str | None) -> JobResult:
        """Neither the executor nor the step directory knows the job any more: an Error."""
        return cls(phase=phases.ERROR, reason=detail)

    @classmethod
    def past_deadline(cls, detail: str | None) -> JobResult:
        """Killed by the engine at the step's ``timeout``."""
        return cls(phase=phases.FAILED, reason=detail, timed_out=True)

    @classmethod
    def unusable(cls, why: str) -> JobResult:
        """The job ended but its result cannot be used (its value files could not be
        stored, say)."""
        return cls(phase=phases.ERROR, reason=why)

    @property
    def succeeded(self) -> bool:
        return self.phase == phases.SUCCEEDED

    def trusted(self, keys: str | Sequence[str] | None) -> JobResult:
        """This result as the daemon may use it, checked against the step's keys (its own,
        and the one derived from its workflow directory's seed for a job of several)."""
        if self.sealed:
            return self
        seal = self.record.get(SEAL_FIELD) if self.record is not None else None
        candidates = [keys] if isinstance(keys, str) else list(keys or [])
        if self.record is not None and isinstance(seal, str) and any(
                hmac.compare_digest(seal, _result_mac(self.record, key)) for key in candidates):
            return replace(self, sealed=True)
        if self.outputs is None and not self.succeeded:
            return replace(self, succeeded_slices=None)  # text only
        why = "has no seal" if seal is None else "has a seal that does not match"
        return JobResult.unusable(
            f"the step's result.json {why}: it was not written by the runner hpcflow started "
            f"(another account may have planted or altered it); nothing of it was used")


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


#: The file a job's runner reads its document from.
STEP_FILE = "step.json"
#: The pickled OP of a Python step, beside ``step.json``.
OP_FILE = "op.pkl"


@dataclass(frozen=True)
class JobSpec:
    """What one step's job needs, built once by the service: the runner's document (written
    as ``step.json``), the files beside it, and the resources. Connectors read its fields
    and change the document with ``with_runner`` (a relay, a shipped runner); none of them
    parses or rewrites ``step.json``.

    >>> job = JobSpec("hpcflow-w-1-0", "/runs/w/a-1", {"template": {"image": "py:3"},
    ...               "storage": {"kind": "local"}}, {"op.pkl": b"..."}, {"time": "1:00"})
    >>> job.image, job.storage["kind"], sorted(job.to_files())
    ('py:3', 'local', ['op.pkl', 'step.json'])
    >>> job.with_runner(wake_dir=None).runner["wake_dir"] is None
    True
    """

    #: The job's deterministic name (``hpcflow-WF-STEP-ATTEMPT``): found by it after a crash.
    name: str
    step_dir: str
    #: The runner's document: the step's template, inputs, storage, where to write.
    runner: Mapping[str, Any]
    #: The files beside it: the pickled OP, input values stored by digest.
    files: Mapping[str, bytes] = field(default_factory=dict)
    #: The step's executor resources (``Step(executor=...)``), without ``group_size``; the
    #: executor puts them over its machine's defaults.
    resources: Mapping[str, Any] = field(default_factory=dict)
    #: The step's ``timeout`` in seconds (the engine enforces it; an executor may also tell
    #: its scheduler).
    timeout: float | None = None

    @property
    def image(self) -> str | None:
        """The container image the step's template names (``image=``), if any."""
        image = self.runner["template"].get("image")
        return str(image) if image else None

    @property
    def storage(self) -> dict[str, Any]:
        """The artifact storage the step reads and writes (its spec, without secrets)."""
        return dict(self.runner["storage"])

    def with_runner(self, **changes: Any) -> JobSpec:
        """This job with keys of the runner's document changed."""
        return replace(self, runner={**self.runner, **changes})

    def with_files(self, files: Mapping[str, bytes]) -> JobSpec:
        """This job with more files beside the document."""
        return replace(self, files={**self.files, **files})

    def to_files(self) -> dict[str, bytes]:
        """The files to put in the step directory: the document and the files beside it."""
        return {**self.files, STEP_FILE: json.dumps(self.runner).encode()}


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
    result: JobResult | None = None
    detail: str | None = None
    #: (current, total) reported by a running OP, when it changed since the last poll.
    progress: tuple[int, int] | None = None


class Executor(Protocol):
    """Where jobs run: the methods the service calls on every executor, from its one loop.

    Guarantees every executor gives: ``submit`` starts exactly one job per call (the service
    records the intent before and the id after, and after a crash calls ``reconcile``
    instead; a ``ClaimGuarded`` executor's both in one transaction); ``poll`` and ``cancel``
    may be called again with the same jobs at any time (idempotent); no method blocks for
    long (a slow machine is called off the loop, or ``TransportError`` tells the service to
    try again later); none raises for a job that ended or vanished (``poll`` reports it)."""

    name: str
    #: Jobs wait in a scheduler's queue before they run: a submitted step stays Pending
    #: (with the scheduler's reason) until a poll reports its job ``running``.
    queues: bool

    def step_dir(self, workflow_id: str, step_id: int, step_name: str, attempt: int) -> str:
        """Where the step's files live for this executor (deterministic: the same arguments
        give the same directory, on every engine)."""

    def free_slots(self) -> int:
        """How many more jobs may be submitted now (never blocks)."""

    def submit(self, job: JobSpec) -> str:
        """Put the job's files in its step directory and start it, once; its native id.
        Raises ``HpcflowError`` when the job is refused (the step fails with that reason),
        ``TransportError`` when the machine cannot be reached (the job may or may not
        exist: the service reconciles it)."""

    def poll(self, jobs: list[JobRecord]) -> list[JobStatus]:
        """The state of every given job, in as few calls to the outside as possible (one per
        machine): a ``JobStatus`` per job, in order. ``finished`` carries a ``JobResult``."""

    def reconcile(self, record: JobRecord, job: JobSpec) -> str:
        """After a crash, for a job recorded only as an intent: find it (by its name, or the
        runner's traces in its directory) or submit it, never both; its native id."""

    def cancel(self, jobs: list[JobRecord]) -> None:
        """Stop the given jobs and their processes (their steps are failed by the service).
        Idempotent; a job that already ended is no error."""

    def close(self) -> None:
        """Release connections and helper processes; running jobs keep running."""

    def log_tail(self, job: JobRecord, lines: int) -> str | None:
        """The last ``lines`` lines of the job's log, if the executor can read it cheaply;
        None otherwise (never raises for an unreachable machine)."""


@runtime_checkable
class PacksJobs(Protocol):
    """Optional: several steps as one job (``group_size``), and, after a crash, a pack found
    by its name or its steps' traces (exactly-once for packs)."""

    def submit_pack(self, pack_name: str, members: list[JobSpec]) -> str:
        """Put each member's files in its step directory and start one job, called
        ``pack_name``, that runs them one after the other (with the first member's
        resources: a pack's members share them); its native id. Called once per pack name,
        after the pack's intents committed."""

    def find(self, pack_name: str) -> str | None:
        """The native id of a live or finished job named ``pack_name``, if the executor has
        one (a crash came between its submission and the record of its id)."""

    def ran(self, step_dir: str) -> bool:
        """Whether a runner started in ``step_dir`` (its claim or result is there)."""


#: The native id of a job whose step ran though its submission was never recorded (a
#: crash came between): its runner's traces were found and its result is adopted.
ADOPTED = "adopted"

#: The name of an array job ends with this (its elements' job rows carry it as their pack).
ARRAY_SUFFIX = "-array"


def is_array(pack: str | None) -> bool:
    """The job row is an element of an array job (its pack names the array), not a step of
    a pack (one job running several steps in turn)."""
    return bool(pack) and str(pack).endswith(ARRAY_SUFFIX)


@runtime_checkable
class ArraysJobs(Protocol):
    """Optional: several steps as one array job (``array_size``), each an element with its
    own native id, state, log and cancellation; after a crash, an array found by its name."""

    #: Whether this one can (a batch executor whose scheduler runs arrays).
    runs_arrays: bool

    def submit_array(self, array_name: str, members: list[JobSpec],
                     throttle: int | None) -> list[str]:
        """Put each member's files in its step directory and submit one array job called
        ``array_name`` with an element per member (the first member's resources: they share
        them); the elements' native ids, in the members' order. Called once per array name,
        after the intents committed."""

    def element_ids(self, array_id: str, count: int) -> list[str]:
        """The native ids of the first ``count`` elements of the array job ``array_id``."""

    def find(self, pack_name: str) -> str | None: ...

    def ran(self, step_dir: str) -> bool: ...


@runtime_checkable
class ClaimGuarded(Protocol):
    """Optional: a second start of a step directory never runs the step again (its runner
    exits when it finds the step's claim taken, and ``poll`` adopts the claimed directory),
    and ``submit`` returns at once. The service then records a job's intent and its id in
    one transaction: a crash before that commit leaves no record, and submitting the step
    again is harmless."""

    claim_guarded: bool


@runtime_checkable
class ReadsStepFiles(Protocol):
    """Optional: read a file of a step directory where the job ran, so large output values
    stay in files until the daemon stores them (by digest)."""

    def read_step_file(self, job: JobRecord, rel: str) -> bytes | None:
        """The file ``rel`` of the job's step directory; None when it is not there."""


#: (executor class, optional protocol) -> whether that class has it.
_CAPABLE: dict[tuple[type, type], bool] = {}


def _capable(executor: object, protocol: type) -> bool:
    """``isinstance(executor, protocol)`` for the optional protocols above, decided once per
    executor class. A runtime-checkable Protocol's ``isinstance`` inspects each of its
    members on every call (tens of µs), and the engine asks several times per step; an
    executor's capabilities are its class's (what a protocol names is a method, or an
    attribute every instance has)."""
    key = (type(executor), protocol)
    found = _CAPABLE.get(key)
    if found is None:
        found = _CAPABLE[key] = isinstance(executor, protocol)
    return found


def packs_jobs(executor: object) -> bool:
    return _capable(executor, PacksJobs)


def runs_arrays(executor: object) -> bool:
    """An ``ArraysJobs`` executor that can now (its scheduler runs arrays)."""
    return _capable(executor, ArraysJobs) and bool(getattr(executor, "runs_arrays", False))


def claim_guarded(executor: object) -> bool:
    return _capable(executor, ClaimGuarded)


def reads_step_files(executor: object) -> bool:
    return _capable(executor, ReadsStepFiles)
