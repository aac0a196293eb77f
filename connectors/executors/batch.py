"""``BatchExecutor``: each step is a batch job on a machine's scheduler (Slurm, ...), reached
through a transport (this machine, or SSH).

The job runs ``python -m hpcflow.daemon.runner STEP_DIR`` like a local step; the runner's
``result.json`` says how the step went. The scheduler's word matters only when there is no
result: a job killed for its time limit, its memory, a node failure or preemption, or
cancelled by someone else. One poll is one scheduler call for every live job of the machine.
"""

from __future__ import annotations

import logging
import posixpath
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from hpcflow import phases
from hpcflow.config_file import MachineConfig
from hpcflow.connectors.executors.base import (
    ADOPTED,
    ARRAY_SUFFIX,
    CLAIM_FILE,
    LIVE_JOB_STATES,
    RESULT_FILE,
    JobRecord,
    JobResult,
    JobSpec,
    JobState,
    JobStatus,
    is_array,
    step_dir_name,
)
from hpcflow.connectors.executors.queue_hold import QueueHold
from hpcflow.connectors.executors.relay import (
    bring_back_outputs,
    prepare_remote_job,
    storage_env,
    with_environment,
)
from hpcflow.connectors.schedulers.base import (
    DONE,
    NATIVE_ID,
    QUEUED,
    ArrayScheduler,
    JobScript,
    QueueLimitError,
    Scheduler,
    SchedulerError,
    SchedulerState,
    submit_limit,
)
from hpcflow.connectors.transports.base import (
    CommandResult,
    CommandTimeout,
    Transport,
    TransportError,
)
from hpcflow.errors import HpcflowError
from hpcflow.secrets import ResultKeys

log = logging.getLogger("hpcflow.engine")

JOB_SCRIPT = "job.sh"
#: A job the scheduler no longer knows and that left no result is lost after this long
#: (covers a result file that a shared filesystem shows late).
VANISHED_GRACE = 30.0


def container_image(image: str) -> str:
    """dflow's images are registry references; apptainer wants them as ``docker://...``.

    >>> container_image("python:3.11"), container_image("/images/md.sif")
    ('docker://python:3.11', '/images/md.sif')
    """
    if image.startswith(("/", "docker://", "oras://", "library://", "shub://")) or \
            image.endswith(".sif"):
        return image
    return f"docker://{image}"


def _live_status(name: str, state: SchedulerState) -> JobStatus:
    """A job the scheduler still has: waiting in its queue (and why), or running."""
    if state.state == QUEUED:
        return JobStatus(name, JobState.QUEUED, detail=state.waiting_for or state.raw)
    return JobStatus(name, JobState.RUNNING)


