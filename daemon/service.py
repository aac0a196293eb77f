"""The service loop: the one writer of workflow and step state.

Each cycle: take new workflows and requests, collect finished jobs, let the
planner advance the Steps/DAGs that changed, submit Ready steps; then sleep
until woken (a file in ``wake/``: a submission, a request, a finished step) or
until the next poll is due.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from hpcflow.config_file import DaemonConfig, config_path, load_config, parse_config
from hpcflow.connectors.executors.base import (
    LIVE_JOB_STATES,
    Executor,
    JobResult,
    JobState,
    JobStatus,
    reads_step_files,
)
from hpcflow.connectors.executors.local import LocalExecutor
from hpcflow.connectors.plugins import (
    LOCAL,
    ExecutorContext,
    declared,
    executor_kind,
    kind_for,
)
from hpcflow.connectors.transports.base import TransportError
from hpcflow.daemon import inbox, states, value_files
from hpcflow.daemon.backup import StoreKeeper
from hpcflow.daemon.children import node_of, planning_input
from hpcflow.daemon.disk import WriteTrouble, write_error
from hpcflow.daemon.engine import WAKE_DIR
from hpcflow.daemon.exit_handler import (
    EXIT_HANDLER_SLOT,
    ROOT_SLOT,
    final_phase,
    workflow_globals,
)
from hpcflow.daemon.import_hint import PreloadAdvisor
from hpcflow.daemon.leader import FencedError, LeaderLease
from hpcflow.daemon.lifecycle import Finish, Retry, StepFacts, decide, queue_change
from hpcflow.daemon.loops import SUCCEEDED_SLICES
from hpcflow.daemon.placement import placement
from hpcflow.daemon.planner import (
    CreateStep,
    FinishStep,
    exit_handler_step,
    plan_container,
    root_step,
    steps_slots,
)
from hpcflow.daemon.polling import PollSchedule
from hpcflow.daemon.reach import Reachability
from hpcflow.daemon.resolve import ResolveError
from hpcflow.daemon.store import Store, StoreLostError
from hpcflow.daemon.submission import Submitter, job_record
from hpcflow.daemon.user_requests import RequestHandler
from hpcflow.errors import HpcflowError
from hpcflow.privacy import DirIdentity
from hpcflow.secrets import ResultKeys

log = logging.getLogger("hpcflow.engine")


class HomeMovedError(StoreLostError):
    """The home directory is not the one checked when the daemon started (replaced, gone,
    or now another account's): nothing more is written into it, not even a rescue copy."""

#: Shortest sleep between cycles while jobs run (a burst of wake-ups is taken in one cycle).
MIN_SLEEP = 0.05
ERROR_BACKOFF = 2.0
#: How many lines of a failed step's log are kept with the step (``hpcflow steps``).
LOG_TAIL_LINES = 20


def wake_handler(service: Any) -> Any:
    """What the wake directory's watcher does with an event: a file created there (a
    submission's ``req-``, a runner's ``done-`` marker) wakes the loop; the rest (opened,
    closed, modified, and the deletions of the loop's own clearing) does not, so a clearing
    never causes another cycle."""
    from watchdog.events import FileSystemEventHandler

    def arrived(path: str) -> None:
        if os.path.basename(path).startswith("done-"):
            service._marker_seen = True
        service.wake()

    class WakeHandler(FileSystemEventHandler):
        def on_created(self, event: Any) -> None:
            if not event.is_directory:
                arrived(str(event.src_path))

        def on_moved(self, event: Any) -> None:  # written elsewhere, then renamed in
            if not event.is_directory:
                arrived(str(event.dest_path))

    return WakeHandler()


@dataclass(frozen=True)
class QueueChange:
    """A poll saw a job queued or started: its new state (None: unchanged) and its step's
    new (phase, reason) (None: unchanged)."""

    job_id: int
    job_state: JobState | None
    step_id: int
    workflow_id: str
    phase: str
    step: tuple[str, str | None] | None

class Service:
    def __init__(self, home: Path, parallelism: int | None = None,
                 config: DaemonConfig | None = None) -> None:
        self.home = home
        self.config = config or parse_config({})
        self.store = Store.open(home)
        #: Backups of the store and its write-ahead log's size, between cycles.
        self.keeper = StoreKeeper(self.store, home, self.config.backup_interval,
                                  self.config.backups)
        #: The leader lease this engine holds (``daemon/leader.py``), set by the daemon
        #: process; renewed every cycle.
        self.lease: LeaderLease | None = None
        self._last_beat = 0.0
        #: The home as checked at the start (``hpcflow.privacy``): checked again each cycle.
        self.home_identity = DirIdentity.of(home)
        #: The keys runners seal results with; a result without the right seal is refused.
        self.result_keys = ResultKeys(home)
        self._local_parallelism = parallelism
        local = executor_kind(LOCAL).make(self._executor_context(), LOCAL, None)
        assert isinstance(local, LocalExecutor)
        self.local = local
        #: Executors by name: ``local`` and one per machine in use, made when first needed.
        self.executors: dict[str, Executor] = {LOCAL: self.local}
        self.dirty: set[int] = set()
        #: When each executor was last polled (``hpcflow daemon status``).
        self.last_poll: dict[str, float] = {}
        #: How long the loop is about to sleep (the status file is written before a long one).
        self.next_pause = 0.0
        self.schedule = PollSchedule(self.config.poll)
        #: Machines that do not answer now (the status file shows them, with what to do).
        self.reach = Reachability()
        self.submitter = Submitter(self.store, home, self.schedule, self.executor, self.spec,
                                   self._default_outputs, self._after_final, self.reach,
                                   self._workflow_context)
        self.requests = RequestHandler(self.store, self.executor, self.dirty,
                                       self._return_slot, self._start_exit_handler)
        self._specs: dict[str, dict] = {}
        #: What exit handlers read (``_exit_handler_globals``), by workflow and handler.
        self._handler_globals: dict[tuple[str, int | None, str], dict] = {}
        self._wake = threading.Event()
        self._stop = False
        #: Set from the watcher thread when a runner left a finished marker: poll at once.
        self._marker_seen = False
        #: Executors that said (from a thread of theirs) that a job of theirs finished: each
        #: is polled at once, as a finished marker in the wake directory makes it.
        self._finished_in: set[str] = set()
        self._finished_lock = threading.Lock()
        self._reload_requested = False
        self.last_activity = time.time()
        #: Writes refused by the machine (a full disk): logged once, in the status file.
        self.trouble = WriteTrouble(home)
        #: Whether local steps spend their time importing what a preload would import once.
        self.preload_advisor = PreloadAdvisor()

    # -- wake-ups ---------------------------------------------------------------
    def wake(self) -> None:
        self._wake.set()

    def job_finished(self, executor: str) -> None:
        """From an executor's own thread (the fork server's wake-up relay): a job of
        ``executor`` finished; poll it now."""
        with self._finished_lock:
            self._finished_in.add(executor)
        self._wake.set()

    def stop(self) -> None:
        self._stop = True
        self._wake.set()

    def request_reload(self) -> None:
        """From the SIGHUP handler: reload the config file at the top of the next cycle."""
        self._reload_requested = True
        self._wake.set()

    def reload(self) -> None:
        """Re-read the config file; a broken file is logged and the running config kept."""
        from hpcflow.settings import local_parallelism

        try:
            config = load_config(self.home)
        except Exception as exc:
            log.error("configuration not reloaded, keeping the running one: %s", exc)
            return
        self.config = config
        self.schedule.set_bounds(config.poll)
        self.local.parallelism = config.local_parallelism or local_parallelism()
        self.local.set_preload(config.local_preload)
        self.keeper.interval, self.keeper.keep = config.backup_interval, config.backups
        logging.getLogger().setLevel(config.log_level.upper())
        log.info("configuration reloaded from %s", config.path or "the defaults (no file)")

    def _start_watch(self) -> Any:
        from watchdog.events import FileCreatedEvent, FileMovedEvent
        from watchdog.observers import Observer

        wake_dir = self.home / WAKE_DIR
        wake_dir.mkdir(exist_ok=True, mode=0o700)
        observer = Observer()
        # only arrivals are asked of the kernel: each marker is one event, not seven
        observer.schedule(wake_handler(self), str(wake_dir), recursive=False,
                          event_filter=[FileCreatedEvent, FileMovedEvent])
        observer.daemon = True
        observer.start()
        return observer

    def _clear_wake_dir(self) -> None:
        try:
            for entry in os.scandir(self.home / WAKE_DIR):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
        except FileNotFoundError:
            pass

    # -- helpers ----------------------------------------------------------------
    def executor(self, name: str) -> Executor:
        """The executor called ``name``, made by its kind (the plugin registry) when first
        needed: ``local``, a machine or dispatcher of the config file, or one a workflow
        describes."""
        if name not in self.executors:
            described = None if declared(self.config, name) else \
                self.store.step_executor_spec(name)
            kind = kind_for(name, self.config, described)
            self.executors[name] = kind.make(self._executor_context(), name, described)
        return self.executors[name]

    def _executor_context(self) -> ExecutorContext:
        return ExecutorContext(self.home, self.config, self.result_keys,
                               self._local_parallelism, self.job_finished)

    def spec(self, wf_id: str) -> dict:
        if wf_id not in self._specs:
            row = self.store.existing_workflow(wf_id)
            self._specs[wf_id] = json.loads(row["spec"])
            self._specs[wf_id]["_storage"] = json.loads(row["storage"])
        return self._specs[wf_id]

    def _slots(self, wf_id: str, template: dict) -> dict[str, str]:
        """A Steps template's slots by step name, worked out once per workflow."""
        known = self.spec(wf_id).setdefault("_steps_slots", {})
        if template["name"] not in known:
            known[template["name"]] = steps_slots(template)
        return known[template["name"]]

    # -- recovery ---------------------------------------------------------------
    def recover(self) -> None:
        """After a start (or a crash): replan every running container; every job recorded
        only as an intent is looked for by name (or submitted once) by the next cycle."""
        self.dirty.update(self.store.running_containers())
        self.submitter.unsure_jobs.update(r["id"] for r in self.store.live_jobs()
                                 if r["state"] == JobState.INTENT)

    # -- the cycle --------------------------------------------------------------
    def cycle(self) -> bool:
        """One pass; True if anything changed."""
        moved = self.home_identity.changed()  # never write into a home but the one checked
        if moved:
            raise HomeMovedError(f"hpcflow's home {moved} since the daemon started: it "
                                 "stops rather than write into it")
        self.store.check_file()  # nor into a store deleted or replaced meanwhile
        self.beat()
        changed = self.take_inbox()
        changed |= self.start_new_workflows()
        changed |= self.requests.handle()
        changed |= self.collect()
        changed |= self.plan()
        changed |= self.submitter.submit_ready()
        if changed:
            self.last_activity = time.time()
        return changed

    def take_inbox(self) -> bool:
        """Submissions and requests that clients on other hosts left in ``inbox/`` (a home
        shared between login nodes: only the leader writes the store). On a local file
        system clients write the store themselves: no directory read every cycle."""
        if not self.store.shared:
            return False
        taken = False
        for path, message in inbox.waiting(self.home):
            try:
                if message["kind"] == "workflow":
                    if self.store.workflow(message["id"]) is None:
                        self.store.insert_workflow(
                            message["id"], message["name"], message["spec"],
                            inbox.blobs_of(message), message["storage"], message["labels"],
                            if_absent=bool(message.get("if_absent")))
                elif message["kind"] == "request":
                    self.store.add_request(message["workflow_id"], message["request"],
                                           message.get("payload"))
                else:
                    raise KeyError(message["kind"])
            except (KeyError, TypeError, ValueError) as exc:
                log.error("ignoring %s: not a submission or request hpcflow wrote (%s: %s)",
                          path, type(exc).__name__, exc)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            taken = True
        return taken

    def start_new_workflows(self) -> bool:
        started = False
        for wf_id in self.store.live_workflow_ids(states.PENDING):
            spec = self.spec(wf_id)
            root = root_step(spec)
            with self.store.write() as conn:
                # Named after the workflow's id, as Argo names its root node: a step
                # named like the workflow is not mistaken for it by query_step(name=...).
                step_id = self.store.insert_step(
                    conn, wf_id, 0, root.slot, wf_id, root.template, root.type, root.phase,
                    root.inputs, root.spec)
                if step_id is None:  # root already there: a crash between the two writes
                    step_id = self.store.root_step_id(wf_id)
                self.store.set_workflow_phase(conn, wf_id, states.RUNNING, root_step=step_id)
            self.dirty.add(step_id)
            log.info("workflow %s started", wf_id)
            started = True
        return started

    def collect(self) -> bool:
        rows = [r for r in self.store.live_jobs() if r["state"] != JobState.INTENT]
        if not rows:
            return False
        by_executor: dict[str, list[Any]] = {}
        for row in rows:
            by_executor.setdefault(row["executor"], []).append(row)
        changed = False
        now = time.time()
        if self._marker_seen:
            self._marker_seen = False
            for name in by_executor:
                self.schedule.kick(name, now)
        with self._finished_lock:
            finished_in, self._finished_in = self._finished_in, set()
        for name in finished_in & by_executor.keys():
            self.schedule.kick(name, now)
        for name, ex_rows in by_executor.items():
            late = any(r["deadline"] is not None and r["deadline"] < now for r in ex_rows)
            if not (late or self.schedule.due(name, now)):
                continue
            by_name = {r["name"]: r for r in ex_rows}
            try:
                executor = self.executor(name)
                statuses = executor.poll([job_record(r) for r in ex_rows])
            except (TransportError, HpcflowError) as exc:  # unreachable, or not configured
                # an unreachable machine is logged when it goes, not at every poll
                new = not isinstance(exc, TransportError) or self.reach.lost(name, exc)
                (log.warning if new else log.debug)(
                    "polling %s failed (%s): trying again later", name, exc)
                self._polled(name, changed=False)
                continue
            self.reach.reached(name)
            self.last_poll[name] = time.time()
            done = [s for s in statuses if s.state not in LIVE_JOB_STATES]
            log.debug("polled %s: %d live jobs, %d ended", name, len(ex_rows), len(done))
            progress = [(by_name[s.name]["step_id"], s.progress) for s in statuses if s.progress]
            queue = self._queue_changes(executor, by_name, statuses)
            if progress or queue:
                with self.store.write() as conn:
                    for step_id, (current, total) in progress:
                        self.store.set_progress(conn, step_id, current, total)
                    self._apply_queue_changes(conn, queue)
            done += self._timed_out(executor, [by_name[s.name] for s in statuses
                                               if s.state in LIVE_JOB_STATES])
            if done:
                self._apply_results(name, [(by_name[s.name], s) for s in done])
                changed = True
            self._polled(name, changed=bool(done or progress or queue))
            changed = changed or bool(queue)
        return changed

    def _polled(self, name: str, changed: bool) -> None:
        """Schedule the next poll of ``name``, backing off while its scheduler is slow."""
        executor = self.executors.get(name)
        seconds = getattr(executor, "call_seconds", None)
        timed_out = bool(getattr(executor, "call_timed_out", False))
        before = self.schedule.backoff(name)
        self.schedule.polled(name, time.time(), changed, call_seconds=seconds,
                             timed_out=timed_out)
        after = self.schedule.backoff(name)
        if after > before:
            log.warning("%s's scheduler is slow (%s): polling it every %.0f s at most",
                        name, "a call killed at its timeout" if timed_out
                        else f"a call took {seconds:.1f} s", after)
        elif before and not after:
            log.info("%s's scheduler answers quickly again: polling as usual", name)

    def _queue_changes(self, executor: Executor, by_name: dict[str, Any],
                       statuses: list[JobStatus]) -> list[QueueChange]:
        """For an executor with a queue: the jobs seen queued or started since the last
        poll, with what that changes for their steps."""
        if not executor.queues:
            return []
        seen = [s for s in statuses if s.state in (JobState.QUEUED, JobState.RUNNING)]
        if not seen:
            return []
        now = self.store.step_states([by_name[s.name]["step_id"] for s in seen])
        changes = []
        for status in seen:
            job = by_name[status.name]
            phase, reason = now.get(job["step_id"], (None, None))
            step = phase and queue_change(phase, reason, status.state, status.detail,
                                          executor.name)
            job_state = JobState(status.state) if job["state"] != status.state else None
            if phase and (step or job_state):
                changes.append(QueueChange(job["id"], job_state, job["step_id"],
                                           job["workflow_id"], phase, step or None))
        return changes

    def _apply_queue_changes(self, conn: Any, changes: list[QueueChange]) -> None:
        for change in changes:
            if change.job_state is not None:
                self.store.set_job_state(conn, change.job_id, change.job_state)
            if change.step is not None:
                new, reason = change.step
                self.store.set_queue_state(conn, change.step_id, change.workflow_id,
                                           change.phase, new, reason)

    def _timed_out(self, executor: Any, running: list[Any]) -> list[JobStatus]:
        """Running jobs past their deadline: cancelled (the whole process tree), and failed."""
        now = time.time()
        late = [r for r in running if r["deadline"] is not None and r["deadline"] < now]
        if not late:
            return []
        executor.cancel([job_record(r) for r in late])
        return [JobStatus(r["name"], JobState.TIMED_OUT, detail=(
            f"TimeoutError: the step ran longer than its timeout of "
            f"{r['deadline'] - r['submitted_at']:.0f} s and was killed")) for r in late]

    def _apply_results(self, executor_name: str, finished: list[tuple[Any, JobStatus]]) -> None:
        executor = self.executor(executor_name)
        ends = {job["id"]: self._job_end(job, status) for job, status in finished}
        # Read failed jobs' logs before the write transaction (a remote read can be slow).
        tails = {job["id"]: executor.log_tail(job_record(job), LOG_TAIL_LINES)
                 for job, _ in finished if not ends[job["id"]].succeeded}
        ends.update(self._store_value_files(executor, [job for job, _ in finished], ends))
        with self.store.write() as conn:
            for job, status in finished:
                step = self.store.existing_step(job["step_id"])
                if step["phase"] == states.PENDING and status.state == JobState.FINISHED:
                    # its job started and ended between two polls: it ran
                    self.store.set_queue_state(conn, step["id"], step["workflow_id"],
                                               states.PENDING, states.RUNNING, None)
                    step = self.store.existing_step(job["step_id"])
                template = self.spec(step["workflow_id"])["templates"][step["template"]]
                end = ends[job["id"]]
                self.store.set_job_finished(conn, job["id"], status.state,
                                            0 if end.succeeded else 1, end.reason)
                if not end.succeeded:
                    self.store.set_log_tail(conn, step["id"], tails.get(job["id"]))
                decision = decide(end, StepFacts(step["phase"], step["attempt"] or 0),
                                  template)
                if isinstance(decision, Retry):
                    self.store.retry_step(conn, step["id"], step["workflow_id"],
                                          decision.message, step["phase"])
                elif isinstance(decision, Finish):
                    self._finish(conn, step, decision, end)
                if end.imports is not None and end.sealed and executor_name == LOCAL:
                    self._advise_preload(conn, step, end)

    def _advise_preload(self, conn: Any, step: Any, end: JobResult) -> None:
        """A local step that reported its imports (none, as often): a tip for the workflow
        once the first steps of its template show they mostly import
        (``daemon/import_hint.py``)."""
        record = end.record or {}
        started, finished = record.get("started"), record.get("finished")
        seconds = finished - started if isinstance(started, int | float) and \
            isinstance(finished, int | float) else 0.0
        tip = self.preload_advisor.observe(step["workflow_id"], step["template"],
                                           end.imports or {}, seconds,
                                           self.config.local_preload)
        if tip is None:
            return
        text = tip.text(str(self.config.path or config_path(self.home)))
        if self.store.add_tip(conn, step["workflow_id"], f"preload:{tip.template}", text):
            log.info("workflow %s: tip: %s", step["workflow_id"], text)

    def _job_end(self, job: Any, status: JobStatus) -> JobResult:
        """How the job ended, from what the executor reported: its result is used only as
        ``JobResult.trusted`` allows (sealed under the step's key)."""
        if status.state == JobState.LOST:
            return JobResult.lost(status.detail)
        if status.state == JobState.TIMED_OUT:
            return JobResult.past_deadline(status.detail)
        if status.result is None:
            return JobResult.lost(status.detail or "the job ended without a result")
        return status.result.trusted(self.result_keys.keys(job["step_dir"]))

    def _finish(self, conn: Any, step: Any, decision: Finish, end: JobResult) -> None:
        """The step final as decided, inside the results' transaction. A failed step gets its
        template's default outputs (for ``continue_on_failed`` consumers) and, for a slice
        group, how many of its slices succeeded."""
        if decision.phase == states.SUCCEEDED:
            outputs = value_files.strip_files(decision.outputs)
        else:
            outputs = self._default_outputs(step)
            if end.succeeded_slices is not None:
                outputs[SUCCEEDED_SLICES] = end.succeeded_slices
        if self.store.set_step_phase(conn, step["id"], step["phase"], decision.phase,
                                     outputs=outputs, reason=decision.reason,
                                     workflow_id=step["workflow_id"]):
            self._after_final(conn, step["parent_id"], step["workflow_id"], decision.phase,
                              decision.reason)

    def _store_value_files(self, executor: Any, jobs: list[Any],
                           ends: dict[int, JobResult]) -> dict[int, JobResult]:
        """Before the results are recorded: the output values succeeded steps left as files,
        stored (once, by digest); the jobs whose values could not be, as unusable."""
        unstored = {}
        read_file = executor.read_step_file if reads_step_files(executor) else None
        for job in jobs:
            end = ends[job["id"]]
            if not end.succeeded:
                continue
            record = job_record(job)
            why = value_files.ingest(
                self.store, read_file and (lambda rel, r=record: read_file(r, rel)),
                job["step_dir"], end.outputs)
            if why:
                unstored[job["id"]] = JobResult.unusable(why)
        return unstored

    def _default_outputs(self, step: Any) -> dict:
        from hpcflow.daemon.planner import skipped_outputs

        template = self.spec(step["workflow_id"])["templates"][step["template"]]
        return skipped_outputs(template)

    def _after_final(self, conn: Any, parent_id: int, wf_id: str, phase: str,
                     reason: str | None) -> None:
        """A step became final, inside the transaction that made it so: the workflow ends with
        its root step (in the same commit), or the parent is marked for the planner."""
        if parent_id == 0:
            final, message = self._workflow_end(conn, wf_id, phase, reason)
            if final:
                self.store.set_workflow_phase(conn, wf_id, final, message=message)
                self._return_slot(wf_id)
                log.info("workflow %s %s", wf_id, final)
            return
        parent = self.store.existing_step(parent_id)
        if parent["type"] in ("Steps", "StepGroup") and self.store.has_live_children(parent_id):
            return  # the group is still running: nothing for the planner to do yet
        self.dirty.add(parent_id)

    def _workflow_end(self, conn: Any, wf_id: str, phase: str,
                      reason: str | None) -> tuple[str | None, str | None]:
        """A step without a parent ended (``phase``): the workflow's phase and message now,
        or None while its exit handler (``Workflow(on_exit=...)``) has yet to run."""
        if not self.spec(wf_id).get("on_exit"):
            return states.workflow_phase_for_root(phase), reason
        root = self.store.top_step(wf_id, ROOT_SLOT)
        entry_final = states.workflow_phase_for_root(root["phase"]) if root else None
        if root is None or entry_final is None:
            return None, None
        handler = self.store.top_step(wf_id, EXIT_HANDLER_SLOT)
        if handler is None:  # the entrypoint ended: the exit handler runs now
            self._start_exit_handler(conn, wf_id)
            return None, None
        if handler["phase"] not in states.STEP_FINAL:
            return None, None
        return final_phase(entry_final, root["reason"], handler["phase"], handler["reason"])

    def _start_exit_handler(self, conn: Any, wf_id: str) -> None:
        spec = self.spec(wf_id)
        context = self._workflow_context(wf_id, spec)
        try:
            action = exit_handler_step(spec, context)
        except ResolveError as exc:
            action = CreateStep(0, EXIT_HANDLER_SLOT, "", spec["on_exit"], "Pod",
                                states.ERROR, {"parameters": {}, "artifacts": {}}, {},
                                reason=f"the exit handler's inputs: {exc}")
        action = replace(action, name=f"{wf_id}.{EXIT_HANDLER_SLOT}")
        step_id = self._insert(conn, wf_id, 0, action, 0)
        if step_id is None:
            return
        log.info("workflow %s: its steps ended %s; its exit handler runs", wf_id,
                 context.get("status"))
        if action.phase in states.STEP_FINAL:
            self._after_final(conn, 0, wf_id, action.phase, action.reason)
        elif action.type != "Pod":
            self.dirty.add(step_id)

    def _workflow_context(self, wf_id: str, spec: dict) -> dict:
        """What ``{{workflow.*}}`` reads in the steps of ``wf_id``: once its entrypoint
        ended, in a workflow with an exit handler, also ``status`` and ``failures``."""
        context = {"name": spec["name"], "id": wf_id,
                   "parameters": spec.get("workflow_parameters") or {}}
        if spec.get("on_exit"):
            root = self.store.top_step(wf_id, ROOT_SLOT)
            status = states.workflow_phase_for_root(root["phase"]) if root else None
            if status is not None:
                context.update(self._exit_handler_globals(wf_id, status))
        return context

    def _exit_handler_globals(self, wf_id: str, status: str) -> dict:
        """``status`` and ``failures`` for the exit handler of ``wf_id``: read once per
        handler (the steps before it do not change while it runs; a retry makes a new one),
        since every step of the handler and every plan of it asks."""
        handler = self.store.top_step(wf_id, EXIT_HANDLER_SLOT)
        key = (wf_id, handler["id"] if handler else None, status)
        found = self._handler_globals.get(key)
        if found is None:
            found = workflow_globals(status, self.store.failed_steps(
                wf_id, before_id=key[1]))
            if handler is not None:
                if len(self._handler_globals) >= 64:
                    self._handler_globals.pop(next(iter(self._handler_globals)))
                self._handler_globals[key] = found
        return found

    def _return_slot(self, wf_id: str) -> None:
        """A workflow submitted from a local step ended: that step holds its slot again."""
        from hpcflow.connectors.executors.base import NESTED_DIR

        step_dir = self.spec(wf_id).get("lends_slot_of")
        if step_dir and Path(step_dir).is_relative_to(self.home / "runs"):
            with contextlib.suppress(OSError):
                (Path(step_dir) / NESTED_DIR / wf_id).unlink()

    def _insert(self, conn: Any, wf_id: str, parent_id: int, action: CreateStep,
                depth: int) -> int | None:
        return self.store.insert_step(
            conn, wf_id, parent_id, action.slot, action.name, action.template, action.type,
            action.phase, action.inputs, action.spec, key=action.key, reason=action.reason,
            outputs=action.outputs, depth=depth,
            executor=placement(action.spec)[0] if action.type == "Pod" else LOCAL)

    def plan(self) -> bool:
        changed = False
        while self.dirty:
            node_id = self.dirty.pop()
            row = self.store.step(node_id)
            if row is None or row["phase"] != states.RUNNING:
                continue
            wf_id = row["workflow_id"]
            spec = self.spec(wf_id)
            given = planning_input(self.store, row, spec["templates"][row["template"]],
                                   functools.partial(self._slots, wf_id))
            if given is None:
                continue
            children, siblings = given
            try:
                actions = plan_container(node_of(row), spec["templates"], children,
                                         {**self._workflow_context(wf_id, spec),
                                          "max_depth": spec.get("max_recursion_depth"),
                                          "reuse": spec.get("reuse") or {},
                                          "read_value": self.store.read_value}, siblings)
            except Exception as exc:  # a planner bug fails this Steps/DAG, not the engine
                log.exception("planning step %s of %s failed", node_id, wf_id)
                actions = [FinishStep(node_id, states.ERROR,
                                      reason=f"hpcflow could not plan this step "
                                             f"({type(exc).__name__}: {exc}); see the engine log")]
            if not actions:
                continue
            changed = True
            with self.store.write() as conn:
                for action in actions:
                    if isinstance(action, CreateStep):
                        depth = row["depth"] + 1
                        new_id = self._insert(conn, wf_id, node_id, action, depth)
                        if new_id is None:
                            continue
                        for child in action.children:
                            child_id = self._insert(conn, wf_id, new_id, child, depth + 1)
                            if (child_id is not None and child.phase == states.RUNNING
                                    and child.type != "Pod"):
                                self.dirty.add(child_id)  # a loop item that is a Steps/DAG
                        if action.phase == states.RUNNING and action.type != "Pod":
                            self.dirty.add(new_id)
                        elif action.phase in states.STEP_FINAL:
                            self._after_final(conn, node_id, wf_id, action.phase, action.reason)
                    elif isinstance(action, FinishStep) and self.store.set_step_phase(
                            conn, action.step_id, states.RUNNING, action.phase,
                            outputs=action.outputs, reason=action.reason, workflow_id=wf_id):
                        self._after_final(conn, row["parent_id"], wf_id, action.phase,
                                          action.reason)
        return changed

    # -- running ----------------------------------------------------------------
    def beat(self, force: bool = False) -> None:
        """Renew the leader lease (at most once a second); ``FencedError`` when another
        host took it over."""
        if self.lease is None:
            return
        now = time.monotonic()
        if force or now - self._last_beat >= min(1.0, self.lease.ttl / 10):
            self.lease.beat()
            self._last_beat = now

    def _sleep_for(self) -> float:
        pause = self._until_next_poll()
        # the lease is renewed well before it could expire, even with nothing to do
        return pause if self.lease is None else min(pause, self.lease.ttl / 6)

    def _until_next_poll(self) -> float:
        """Until the next poll of an executor with live jobs or the earliest job deadline
        (timeouts); with no live job, the config's idle interval (new work wakes us anyway)."""
        executors, deadline = self.store.live_job_executors()
        if not executors:
            return self.config.idle_interval
        wake_at = self.schedule.next_due(executors)
        if deadline is not None:
            wake_at = deadline if wake_at is None else min(wake_at, deadline)
        if wake_at is None:
            return self.config.idle_interval
        return max(MIN_SLEEP, wake_at - time.time())

    def has_live_work(self) -> bool:
        return self.store.has_live_workflows()

    def tick(self, max_passes: int = 10_000) -> int:
        """One full pass for cron: recover, then cycle until nothing changes; the cycles run."""
        self.recover()
        passes = 0
        try:
            while passes < max_passes and self.cycle():
                passes += 1
            self.keeper.between_cycles()  # cron-driven homes get their backups too
        finally:
            if self.lease is not None:
                self.lease.release()
            for executor in self.executors.values():
                executor.close()
        return passes

    def run(self, idle_exit: float | None = None,
            on_cycle: Callable[[Service], None] | None = None) -> None:
        """Serve until stopped (or idle for ``idle_exit`` seconds); ``on_cycle`` runs after
        every pass (the daemon process writes its status file there)."""
        observer = self._start_watch()
        try:
            self.recover()
            while not self._stop:
                self._wake.clear()
                self._clear_wake_dir()
                if self._reload_requested:
                    self._reload_requested = False
                    self.reload()
                try:
                    while self.cycle() and not self._stop:
                        pass
                    self.keeper.between_cycles()
                except (StoreLostError, FencedError):
                    raise
                except Exception as exc:
                    # A bug or a passing fault (disk full, a connector's error) must not stop
                    # every workflow: log it, drop in-memory state, retry after a pause.
                    refused = write_error(exc)
                    if refused is not None:  # said once (and in the status), not every pause
                        self.trouble.failed("engine", refused)
                    else:
                        log.exception("engine cycle failed; retrying in %.0f s", ERROR_BACKOFF)
                    self._specs.clear()
                    self.recover()
                    if on_cycle is not None:
                        on_cycle(self)
                    self._wake.wait(ERROR_BACKOFF)
                    continue
                self.trouble.ok("engine")
                pause = self._sleep_for()
                self.next_pause = pause
                if on_cycle is not None:
                    on_cycle(self)
                if (idle_exit is not None and not self.has_live_work()
                        and time.time() - self.last_activity > idle_exit):
                    log.info("idle for %.0f s: exiting", idle_exit)
                    break
                self._wake.wait(pause)
        finally:
            if self.lease is not None:
                self.lease.release()  # a stopped leader: the next engine takes over at once
            observer.stop()
            for executor in self.executors.values():
                executor.close()
