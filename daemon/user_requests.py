"""Requests the CLI and the SDK leave for the engine (terminate, retry, ``retry_steps``,
``restart_steps``, suspend, resume), applied by the one writer.

Which steps run again is the pure ``daemon/retry.py``'s decision; this module reads what it
needs from the store, applies the decision in one write transaction, and cancels a
terminated workflow's jobs through their executors.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

from hpcflow.connectors.executors.base import Executor, JobRecord, JobState
from hpcflow.daemon import states
from hpcflow.daemon.exit_handler import EXIT_HANDLER_SLOT
from hpcflow.daemon.retry import (
    FAILED_PHASES,
    RetryPlan,
    RetryRow,
    exit_handler_rows,
    merge,
    plan_restart,
    plan_retry,
    plan_retry_steps,
)
from hpcflow.daemon.store import Store
from hpcflow.daemon.submission import job_record

#: Workflows ``retry`` runs again (as Argo's ``retry`` does a terminated one).
RETRIABLE = frozenset({states.FAILED, states.ERROR, states.TERMINATED})
#: Workflows whose steps ``retry --step S --restart-successful`` runs again.
RESTARTABLE = RETRIABLE | {states.SUCCEEDED}

log = logging.getLogger("hpcflow.engine")


class RequestHandler:
    """Applies open requests. ``dirty`` is the service's set of containers to plan again
    (shared, updated in place); ``return_slot`` gives a step its local slot back when a
    workflow it submitted ends."""

    def __init__(self, store: Store, executor: Callable[[str], Executor], dirty: set[int],
                 return_slot: Callable[[str], None],
                 start_exit_handler: Callable[[Any, str], None] | None = None) -> None:
        self.store = store
        self.executor = executor
        self.dirty = dirty
        self.return_slot = return_slot
        #: Runs a reopened workflow's exit handler again when its steps need no retry.
        self.start_exit_handler = start_exit_handler

    def handle(self) -> bool:
        """Every open request, in order; whether there was any."""
        requests = self.store.open_requests()
        for req in requests:
            wf_id, kind = req["workflow_id"], req["kind"]
            if kind == "terminate":
                self.terminate(wf_id)
            elif kind == "stop":
                self.stop(wf_id)
            elif kind == "retry":
                self.retry(wf_id)
            elif kind == "retry_steps":
                payload = json.loads(req["payload"] or "{}")
                self.retry_steps(wf_id, [int(i) for i in payload.get("steps", [])])
            elif kind == "restart_steps":
                payload = json.loads(req["payload"] or "{}")
                self.restart_steps(wf_id, [int(i) for i in payload.get("steps", [])])
            with self.store.write() as conn:
                if kind in ("suspend", "resume") and self.store.set_suspended(
                        conn, wf_id, kind == "suspend"):
                    log.info("workflow %s %sd", wf_id, kind)
                self.store.mark_request_handled(conn, req["id"])
        return bool(requests)

    def retry(self, wf_id: str) -> None:
        """Run the failed part of a finished workflow again (see ``retry.plan_retry``); a
        terminated one too (its cancelled steps were failed as "terminated")."""
        wf = self.store.workflow(wf_id)
        if wf is None or wf["phase"] not in RETRIABLE or wf["pruned_at"]:
            log.info("retry of %s ignored: it is %s", wf_id,
                     "pruned" if wf and wf["pruned_at"] else wf and wf["phase"])
            return
        rows = self._rows(wf_id)
        plan = plan_retry(rows, wf["root_step"])
        handler = exit_handler_rows(rows)
        handler_failed = any(r.phase in FAILED_PHASES for r in rows if r.id in handler)
        if not plan and not handler_failed:
            log.info("retry of %s: no failed step to run again", wf_id)
            return
        # only the exit handler failed: it runs again (the steps' end stands), made in the
        # transaction that reopens the workflow (a crash between the two would leave it
        # Running with nothing to run)
        self._apply(wf_id, plan, rows, "retry", reopen=True,
                    then=None if plan else self.start_exit_handler)
        log.info("workflow %s retried (%d steps run again)", wf_id, len(plan.pods))

    def retry_steps(self, wf_id: str, step_ids: list[int]) -> None:
        """dflow's ``retry_steps``: those failed steps of a running or failed workflow run
        again (see ``retry.plan_retry_steps``); the client checked them, this checks again."""
        wf = self.store.workflow(wf_id)
        if (wf is None or wf["pruned_at"]
                or wf["phase"] not in (states.RUNNING, states.FAILED, states.ERROR)):
            log.info("retry_steps of %s ignored: it is %s", wf_id, wf and wf["phase"])
            return
        rows = self._rows(wf_id)
        by_id = {r.id: r for r in rows}
        chosen = [i for i in step_ids if i in by_id and by_id[i].phase in FAILED_PHASES]
        plan = plan_retry_steps(rows, chosen)
        if not plan:
            log.info("retry_steps of %s: none of %s is a failed step", wf_id, step_ids)
            return
        self._apply(wf_id, plan, rows, "retry_steps", reopen=wf["phase"] != states.RUNNING)
        self.dirty.update(by_id[i].parent_id for i in plan.removed if by_id[i].parent_id)
        log.info("workflow %s: retry_steps runs %d steps again", wf_id, len(plan.pods))

    def restart_steps(self, wf_id: str, step_ids: list[int]) -> None:
        """``retry --step S --restart-successful``: those steps of a finished workflow run
        again, succeeded or failed, and what came after them is planned anew (see
        ``retry.plan_restart``); the client checked them, this checks again."""
        wf = self.store.workflow(wf_id)
        if wf is None or wf["phase"] not in RESTARTABLE or wf["pruned_at"]:
            log.info("restart_steps of %s ignored: it is %s", wf_id,
                     "pruned" if wf and wf["pruned_at"] else wf and wf["phase"])
            return
        rows = self._rows(wf_id)
        by_id = {r.id: r for r in rows}
        leaves = [i for i in step_ids if i in by_id and by_id[i].type == "Pod"]
        succeeded = [i for i in leaves if by_id[i].phase == states.SUCCEEDED]
        failed = [i for i in leaves if by_id[i].phase in FAILED_PHASES]
        templates = json.loads(self.store.existing_workflow(wf_id)["spec"])["templates"]
        plan = merge(plan_restart(rows, succeeded, templates), plan_retry_steps(rows, failed))
        if not plan.pods:
            log.info("restart_steps of %s: none of %s is a step to run again", wf_id, step_ids)
            return
        self._apply(wf_id, plan, rows, "restart", reopen=True, restart=True)
        log.info("workflow %s: %d steps restarted, %d later steps to plan anew", wf_id,
                 len(plan.pods), len(plan.removed))

    def terminate(self, wf_id: str) -> None:
        wf = self.store.workflow(wf_id)
        if wf is None or wf["phase"] not in states.WORKFLOW_LIVE:
            return
        with self._cancel_live(wf_id, "terminated") as conn:
            self.store.set_workflow_phase(conn, wf_id, states.TERMINATED, message="terminated")
        self.return_slot(wf_id)
        log.info("workflow %s terminated", wf_id)

    def stop(self, wf_id: str) -> None:
        """Argo's stop: as ``terminate``, except that the exit handler runs (and the
        workflow ends as it says, Failed at best); one that runs already runs on."""
        wf = self.store.workflow(wf_id)
        if wf is None or wf["phase"] not in states.WORKFLOW_LIVE:
            return
        if not json.loads(wf["spec"]).get("on_exit") or self.start_exit_handler is None:
            self.terminate(wf_id)
            return
        if self.store.top_step(wf_id, EXIT_HANDLER_SLOT) is not None:
            log.info("stop of %s: its exit handler runs already", wf_id)
            return
        with self._cancel_live(wf_id, "stopped") as conn:
            self.start_exit_handler(conn, wf_id)
        log.info("workflow %s stopped: its exit handler runs", wf_id)

    @contextlib.contextmanager
    def _cancel_live(self, wf_id: str, why: str) -> Iterator[Any]:
        """Cancel the workflow's jobs and fail its live steps (``why``), in a write
        transaction the caller finishes."""
        jobs = [r for r in self.store.live_jobs() if r["workflow_id"] == wf_id]
        by_executor: dict[str, list[JobRecord]] = {}
        for row in jobs:
            by_executor.setdefault(row["executor"], []).append(job_record(row))
        for name, records in by_executor.items():
            self.executor(name).cancel(records)
        with self.store.write() as conn:
            for row in jobs:
                self.store.set_job_finished(conn, row["id"], JobState.CANCELLED, None, why)
            for step in self.store.query_steps(wf_id):
                if step["phase"] in states.STEP_LIVE:
                    self.store.set_step_phase(conn, step["id"], step["phase"], states.FAILED,
                                              reason=why, workflow_id=wf_id)
            yield conn

    def _rows(self, wf_id: str) -> list[RetryRow]:
        return [RetryRow(r["id"], r["parent_id"], r["type"], r["phase"], bool(r["ran"]),
                         r["slot"] or "", r["template"] or "")
                for r in self.store.retry_rows(wf_id)]

    def _apply(self, wf_id: str, plan: RetryPlan, rows: list[RetryRow], what: str,
               reopen: bool, restart: bool = False,
               then: Callable[[Any, str], None] | None = None) -> None:
        """One transaction: the steps to plan anew removed, the containers on the failure's
        path Running again, the leaf steps Pending for a new attempt, the workflow reopened.
        ``restart``: succeeded steps and workflows may be among them. ``then`` is called
        last in the same transaction."""
        phases = {r.id: r.phase for r in rows}
        with self.store.write() as conn:
            if reopen:  # the exit handler runs again once the steps run again ended
                for step_id in exit_handler_rows(rows):
                    self.store.remove_step(conn, step_id, wf_id,
                                           f"removed by {what}: the exit handler runs again")
            for step_id in plan.removed:
                self.store.remove_step(conn, step_id, wf_id, f"removed by {what}: planned anew")
            for step_id in plan.containers:
                self.store.reset_step(conn, step_id, phases[step_id], states.RUNNING, wf_id,
                                      new_attempt=False, restart=restart)
            for step_id in plan.pods:
                self.store.reset_step(conn, step_id, phases[step_id], states.PENDING, wf_id,
                                      new_attempt=True, restart=restart)
            if reopen:
                which = "" if restart else " failed"
                self.store.reopen_workflow(conn, wf_id, f"{what}: {len(plan.pods)}{which} "
                                                        "steps run again", restart=restart)
            if then is not None:
                then(conn, wf_id)
        self.dirty.update(plan.containers)