class BatchExecutor:
    queues = True

    def __init__(self, machine: MachineConfig, scheduler: Scheduler, transport: Transport,
                 work_root: str, python: str, result_keys: ResultKeys | None = None) -> None:
        self.name = machine.name
        #: Hands each job the keys its runner seals results with (through its environment).
        self.result_keys = result_keys
        self.machine = machine
        self.scheduler = scheduler
        self.transport = transport
        self.work_root = work_root.rstrip("/")
        self.python = python
        self._live = 0
        #: Runner bundles known to be on the machine (machines that do not share our files).
        self._shipped: set[str] = set()
        #: When recent submissions were made (``submit_per_minute``).
        self._submitted_at: deque[float] = deque()
        #: Jobs the last poll could not find, with when that was first seen.
        self._vanished: dict[str, float] = {}
        #: The machine's ``max_jobs`` as lowered by refusals for a queue limit.
        self.queue_hold = QueueHold()
        #: The slowest scheduler call of the last poll, in seconds, and whether one was
        #: killed at ``scheduler_timeout`` (the daemon backs off polling a slow scheduler).
        self.call_seconds = 0.0
        self.call_timed_out = False

    # -- the Executor protocol --------------------------------------------------------
    def step_dir(self, workflow_id: str, step_id: int, step_name: str, attempt: int) -> str:
        return f"{self.work_root}/{workflow_id}/{step_dir_name(step_name, step_id, attempt)}"

    def free_slots(self) -> int:
        """Jobs that may be submitted now: room in the queue (``max_jobs``, lowered while the
        scheduler refuses jobs for a limit: ``queue_hold``) and in the last minute's
        submissions (``submit_per_minute``)."""
        free = self.queue_hold.allowed(self.machine.max_jobs, time.time()) - self._live
        rate = self.machine.submit_per_minute
        self._forget_submissions_before(time.monotonic() - 60.0)
        if rate is not None:
            free = min(free, rate - len(self._submitted_at))
        return max(0, free)

    def submissions(self) -> dict[str, int | None]:
        """For ``hpcflow daemon status``: submissions in the last 60 s, the machine's limit
        (``submit_per_minute``; None: none) and its jobs in the queue now."""
        self._forget_submissions_before(time.monotonic() - 60.0)
        return {"last_minute": len(self._submitted_at),
                "per_minute_limit": self.machine.submit_per_minute, "live": self._live}

    def _forget_submissions_before(self, cutoff: float) -> None:
        while self._submitted_at and self._submitted_at[0] < cutoff:
            self._submitted_at.popleft()

    def submit(self, job: JobSpec) -> str:
        """Write the step's files and job script, submit it; the job id. Raises
        ``SchedulerError`` when the scheduler refuses the job, ``TransportError`` when the
        machine cannot be reached (then the job may or may not exist: reconcile)."""
        prepare, env = self._write_step(job)
        return self._submit_script(job.name, job.step_dir, [job.step_dir], prepare,
                                   job.resources, job.image, env)

    def submit_pack(self, pack_name: str, members: list[JobSpec]) -> str:
        """Several steps as ONE scheduler job called ``pack_name`` (``group_size``): the
        runner runs them one after the other, each with its own directory, log and result.
        The job's own output goes to ``packs/PACK/log.txt``."""
        prepare, env = self._write_members(members)
        pack_dir = f"{posixpath.dirname(members[0].step_dir)}/packs/{pack_name}"
        return self._submit_script(pack_name, pack_dir, [job.step_dir for job in members],
                                   prepare, members[0].resources, members[0].image, env)

    @property
    def runs_arrays(self) -> bool:
        return isinstance(self.scheduler, ArrayScheduler)

    @property
    def grouping(self) -> dict[str, Any]:
        """The machine's choice between arrays and packs, for steps that make none."""
        return self.machine.grouping

    def submit_array(self, array_name: str, members: list[JobSpec],
                     throttle: int | None) -> list[str]:
        """Several steps as ONE array job called ``array_name`` (``array_size``): element i
        runs member i in its own directory, with its own log and result; each element is a
        job of its own in the queue (its own state, cancelled alone). The scheduler's own
        messages for element i go to ``arrays/ARRAY/log-i.txt``."""
        assert array_name.endswith(ARRAY_SUFFIX)
        prepare, env = self._write_members(members)
        array_dir = f"{posixpath.dirname(members[0].step_dir)}/arrays/{array_name}"
        native = self._submit_script(array_name, array_dir, [job.step_dir for job in members],
                                     prepare, members[0].resources, members[0].image, env,
                                     array=True, throttle=throttle)
        self._live += len(members) - 1  # each element is a queue entry
        return self.element_ids(native, len(members))

    def element_ids(self, array_id: str, count: int) -> list[str]:
        assert isinstance(self.scheduler, ArrayScheduler)
        return [self.scheduler.element_id(array_id, i) for i in range(1, count + 1)]

    def _write_members(self, members: list[JobSpec]) -> tuple[list[str], dict[str, str]]:
        """Each member's files in its step directory; the job script lines they need (the
        same for all: one template) and the variables the job must get."""
        prepare: list[str] = []
        env: dict[str, str] = {}
        for job in members:
            prepare, step_env = self._write_step(job)
            env.update(step_env)
        return prepare, env

    def _containerised(self, job: JobSpec) -> bool:
        return bool(self.machine.container and job.image)

    def _relays(self, job: JobSpec) -> bool:
        """Whether the daemon carries the step's artifacts (``storage_access``)."""
        if self.machine.storage_access != "auto":
            return self.machine.storage_access == "relay"
        if job.storage.get("kind") == "local":
            return not self.transport.shares_files or self._containerised(job)
        # an object store: the nodes reach it, unless the step runs in an image (which
        # would need boto3 and the credentials inside it)
        return self._containerised(job)

    def _write_step(self, job: JobSpec) -> tuple[list[str], dict[str, str]]:
        """Put a step's files on the machine; the job script lines it needs there, and the
        variables its job must get (S3 credentials: through the submission's environment,
        never in a file). A job in a container sees only its bound directories: it gets the
        shipped runner as a remote job does."""
        prepare = list(self.machine.prepare)
        relay = self._relays(job)
        ship = not self.transport.shares_files or self._containerised(job)
        env = {} if relay else storage_env(job.storage)
        if relay or ship:
            job, shipping = prepare_remote_job(self.transport, self.work_root, job,
                                               self._shipped, relay=relay, ship=ship)
            prepare += shipping
        if env:
            # the job's keys come from its environment only: its spec names no secret file
            job = job.with_runner(storage={**job.storage, "secret_ref": None})
        self._write(job.step_dir, job.to_files())
        return prepare, env

    def _write(self, directory: str, files: dict[str, bytes]) -> None:
        try:
            self.transport.write_files(directory, files)
        except TransportError:
            raise
        except OSError as exc:  # permission denied, disk full: the step cannot run there
            raise SchedulerError(f"cannot write the job's files in {directory} on "
                                 f"{self.name}: {exc}") from exc

    def _submit_script(self, name: str, job_dir: str, step_dirs: list[str],
                       prepare: list[str], resources: Mapping[str, Any],
                       image: str | None = None, env: dict[str, str] | None = None,
                       array: bool = False, throttle: int | None = None) -> str:
        runner = [self.python, "-m", "hpcflow.daemon.runner"]
        # Output reaches the job's log as it is written: `hpcflow logs` shows a running job.
        # What the job writes is the user's only, whatever umask the node gives it.
        prepare = ["umask 077", *prepare, "export PYTHONUNBUFFERED=1"]
        if self.machine.container and image:
            from hpcflow.connectors.executors.containers import container_runner

            runner, lines = container_runner(self.machine, self.work_root, image, job_dir,
                                             sorted(env or {}))
            prepare = [*prepare, *lines]
        # Paths relative to the job's directory (its cwd): `ps` on a shared node shows other
        # accounts no workflow id.
        # An array's element runs in its own directory (the script moves there).
        command = runner + (["."] if array or (len(step_dirs) == 1 and step_dirs[0] == job_dir)
                            else ["--pack", *(posixpath.relpath(d, job_dir) for d in step_dirs)])
        if self.result_keys is not None:
            env = {**(env or {}), **self.result_keys.env(step_dirs)}
        script = self.scheduler.render(JobScript(
            name=name, step_dir=job_dir, command=command, prepare=prepare,
            resources={**self.machine.resources, **resources},
            elements=tuple(step_dirs) if array else (), throttle=throttle))
        self._write(job_dir, {JOB_SCRIPT: script.encode()})
        argv = self.scheduler.submit_argv(f"{job_dir}/{JOB_SCRIPT}", sorted(env or {}))
        if env:
            argv, values = with_environment(argv, env)
            done = self._call(argv, input_text=values)
        else:
            done = self._call(argv)
        if not done.ok:
            said = (done.stderr or done.stdout).strip()
            limit = submit_limit(self.scheduler, f"{done.stderr}\n{done.stdout}")
            if limit is not None:  # not the job's fault: it waits for room in the queue
                self.queue_hold.refused(self._live, time.time(), limit)
                raise QueueLimitError(f"held back: {limit}; submitted again as jobs leave "
                                      "the queue")
            raise SchedulerError(f"{self.scheduler.submit_argv('')[0]} refused the job: "
                                 f"{said[:500]}")
        self._live += 1
        self.queue_hold.accepted(self._live, self.machine.max_jobs, time.time())
        self._submitted_at.append(time.monotonic())
        return self.scheduler.parse_submit(done.stdout)

    def poll(self, jobs: list[JobRecord]) -> list[JobStatus]:
        if not jobs:
            self._live = 0
            return []
        ids = [j.native_id for j in jobs if j.native_id]
        self.call_seconds, self.call_timed_out = 0.0, False
        done = self._call(self.scheduler.poll_argv(ids))  # a timeout: slowness, try later
        if not done.ok:
            raise TransportError(f"{self.scheduler.poll_argv(ids)[0]} failed: "
                                 f"{done.stderr.strip()[:300]}")
        states = self.scheduler.parse_poll(done.stdout)
        # Jobs the scheduler has forgotten: most left their result; only the others are worth
        # an accounting query (which can scan a whole accounting file per job).
        read = {j.name: self._result(j) for j in jobs if (j.native_id or "") not in states}
        unexplained = sorted({j.native_id for j in jobs
                              if j.native_id and j.name in read and read[j.name] is None})
        if unexplained:
            states.update(self._accounting(unexplained))
        statuses = [self._status(job, states.get(job.native_id or ""), read)
                    for job in jobs]
        lingering = sorted({j.native_id for j, st in zip(jobs, statuses, strict=True)
                            if j.native_id and st.state == JobState.FINISHED
                            and getattr(states.get(j.native_id), "lingers", False)})
        if lingering:  # e.g. held in error: it would never run, and must not run later
            self._call(self.scheduler.cancel_argv(lingering))
        self._live = sum(1 for s in statuses if s.state in LIVE_JOB_STATES)
        return statuses

    def _accounting(self, ids: list[str]) -> dict:
        argv = self.scheduler.accounting_argv(ids)
        if argv is None:
            return {}
        try:
            done = self._call(argv)
        except CommandTimeout:  # counted as slowness; the jobs are asked about next poll
            return {}
        return self.scheduler.parse_accounting(done.stdout) if done.ok else {}

    def _call(self, argv: list[str], input_text: str | None = None) -> CommandResult:
        """A scheduler command, killed after the machine's ``scheduler_timeout``; how long it
        took (or that it was killed) goes into ``call_seconds``/``call_timed_out``."""
        timeout = self.machine.scheduler_timeout
        started = time.monotonic()
        try:
            return self.transport.run(argv, timeout=timeout, input_text=input_text)
        except CommandTimeout:
            self.call_timed_out = True
            raise
        finally:
            self.call_seconds = max(self.call_seconds, time.monotonic() - started)

    def _status(self, job: JobRecord, state: Any,
                read: dict[str, JobResult | None]) -> JobStatus:
        """``read`` holds the results this poll already read, by job name."""
        alone = job.pack is None or is_array(job.pack)  # an array's element is a job itself
        if state is not None and state.state != DONE and alone:
            self._vanished.pop(job.name, None)
            return _live_status(job.name, state)
        # A packed step can end while its pack's job goes on with the next steps.
        result = read[job.name] if job.name in read else self._result(job)
        if result is None and state is not None and state.state != DONE:
            return _live_status(job.name, state)
        if result is not None:
            self._vanished.pop(job.name, None)
            if result.succeeded:  # a relayed job's outputs come back
                try:
                    bring_back_outputs(self.transport, job.step_dir, result.outputs)
                except TransportError:
                    raise
                except (HpcflowError, OSError) as exc:
                    result = JobResult.without_runner(
                        phases.ERROR, f"cannot bring the outputs back from {self.name}: {exc}")
            return JobStatus(job.name, JobState.FINISHED, result)
        if state is not None:  # ended without the runner's word
            reason = state.reason or f"the job ended ({state.raw}) without a result"
            code = f" (exit code {state.exit_code})" if state.exit_code else ""
            return JobStatus(job.name, JobState.FINISHED, JobResult.without_runner(
                phases.FAILED, f"{reason}{code}; see {job.step_dir}/log.txt",
                infrastructure=state.infrastructure, timed_out=state.timed_out))
        first = self._vanished.setdefault(job.name, time.time())
        if time.time() - first < VANISHED_GRACE:
            return JobStatus(job.name, JobState.SUBMITTED)  # no news: nothing changes
        self._vanished.pop(job.name, None)
        return JobStatus(job.name, JobState.LOST, detail=(
            f"job {job.native_id} is unknown to {self.scheduler.name} and left no result; "
            f"see {job.step_dir}/log.txt"))

    def _result(self, job: JobRecord) -> JobResult | None:
        """The runner's result on the machine; None when there is none yet (or it is being
        written: the next poll reads it)."""
        data = self.transport.read_file(f"{job.step_dir}/{RESULT_FILE}")
        return None if data is None else JobResult.from_bytes(data)

    def read_step_file(self, job: JobRecord, rel: str) -> bytes | None:
        """A file the runner left in the step's directory (a large output value), or None."""
        return self.transport.read_file(f"{job.step_dir}/{rel}")

    def find(self, job_name: str) -> str | None:
        """The id of a live job called ``job_name``, if the scheduler knows one."""
        done = self._call(self.scheduler.find_argv(job_name))
        if not done.ok:
            raise TransportError(f"cannot look for job {job_name}: {done.stderr.strip()[:300]}")
        found = self.scheduler.parse_find(done.stdout)
        return found[0] if found else None

    def ran(self, step_dir: str) -> bool:
        """The runner left traces in ``step_dir`` (its claim or its result)."""
        return any(self.transport.read_file(f"{step_dir}/{marker}", max_bytes=64) is not None
                   for marker in (RESULT_FILE, CLAIM_FILE))

    def reconcile(self, record: JobRecord, job: JobSpec) -> str:
        """After a crash between the intent and the recorded job id: find the job by its
        name, or by the runner's traces in its directory, else submit it (once)."""
        found = self.find(record.name)
        if found:
            log.info("job %s found in %s as %s: not submitted again", record.name,
                     self.scheduler.name, found)
            return found
        if self.ran(record.step_dir):
            return record.native_id or ADOPTED
        return self.submit(job)

    def cancel(self, jobs: list[JobRecord]) -> None:
        ids = sorted({j.native_id for j in jobs
                      if j.native_id and NATIVE_ID.match(j.native_id) and j.native_id != ADOPTED})
        if ids:
            done = self._call(self.scheduler.cancel_argv(ids))
            if not done.ok:
                log.warning("cancelling %s: %s", ids, done.stderr.strip()[:300])

    def log_tail(self, job: JobRecord, lines: int) -> str | None:
        try:
            data = self.transport.read_file(f"{job.step_dir}/log.txt", max_bytes=16384)
        except OSError:  # unreachable right now: the failure is recorded without its log
            return None
        if data is None:
            return None
        tail = data.decode(errors="replace").splitlines()[-lines:]
        return "\n".join(tail) if tail else None

    def close(self) -> None:
        self.transport.close()
