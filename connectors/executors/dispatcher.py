"""``DispatcherJobs``: steps as dpdispatcher jobs, without the service loop ever waiting on
dpdispatcher.

Ready steps that agree on their resources form one dpdispatcher ``Submission`` (up to
``group_size`` steps, which dpdispatcher then runs as one job). Each task runs hpcflow's
runner on its step directory, as every other executor does, so outcome, exit code and log are
the same; the runner is shipped as a zip (``bundle.py``) with the submission, and artifacts
travel in the step directory (the relay of ``relay.py``, relative to the step directory).

Every dpdispatcher call (connecting, uploading, ``sbatch``, ``squeue``, downloading) runs in a
bounded pool of threads. ``submit`` writes the step files and a record of the Submission
(``$HPCFLOW_HOME/dispatcher/MACHINE/PACK.json``) and returns at once; ``poll`` hands in-flight
work to the pool and reports what the last call found. One call, ``_advance``, does whatever
the Submission needs next, from nothing but the record and dpdispatcher's own state:

- rebuild the Submission (the same tasks and resources give the same hash), recover its state
  from dpdispatcher's ``HASH.json``; a submission cut off before that file was written is
  recovered from the ``JOBHASH_job_id`` files dpdispatcher writes right after each ``sbatch``;
- submit the jobs still unsubmitted (the first call does the upload and submission that
  ``run_submission(exit_on_submit=True)`` does, without its fixed one-second sleep);
- otherwise poll the jobs; once every job has ended, download results and logs, note that in
  the record, then clean the remote directory (``clean``).

So a daemon killed at any instant submits nothing twice: either dpdispatcher's state or its
job id files name the job, and the runner's claim file stops a step from running twice even
in the instant between ``sbatch`` returning and its id being written.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import sys
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpcflow import faults, phases
from hpcflow.connectors.dispatcher import merge_dicts
from hpcflow.connectors.executors.base import (
    CLAIM_FILE,
    RESULT_FILE,
    JobRecord,
    JobResult,
    JobSpec,
    JobState,
    JobStatus,
    safe_dir_name,
    step_dir_name,
)
from hpcflow.connectors.executors.bundle import runner_bundle
from hpcflow.connectors.executors.dispatcher_machine import (
    LOCAL_CONTEXTS,
    SSH_CONTEXTS,
    DispatcherMachine,
)
from hpcflow.connectors.executors.local import read_log_tail, read_result
from hpcflow.connectors.executors.offloop import OffLoopPool
from hpcflow.connectors.executors.relay import (
    RELAY_DIR,
    bring_back_outputs,
    put_inputs,
    relayed,
)
from hpcflow.connectors.transports.base import TransportError
from hpcflow.connectors.transports.local import LocalTransport
from hpcflow.errors import HpcflowError
from hpcflow.secrets import ResultKeys

log = logging.getLogger("hpcflow.engine")

LOG_FILE = "log.txt"
#: dpdispatcher's batch type without a scheduler: jobs are plain processes of the machine.
SHELL = "Shell"
BUNDLE_DIR = ".hpcflow"
_import_lock = threading.Lock()


def import_dpdispatcher(home: Path) -> Any:
    """dpdispatcher, with its files under ``$HPCFLOW_HOME/dpdispatcher`` instead of the user's
    home and the working directory: its failure records, its Bohrium cache and its log."""
    with _import_lock:
        import importlib

        state = home / "dpdispatcher"
        state.mkdir(mode=0o700, parents=True, exist_ok=True)
        if "dpdispatcher" not in sys.modules:
            _import_without_side_files(state)
        dpdispatcher = importlib.import_module("dpdispatcher")
        record = importlib.import_module("dpdispatcher.utils.record")
        dlog = importlib.import_module("dpdispatcher.dlog")
        record.record.record_directory = state / "submission"
        record.record.record_directory.mkdir(parents=True, exist_ok=True)
        from hpcflow.connectors.executors import dispatcher_ssh

        dispatcher_ssh.install(importlib.import_module("dpdispatcher.contexts.ssh_context"))
        for name in ("dp_cloud_server_context", "openapi_context"):
            try:
                module = importlib.import_module(f"dpdispatcher.contexts.{name}")
            except ImportError:
                continue
            module.DP_CLOUD_SERVER_HOME_DIR = str(state / "dp_cloud_server") + "/"  # type: ignore[attr-defined]
        logger = dlog.dlog
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        (home / "logs").mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(home / "logs" / "dpdispatcher.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
        return dpdispatcher


def _import_without_side_files(state: Path) -> None:
    """Import dpdispatcher without the two files it makes at import time, and without
    touching the working directory or the environment (other threads, and the processes
    they start, must never see either change): its log in the working directory is held
    back by a filter on its logger (the file handler opens a file only when something is
    written), and its record directory, made under ``Path.home()``, goes to ``state``:
    ``Path.home`` answers ``state`` for the import's duration. hpcflow itself finds homes
    with ``os.path.expanduser``, never ``Path.home``."""
    import importlib
    import pathlib

    logger = logging.getLogger("dpdispatcher")

    def nothing(record: logging.LogRecord) -> bool:
        return False

    home_method = pathlib.Path.__dict__["home"]
    logger.addFilter(nothing)
    setattr(pathlib.Path, "home", classmethod(lambda cls: cls(state)))  # noqa: B010
    try:
        importlib.import_module("dpdispatcher")
    finally:
        setattr(pathlib.Path, "home", home_method)  # noqa: B010
        logger.removeFilter(nothing)


def submission_resources(machine: dict[str, Any], step: dict[str, Any],
                         tasks: int) -> dict[str, Any]:
    """dpdispatcher's resources for a Submission of ``tasks`` steps as one job: the step's
    over the machine's defaults, table by table.

    >>> submission_resources({"cpu_per_node": 2, "envs": {"A": "1"}, "queue_name": "q"},
    ...                      {"cpu_per_node": 4, "envs": {"B": "2"}}, 3)
    {'number_node': 1, 'cpu_per_node': 4, 'envs': {'A': '1', 'B': '2'}, 'queue_name': 'q', \
'group_size': 3}
    """
    resources: dict[str, Any] = {"number_node": 1, "cpu_per_node": 1}
    merge_dicts(resources, machine)
    merge_dicts(resources, step)
    resources["group_size"] = tasks  # one job for the whole Submission
    return resources


@dataclass
class Outcome:
    """What the last ``_advance`` of a Submission found."""

    #: Every job ended and its files are back in the step directories.
    done: bool
    #: step directory -> why dpdispatcher gave up on its job (ended without hpcflow's result).
    failures: dict[str, str] = field(default_factory=dict)


class DispatcherJobs:
    #: dpdispatcher reports a job's queue state only as "waiting": steps run from submission.
    queues = False

    def __init__(self, machine: DispatcherMachine, home: Path, wake_dir: Path,
                 result_keys: ResultKeys | None = None) -> None:
        self.name = machine.name
        #: The keys runners seal results with: in the job script's exports (dpdispatcher
        #: has no other way into a job's environment), in the private remote root.
        self.result_keys = result_keys
        self.wake_dir = wake_dir
        self.machine = machine
        self.home = home
        self.runs_root = home / "runs"
        self.records = home / "dispatcher" / machine.name
        self.records.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._dp = import_dpdispatcher(home)
        self._pool = OffLoopPool(machine.max_parallel_calls, f"dispatcher-{machine.name}")
        self._thread_machines = threading.local()
        self._flights: dict[str, Future] = {}
        self._done: dict[str, Outcome] = {}
        self._errors: dict[str, int] = {}
        self._live = 0
        self._files = LocalTransport()
        if machine.bohrium_ticket:
            os.environ.setdefault("BOHR_TICKET", machine.bohrium_ticket)

    # -- the Executor protocol --------------------------------------------------------
    def step_dir(self, workflow_id: str, step_id: int, step_name: str, attempt: int) -> str:
        return str(self.runs_root / workflow_id / step_dir_name(step_name, step_id, attempt))

    def free_slots(self) -> int:
        return max(0, self.machine.max_submissions - self._live)

    def submit(self, job: JobSpec) -> str:
        return self.submit_pack(job.name, [job])

    def submit_pack(self, pack_name: str, members: list[JobSpec]) -> str:
        """Write the steps' files and the Submission's record, hand the submission to the
        pool; the pack's name is its id (dpdispatcher's job ids come later)."""
        resources = dict(members[0].resources)
        dp_resources = submission_resources(self.machine.resources,
                                            resources.get("dispatcher") or {}, len(members))
        # dpdispatcher reads a batch type's own resources (``kwargs``: SGE's pe_name, ...)
        # only when the resources name the batch type.
        if self.machine.machine_dict.get("batch_type"):
            dp_resources.setdefault("batch_type", self.machine.machine_dict["batch_type"])
        if self.result_keys is not None:
            merge_dicts(dp_resources,
                        {"envs": self.result_keys.env([job.step_dir for job in members])})
        bundle_name, bundle = runner_bundle()
        bundle_rel = f"{BUNDLE_DIR}/{bundle_name}"
        if not (self.runs_root / bundle_rel).exists():
            self._files.write_files(str(self.runs_root / BUNDLE_DIR), {bundle_name: bundle})
        tasks = [self._task(pack_name if len(members) == 1 else f"{pack_name}-{i}", job,
                            resources, bundle_rel)
                 for i, job in enumerate(members)]
        record = {"tasks": tasks, "resources": dp_resources, "common": [bundle_rel],
                  "steps": [job.step_dir for job in members]}
        self._write_record(pack_name, record)
        self._live += 1
        self._flights[pack_name] = self._pool.submit(self._advance, pack_name)
        return pack_name

    def poll(self, jobs: list[JobRecord]) -> list[JobStatus]:
        packs: dict[str, list[JobRecord]] = {}
        for job in jobs:
            packs.setdefault(job.native_id or job.name, []).append(job)
        statuses: list[JobStatus] = []
        live = 0
        for pack, members in packs.items():
            outcome = self._outcome(pack, members)
            if outcome is None:
                live += 1
                statuses += [JobStatus(j.name, JobState.RUNNING) for j in members]
                continue
            statuses += [self._finished(j, outcome) for j in members]
            self._forget(pack)
        self._live = live
        return statuses

    def find(self, pack_name: str) -> str | None:
        """The pack's id if its Submission was handed over (its record exists)."""
        return pack_name if self._record_path(pack_name).exists() else None

    def ran(self, step_dir: str) -> bool:
        return (Path(step_dir) / RESULT_FILE).exists()

    def reconcile(self, record: JobRecord, job: JobSpec) -> str:
        """After a crash: a Submission with a record is dpdispatcher's to recover (the next
        poll does it); one without was never handed over and is submitted now."""
        found = self.find(record.name)
        if found:
            return found
        return self.submit(job)

    def cancel(self, jobs: list[JobRecord]) -> None:
        for pack in sorted({j.native_id or j.name for j in jobs}):
            self._pool.submit(self._kill, pack)

    def log_tail(self, job: JobRecord, lines: int) -> str | None:
        return read_log_tail(job.step_dir, lines)  # the log came back with the results

    def close(self) -> None:
        self._pool.shutdown()

    # -- step files and tasks ---------------------------------------------------------
    def _task(self, task_name: str, job: JobSpec, resources: dict[str, Any],
              bundle_rel: str) -> dict[str, Any]:
        """Write a step's files (its inputs in its relay) and describe it as a dpdispatcher
        task: the runner on the step directory, the result, log and outputs brought back."""
        put_inputs(self._files, f"{job.step_dir}/{RELAY_DIR}", job)
        outputs = f"{RELAY_DIR}/{job.runner['artifact_prefix']}"
        # the relay's path is relative: it travels along with the step directory
        job = relayed(job, RELAY_DIR).with_runner(wake_dir=None)
        self._files.write_files(job.step_dir, job.to_files())
        root = Path(job.step_dir)
        forward = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
        user_task = dict(resources.get("task") or {})
        return {
            "command": self._command(resources, job.image, bundle_rel, outputs),
            "task_work_path": str(root.relative_to(self.runs_root)) + "/",
            "forward_files": forward + list(user_task.get("forward_files") or []),
            "backward_files": [RESULT_FILE, LOG_FILE, outputs,
                               *(user_task.get("backward_files") or [])],
            "outlog": LOG_FILE, "errlog": LOG_FILE, "task_name": task_name,
        }

    def _command(self, resources: dict[str, Any], image: str | None, bundle_rel: str,
                 outputs: str) -> str:
        """The task's shell command, run by dpdispatcher in the step directory (its job
        script sets ``REMOTE_ROOT``, where the shipped runner bundle is)."""
        python = resources.get("python") or self.machine.python
        bundle = f'"$REMOTE_ROOT"/{shlex.quote(bundle_rel)}'
        runner = [shlex.quote(python), "-m", "hpcflow.daemon.runner"]
        container = resources.get("container")
        if container and image:
            exe, args = shlex.quote(container["executable"]), container.get("args") or ""
            if container["kind"] == "singularity":
                runner = [exe, "exec", args, '--bind "$REMOTE_ROOT"', shlex.quote(
                    image if image.startswith(("/", "docker://")) else f"docker://{image}"),
                    *runner]
            else:  # docker, podman
                runner = [exe, "run", "--rm", args, '-v "$REMOTE_ROOT:$REMOTE_ROOT"',
                          '-w "$PWD"', f"-e PYTHONPATH={bundle}", shlex.quote(image), *runner]
        # With no scheduler (Shell) nothing stops a cancelled job's whole tree: the runner
        # leads a session of its own, which _kill ends (dpdispatcher kills the script only).
        session = "setsid -w " if self.machine.batch_type == SHELL else ""
        return (f"mkdir -p {shlex.quote(outputs)} && "
                f"PYTHONPATH={bundle}${{PYTHONPATH:+:$PYTHONPATH}} "
                f"{session}{' '.join(p for p in runner if p)} .")

    # -- records ------------------------------------------------------------------------
    def _record_path(self, pack: str) -> Path:
        return self.records / f"{safe_dir_name(pack)}.json"

    def _write_record(self, pack: str, record: dict) -> None:
        path = self._record_path(pack)
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "w") as f:
            json.dump(record, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def _read_record(self, pack: str) -> dict | None:
        try:
            record: dict = json.loads(self._record_path(pack).read_text())
            return record
        except FileNotFoundError:
            return None

    def _forget(self, pack: str) -> None:
        self._done.pop(pack, None)
        self._errors.pop(pack, None)
        self._record_path(pack).unlink(missing_ok=True)

    # -- outcomes -------------------------------------------------------------------------
    def _outcome(self, pack: str, members: list[JobRecord]) -> Outcome | None:
        """The pack's outcome once it is over; None while it runs (a call to advance it is
        then under way, or handed to the pool now)."""
        if pack in self._done:
            return self._done[pack]
        flight = self._flights.get(pack)
        if flight is not None and not flight.done():
            return None
        if flight is not None:
            del self._flights[pack]
            try:
                outcome: Outcome = flight.result()
            except Exception as exc:
                return self._failed_call(pack, exc)
            self._errors.pop(pack, None)
            if outcome.done:
                self._done[pack] = outcome
                return outcome
        elif self._read_record(pack) is None:
            # No record: the results were collected before a crash cut off the commit.
            if all(self.ran(j.step_dir) for j in members):
                return Outcome(done=True)
            return Outcome(done=True, failures={j.step_dir: (
                f"the record of dpdispatcher submission {pack} is gone") for j in members})
        self._flights[pack] = self._pool.submit(self._advance, pack)
        return None

    def _failed_call(self, pack: str, exc: Exception) -> Outcome | None:
        """A dpdispatcher call raised: a lost connection is tried again on the next poll;
        anything else counts, and fails the pack's steps after ``submission_retries``."""
        # dpdispatcher wraps the scheduler's word ("Underlying job error: ...") in a
        # generic first line: keep the whole message, on one line.
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:1000]
        if _is_connection_error(exc):
            log.warning("dispatcher %s: %s (trying again)", self.name, reason)
            return None
        self._errors[pack] = self._errors.get(pack, 0) + 1
        final = isinstance(exc, HpcflowError) or \
            self._errors[pack] > self.machine.submission_retries
        log.warning("dispatcher %s, submission %s: %s%s", self.name, pack, reason,
                    "" if final else f" (attempt {self._errors[pack]}; trying again)")
        if not final:
            return None
        record = self._read_record(pack) or {"steps": []}
        return Outcome(done=True, failures={d: f"dpdispatcher on {self.name}: {reason}"
                                            for d in record["steps"]})

    def _finished(self, job: JobRecord, outcome: Outcome) -> JobStatus:
        result = None
        with contextlib.suppress(OSError):
            result = read_result(Path(job.step_dir))
        if result is None:
            reason = outcome.failures.get(job.step_dir) or (
                f"the dpdispatcher job of {job.name} ended without hpcflow's result")
            return JobStatus(job.name, JobState.FINISHED, JobResult.without_runner(
                phases.FAILED, f"{reason}; see {job.step_dir}/{LOG_FILE}"))
        if result.succeeded:
            try:
                bring_back_outputs(self._files, job.step_dir, result.outputs)
            except (HpcflowError, OSError) as exc:
                result = JobResult.without_runner(
                    phases.ERROR, f"cannot bring the outputs back from {self.name}: {exc}")
        return JobStatus(job.name, JobState.FINISHED, result)

    # -- off the loop ---------------------------------------------------------------------
    def _dp_machine(self) -> Any:
        """This thread's dpdispatcher Machine (a context is bound to one submission at a
        time, so threads do not share one; each keeps its own connection)."""
        machine = getattr(self._thread_machines, "machine", None)
        if machine is None:
            settings = self.machine
            if settings.context_type in SSH_CONTEXTS:
                # checked inside dpdispatcher's own connection, before it authenticates
                from hpcflow.connectors.executors.dispatcher_ssh import register_host

                profile = settings.machine_dict.get("remote_profile") or {}
                register_host(str(profile.get("hostname")), int(profile.get("port") or 22),
                              settings.known_hosts, settings.allow_new_host_keys)
            machine = self._dp.Machine.load_from_dict(json.loads(json.dumps(
                settings.machine_dict)))
            # The session holds the credentials now; dpdispatcher writes the profile into
            # its state files, so they leave it.
            profile = getattr(machine.context, "remote_profile", None)
            if isinstance(profile, dict):
                from hpcflow.connectors.dispatcher import split_secrets

                machine.context.remote_profile = split_secrets(profile)[0]
            self._thread_machines.machine = machine
        return machine

    def _submission(self, record: dict) -> Any:
        dp = self._dp
        machine = self._dp_machine()
        if hasattr(machine.context, "_recover_remote_root"):
            # SSHContext takes a new binding for the same submission under a new hash and
            # moves the old remote directory over: this context serves many submissions.
            machine.context.remote_root = None
        return dp.Submission(
            work_base="./", machine=machine,
            resources=dp.Resources.load_from_dict(record["resources"]),
            task_list=[dp.Task.load_from_dict(t) for t in record["tasks"]],
            forward_common_files=record["common"], backward_common_files=[])

    def _advance(self, pack: str) -> Outcome:
        """Take the Submission one step further (see the module's docstring)."""
        try:
            return self._advance_once(pack)
        except Exception as exc:
            if _is_connection_error(exc):  # connect (and check the host key) again next time
                self._thread_machines.machine = None
            raise

    def _advance_once(self, pack: str) -> Outcome:
        from dpdispatcher.utils.job_status import JobStatus as DP

        record = self._read_record(pack)
        if record is None:
            return Outcome(done=True)
        if record.get("done"):
            return Outcome(done=True, failures=record.get("failures") or {})
        submission, had_state = self._recovered(record)
        submission.update_submission_state()
        if any(j.job_state == DP.unsubmitted for j in submission.belonging_jobs):
            if not had_state:
                _make_private(submission.machine.context)
                submission.upload_jobs()
            faults.point(faults.DISPATCHER_SUBMIT, submission.machine)
        submission.handle_unexpected_submission_state(continue_on_failure=True)
        submission.submission_to_json()
        if not all(j.job_state in (DP.finished, DP.failed) for j in submission.belonging_jobs):
            # No wake-up here: the next poll comes on the executor's backed-off schedule
            # (waking the loop would start the next squeue at once, a busy poll).
            return Outcome(done=False)
        submission.download_jobs(include_failed=True)
        failures = {}
        for job in submission.belonging_jobs:
            if job.job_state == DP.failed:
                reason = (job.failure_reason or "").replace("\033[31m", "").replace(
                    "\033[0m", "").strip().splitlines()
                for task in job.job_task_list:
                    step_dir = str(self.runs_root / task.task_work_path.rstrip("/"))
                    failures[step_dir] = (f"dpdispatcher job {job.job_id} ended without "
                                          f"hpcflow's result ({reason[0] if reason else ''})")
        self._write_record(pack, {**record, "done": True, "failures": failures})
        if self.machine.clean:
            try:
                submission.clean_jobs()
            except Exception as exc:  # the results are safe; a leftover directory is not
                log.warning("dispatcher %s: cleaning submission %s failed: %s", self.name,
                            submission.submission_hash, exc)
        _wake(self.wake_dir, pack)
        return Outcome(done=True, failures=failures)

    def _recovered(self, record: dict) -> tuple[Any, bool]:
        """The record's Submission with the job ids it has so far, and whether dpdispatcher
        had saved its state (else the ids come from the job id files)."""
        submission = self._submission(record)
        submission.generate_jobs()
        had_state = submission.machine.context.check_file_exists(
            f"{submission.submission_hash}.json")
        if had_state:
            submission.try_recover_from_json()
        else:
            self._adopt_job_ids(submission)
        return submission, had_state

    @staticmethod
    def _adopt_job_ids(submission: Any) -> None:
        """Job ids of a submission cut off before dpdispatcher saved its state: each
        ``sbatch`` (qsub, bsub, ...) answer is written to ``JOBHASH_job_id`` at once."""
        context = submission.machine.context
        for job in submission.belonging_jobs:
            name = f"{job.job_hash}_job_id"
            if not job.job_id and context.check_file_exists(name):
                job_id = context.read_file(name).strip()
                if job_id:
                    log.info("dispatcher: job %s was submitted as %s before a crash: adopted",
                             job.job_hash, job_id)
                    job.job_id = job_id

    def _kill(self, pack: str) -> None:
        record = self._read_record(pack)
        if record is None or record.get("done"):
            return
        submission, _ = self._recovered(record)
        for job in submission.belonging_jobs:
            if job.job_id:
                submission.machine.kill(job)
                if self.machine.batch_type == SHELL:
                    _end_task_sessions(submission.machine.context, job)
        self._record_path(pack).unlink(missing_ok=True)  # its steps are failed by the service


def _make_private(context: Any) -> None:
    """Make the submission's own folder on the machine the user's only, before anything
    is written in it. dpdispatcher makes it with the remote umask (0755 under the usual
    022) and writes there its job scripts (the steps' result keys among their variables),
    its state and the steps' files: readable by every account of a cluster otherwise."""
    kind = type(context).__name__
    if kind in LOCAL_CONTEXTS:  # made at upload, unless it is made here first
        folder = Path(context.remote_root)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder.chmod(0o700)
        return
    if kind not in SSH_CONTEXTS:
        return  # a cloud context's folders are not on a shared machine
    code, _, _, err = context.block_call("chmod 700 .")
    if code != 0:
        detail = err.read().decode(errors="replace").strip() if err is not None else ""
        raise HpcflowError(f"cannot make the submission folder {context.remote_root} "
                           f"private (chmod 700): {detail or f'exit code {code}'}")


def _end_task_sessions(context: Any, job: Any) -> None:
    """dpdispatcher's Shell ``kill`` stops the job script only; the runner of each task
    leads its own session (``setsid -w``): end those too. A task's claim file names its
    runner's PID and host; only a claim of the host the context's commands run on is acted
    on (a PID of another host means nothing here)."""
    code, _, out, _ = context.block_call("hostname")
    host = out.read().decode(errors="replace").strip() if code == 0 else ""
    for task in job.job_task_list:
        claim = f"{task.task_work_path.rstrip('/')}/{CLAIM_FILE}"
        try:
            if not context.check_file_exists(claim):
                continue
            pid, _, claimed_on = context.read_file(claim).strip().partition(" ")
        except (OSError, UnicodeDecodeError):
            continue
        if pid.isdigit() and host and claimed_on == host:
            # "kill -SIG -PGID" (no "--": dash, Debian's sh, refuses it) in sh whatever the
            # login shell of an SSH context
            context.block_call(f"sh -c 'kill -TERM -{int(pid)}'")


def _is_connection_error(exc: BaseException) -> bool:
    if isinstance(exc, TransportError | ConnectionError | TimeoutError | EOFError):
        return True
    try:
        import paramiko
    except ImportError:  # pragma: no cover - paramiko is a core dependency
        return False
    return isinstance(exc, paramiko.SSHException) and not isinstance(
        exc, paramiko.AuthenticationException)


def _wake(wake_dir: Path, pack: str) -> None:
    """A call ended: wake the service loop to poll now (as a runner's finished marker does)."""
    with contextlib.suppress(OSError):
        Path(wake_dir, f"done-dispatcher-{safe_dir_name(pack)}-{time.time_ns()}").touch()
