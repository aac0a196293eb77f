"""Submitting Ready steps, exactly once (the part of the service loop that talks to
executors on the way out).

The intent (job rows with their deterministic names) commits before the submission, the
job id right after it. Whatever was cut off between the two (a crash, an unreachable
machine) is looked for by name before anything else is submitted (``_reconcile_unsure``).
The service holds one ``Submitter``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hpcflow import faults
from hpcflow.connectors.executors.base import (
    ADOPTED,
    ARRAY_SUFFIX,
    OP_FILE,
    ArraysJobs,
    Executor,
    JobRecord,
    JobSpec,
    JobState,
    PacksJobs,
    claim_guarded,
    is_array,
    packs_jobs,
    reads_step_files,
    runs_arrays,
)
from hpcflow.connectors.plugins import LOCAL
from hpcflow.connectors.schedulers.base import QueueLimitError
from hpcflow.connectors.transports.base import TransportError
from hpcflow.daemon import states
from hpcflow.daemon.engine import WAKE_DIR
from hpcflow.daemon.parallelism import Limits, Live, admit, full, template_limit
from hpcflow.daemon.placement import ARRAY, GROUPING, SINGLE, Unit, pack_units, placement
from hpcflow.daemon.polling import PollSchedule
from hpcflow.daemon.reach import Reachability
from hpcflow.daemon.resolve import bind_workflow_end, bind_workflow_parameters
from hpcflow.daemon.store import Store
from hpcflow.daemon.value_files import for_job
from hpcflow.errors import HpcflowError

log = logging.getLogger("hpcflow.engine")

#: Why a job was not submitted: the scheduler's refusal (the step fails), or a queue limit
#: (the step waits).
Refusal = str | QueueLimitError

#: Ready steps looked at per executor and cycle (packs may take many), and failed at once
#: when their executor cannot be made (no such machine).
READY_BATCH = 2000


def job_record(row: Any) -> JobRecord:
    return JobRecord(id=row["id"], name=row["name"], step_dir=row["step_dir"],
                     native_id=row["native_id"], state=row["state"], created_at=row["created_at"],
                     pack=row["pack"])


def _adopted_and_rest(executor: Any, group: list[Any], jobs: list[JobSpec]
                      ) -> tuple[dict[int, str], list[tuple[Any, JobSpec]]]:
    """Of a pack's or array's intents cut off by a crash: those whose runner left traces
    (adopted), and the others with their jobs (to submit again)."""
    natives = {r["id"]: ADOPTED for r in group if executor.ran(r["step_dir"])}
    rest = [(r, job) for r, job in zip(group, jobs, strict=True) if r["id"] not in natives]
    return natives, rest


def parameter_files(spec: dict) -> bool:
    """Whether a workflow's runners mirror each parameter into a file of the step directory
    (``inputs/parameters/NAME``, ``outputs/parameters/NAME``): in dflow's debug mode, whose
    step directories hold them (they are its record of a run). Otherwise the values are in
    ``step.json`` and ``result.json`` only: two directories and a file per parameter fewer
    per step, each a metadata operation on the file server of a shared ``$HOME``."""
    return "debug_env" in spec


def _executor_of(step: Any) -> tuple[str, dict]:
    """The executor name and resources a leaf step asks for (``Step(executor=...)``)."""
    return placement(json.loads(step["spec"]) if step["spec"] else None)


class Submitter:
    """Starts Ready leaf steps as jobs, exactly once: the service holds one and calls
    ``submit_ready`` each cycle. What it needs of the service comes in as callables: the
    executor of a name, a workflow's spec, a failed step's default outputs, and what to do
    when a step becomes final (inside the transaction that made it so)."""

    def __init__(self, store: Store, home: Path, schedule: PollSchedule,
                 executor: Callable[[str], Executor], spec: Callable[[str], dict],
                 default_outputs: Callable[[Any], dict],
                 after_final: Callable[[Any, int, str, str, str | None], None],
                 reach: Reachability | None = None,
                 workflow_context: Callable[[str, dict], dict] | None = None) -> None:
        self.store = store
        #: What ``{{workflow.*}}`` reads in a workflow's steps (its exit handler's scripts).
        self.workflow_context = workflow_context
        self.home = home
        self.schedule = schedule
        self.executor = executor
        self.spec = spec
        self.default_outputs = default_outputs
        self.after_final = after_final
        self.reach = reach or Reachability()
        #: Jobs whose submission may or may not have reached the scheduler (a crash, an
        #: unreachable machine): looked for by name before anything else is submitted.
        self.unsure_jobs: set[int] = set()

    def _parallelism(self) -> tuple[Limits, Live]:
        """The ``parallelism`` limits of the owners and workflows that have live pods, and
        their live pods (``daemon/parallelism.py``)."""
        live = Live({}, {})
        owners: dict[int, int] = {}
        workflows: dict[str, int] = {}
        for row in self.store.live_pods_by_owner():
            wf, owner = row["workflow_id"], row["owner"]
            live.owner[owner] = live.owner.get(owner, 0) + row["n"]
            live.workflow[wf] = live.workflow.get(wf, 0) + row["n"]
            self._add_limits(owners, workflows, wf, owner, row["owner_template"])
        return Limits(owners, workflows), live

    def _add_limits(self, owners: dict[int, int], workflows: dict[str, int], wf: str,
                    owner: int | None, owner_template: str | None) -> None:
        spec = self.spec(wf)
        if spec.get("parallelism"):
            workflows[wf] = int(spec["parallelism"])
        limit = self._template_limit(wf, owner_template)
        if owner is not None and limit:
            owners[owner] = limit

    def _template_limit(self, wf_id: str, name: str | None) -> int | None:
        """A Steps/DAG template's ``parallelism`` limit, worked out once per workflow (it
        looks at every step of the template: a chain of 5,000 is 5,000 steps)."""
        spec = self.spec(wf_id)
        known = spec.setdefault("_template_limits", {})
        if name not in known:
            template = spec["templates"].get(name or "")
            known[name] = template_limit(template) if template else None
        return known[name]

    def _with_owner_limits(self, limits: Limits, rows: list[Any]) -> Limits:
        """``limits`` with those of the Ready pods' owners and workflows added."""
        owners, workflows = dict(limits.owner), dict(limits.workflow)
        for row in rows:
            self._add_limits(owners, workflows, row["workflow_id"], row["owner"],
                             row["owner_template"])
        return Limits(owners, workflows)

    def _timeout_of(self, step: Any) -> float | None:
        """``Step(timeout=)``, else the template's ``timeout``, in seconds."""
        spec = json.loads(step["spec"]) if step["spec"] else {}
        template = self.spec(step["workflow_id"])["templates"][step["template"]]
        value = spec.get("timeout") or template.get("timeout")
        return float(value) if value else None

    def _job(self, step: Any, executor: Executor, name: str, step_dir: str,
             resources: dict[str, Any]) -> JobSpec:
        """What the step's job needs: the runner's document and the files it names (the OP,
        input values stored by digest); an executor that can read a step's files back gets
        large outputs as files too."""
        wf_id = step["workflow_id"]
        spec = self.spec(wf_id)
        template = spec["templates"][step["template"]]
        if template.get("script") and spec.get("workflow_parameters"):
            template = {**template, "script": bind_workflow_parameters(
                template["script"], spec["workflow_parameters"])}
        if template.get("script") and spec.get("on_exit") and self.workflow_context:
            template = {**template, "script": bind_workflow_end(
                template["script"], self.workflow_context(wf_id, spec))}
        step_spec = json.loads(step["spec"]) if step["spec"] else {}
        attempt = step["attempt"] or 0
        inputs, value_files = for_job(self.store.read_value, json.loads(step["inputs"]))
        job = {
            "workflow_id": wf_id,
            "step_id": step["id"],
            "name": step["name"],
            "key": step["key"],
            "attempt": attempt,
            "template": template,
            "inputs": inputs,
            "storage": spec["_storage"],
            "artifact_prefix": f"wf/{wf_id}/{step['id']}-{attempt}",
            "archive_mode": spec.get("archive_mode", "tar"),
            "output_dir": step_spec.get("output_dir"),
            "slice_group": step_spec.get("slice_group"),
            "wake_dir": str(self.home / WAKE_DIR),
            "value_files": reads_step_files(executor),
            "parameter_files": parameter_files(spec),
        }
        if step_spec.get("volume_saves"):
            job["volume_saves"] = step_spec["volume_saves"]
        if spec.get("debug_env") and executor.name == LOCAL:
            job["env"] = spec["debug_env"]  # dflow's debug mode: the submitter's environment
        files = dict(value_files)
        if template["kind"] == "python":
            files[OP_FILE] = self.store.blob(template["op"])
            job["python"] = template.get("python")
        return JobSpec(name, step_dir, job, files, resources, self._timeout_of(step))

    def submit_ready(self) -> bool:
        """Submit Ready leaf steps, as many scheduler jobs per executor as it has free slots
        (steps asking for ``group_size`` share jobs). The intent (job rows with their
        deterministic names) commits before the submission, the job id right after it
        (exactly-once: see ``recover``)."""
        changed = self._reconcile_unsure()
        executors = self.store.ready_executors()
        limits, live = self._parallelism() if executors else (Limits(), Live({}, {}))
        for name in executors:
            try:
                executor = self.executor(name)
            except HpcflowError as exc:
                self._fail_unsubmitted(self.store.ready_pods(name, READY_BATCH), str(exc))
                changed = True
                continue
            slots = executor.free_slots()
            if slots <= 0:
                continue
            can_pack = packs_jobs(executor)
            can_array = runs_arrays(executor)
            full_owners, full_workflows = full(limits, live)
            rows = self.store.ready_pods(name, READY_BATCH if can_pack or can_array
                                         or limits.owner or limits.workflow else slots,
                                         full_owners, full_workflows)
            rows = admit(rows, self._with_owner_limits(limits, rows), live)
            units = pack_units([(r, _executor_of(r)[1]) for r in rows], slots, can_pack,
                               can_array, getattr(executor, "grouping", None))
            if units:
                changed |= self._submit_to(executor, units)
        return changed

    def _submit_to(self, executor: Executor, units: list[Unit]) -> bool:
        if claim_guarded(executor):
            # One transaction: a crash before its commit leaves no job row, and the step is
            # submitted again, which its claim makes harmless (one fewer commit per step).
            with self.store.write() as conn:
                planned = self._record_intents(conn, executor, units)
                self._record_outcomes(conn, executor, *self._start(executor, planned))
        else:
            with self.store.write() as conn:
                planned = self._record_intents(conn, executor, units)
            submitted, refused = self._start(executor, planned)
            with self.store.write() as conn:
                self._record_outcomes(conn, executor, submitted, refused)
        self.schedule.kick(executor.name, time.time())
        return True

    def _record_intents(self, conn: Any, executor: Executor,
                        units: list[Unit]) -> list[tuple[Any, dict, list, Unit]]:
        """A job row per step (state intent, deterministic name); per unit (a job, a pack or
        an array): its pack name (an array's ends with ``-array``), resources, members (job
        row id, step, name, directory) and the unit."""
        planned = []
        for unit in units:
            members = []
            pack = None
            suffix = ARRAY_SUFFIX if unit.kind == ARRAY else "-pack"
            for step, _resources in unit.members:
                attempt = step["attempt"] or 0
                name = f"hpcflow-{step['workflow_id']}-{step['id']}-{attempt}"
                pack = pack or (f"{name}{suffix}" if unit.kind != SINGLE else None)
                step_dir = executor.step_dir(step["workflow_id"], step["id"], step["name"],
                                             attempt)
                job_id = self.store.insert_job_intent(conn, step["id"], step["workflow_id"],
                                                      executor.name, name, step_dir, pack)
                members.append((job_id, step, name, step_dir))
            planned.append((pack, unit.members[0][1], members, unit))
        return planned

    def _start(self, executor: Executor, planned: list[tuple[Any, dict, list, Unit]]
               ) -> tuple[list[tuple[int, Any, str, str | None]], list[tuple[int, Any, Refusal]]]:
        """Submit each planned job, pack or array: (job row id, step, native id, pack) of
        those started, (job row id, step, reason) of those refused (a ``QueueLimitError`` for
        those held back by a queue limit: after one, the rest are held back without a try)."""
        submitted: list[tuple[int, Any, str, str | None]] = []
        refused: list[tuple[int, Any, Refusal]] = []
        limited: QueueLimitError | None = None
        for pack, resources, members, unit in planned:
            if limited is not None:  # the queue is full: the rest wait too, not even tried
                refused += [(m[0], m[1], limited) for m in members]
                continue
            try:
                jobs = [self._job(s, executor, n, d, resources) for _, s, n, d in members]
                if pack is None:
                    natives = [executor.submit(jobs[0])]
                elif unit.kind == ARRAY:
                    assert isinstance(executor, ArraysJobs)  # pack_units makes arrays for those
                    natives = executor.submit_array(pack, jobs, unit.throttle)
                else:
                    assert isinstance(executor, PacksJobs)  # pack_units packs for those only
                    natives = [executor.submit_pack(pack, jobs)] * len(members)
            except QueueLimitError as exc:  # held back until jobs leave the queue
                limited = exc
                refused += [(m[0], m[1], exc) for m in members]
                continue
            except HpcflowError as exc:  # refused by the scheduler, an untrusted host key, ...
                refused += [(m[0], m[1], str(exc)) for m in members]
                continue
            except TransportError as exc:
                log.warning("submitting %s to %s failed (%s): will look for it by name",
                            pack or members[0][2], executor.name, exc)
                self.reach.lost(executor.name, exc)
                self.unsure_jobs.update(m[0] for m in members)
                continue
            self.reach.reached(executor.name)
            submitted += [(m[0], m[1], native, pack)
                          for m, native in zip(members, natives, strict=True)]
            # between the scheduler's answer and the commit of the job id: the worst
            # moment to crash (the exactly-once tests crash here)
            faults.point(faults.AFTER_SUBMIT, f"{pack or members[0][2]} as {natives[0]}")
        return submitted, refused

    def _record_outcomes(self, conn: Any, executor: Executor,
                         submitted: list[tuple[int, Any, str, str | None]],
                         refused: list[tuple[int, Any, Refusal]]) -> None:
        for job_id, step, native, pack in submitted:
            self._mark_submitted(conn, job_id, step, native, pack, executor.queues)
        for job_id, step, reason in refused:
            if isinstance(reason, QueueLimitError):
                self._hold_back(conn, job_id, step, str(reason))
                continue
            self.store.set_job_finished(conn, job_id, JobState.REFUSED, None, reason)
            self._fail_step(conn, step, reason)

    def _hold_back(self, conn: Any, job_id: int, step: Any, reason: str) -> None:
        """Refused for a queue limit: the intent is closed (no job exists) and the step stays
        Pending with the scheduler's reason; it is ready again, and its executor's lowered
        ``free_slots`` decides when it goes out (``connectors/executors/queue_hold.py``)."""
        self.store.set_job_held_back(conn, job_id, step["workflow_id"], step["id"], reason)
        self.store.set_queue_state(conn, step["id"], step["workflow_id"], states.PENDING,
                                   states.PENDING, reason)

    def _mark_submitted(self, conn: Any, job_id: int, step: Any, native: str,
                        pack: str | None, queues: bool) -> None:
        """The job is with its executor. Where jobs wait in a scheduler's queue the step
        stays Pending until a poll sees its job start (``Service._queue_changes``);
        elsewhere it runs now."""
        # A packed step shares its job: the engine's per-step timeout cannot kill it alone,
        # so packs rely on the scheduler's time limit (time=). An array's element can.
        timeout = None if pack and not is_array(pack) else self._timeout_of(step)
        self.store.set_job_submitted(conn, job_id, native, timeout)
        if step["phase"] == states.PENDING and not queues:
            self.store.set_step_phase(conn, step["id"], states.PENDING, states.RUNNING,
                                      workflow_id=step["workflow_id"])

    def _reconcile_unsure(self) -> bool:
        """Submissions cut off by a crash or a transport error: find each job (or pack) by
        name, or submit what never ran, once."""
        changed = False
        rows = [self.store.job(job_id) for job_id in sorted(self.unsure_jobs)]
        groups: dict[str, list[Any]] = {}
        for row in rows:
            if row is not None and row["state"] == JobState.INTENT:
                groups.setdefault(row["pack"] or row["name"], []).append(row)
        self.unsure_jobs = {r["id"] for group in groups.values() for r in group}
        for group in groups.values():
            steps = [self.store.existing_step(r["step_id"]) for r in group]
            _, resources = _executor_of(steps[0])
            resources = {k: v for k, v in resources.items() if k not in GROUPING}
            try:
                executor = self.executor(group[0]["executor"])
                natives = self._find_or_submit(executor, group, steps, resources)
            except TransportError as exc:
                new = self.reach.lost(group[0]["executor"], exc)
                (log.warning if new else log.debug)("%s still unreachable (%s)",
                                                    group[0]["executor"], exc)
                return changed
            except QueueLimitError as exc:  # not found, and the queue is full: it waits
                with self.store.write() as conn:
                    for row, step in zip(group, steps, strict=True):
                        self._hold_back(conn, row["id"], step, str(exc))
                self.unsure_jobs.difference_update(r["id"] for r in group)
                changed = True
                continue
            except HpcflowError as exc:  # refused by the scheduler, or no such machine
                with self.store.write() as conn:
                    for row, step in zip(group, steps, strict=True):
                        self.store.set_job_finished(conn, row["id"], JobState.REFUSED, None,
                                                    str(exc))
                        self._fail_step(conn, step, str(exc))
                self.unsure_jobs.difference_update(r["id"] for r in group)
                continue
            self.reach.reached(group[0]["executor"])
            with self.store.write() as conn:
                for row, step in zip(group, steps, strict=True):
                    self._mark_submitted(conn, row["id"], step, natives[row["id"]], row["pack"],
                                         executor.queues)
            log.info("reconciled %s (%s)", group[0]["pack"] or group[0]["name"],
                     ", ".join(sorted(set(natives.values()))))
            self.unsure_jobs.difference_update(r["id"] for r in group)
            changed = True
        return changed

    def _find_or_submit(self, executor: Executor, group: list[Any], steps: list[Any],
                        resources: dict) -> dict[int, str]:
        """Native ids for intent rows: a single job through the executor's reconcile; a pack
        found by its name, else its steps that left traces adopted and the rest packed anew."""
        jobs = [self._job(s, executor, r["name"], r["step_dir"], resources)
                for r, s in zip(group, steps, strict=True)]
        if not group[0]["pack"]:
            return {group[0]["id"]: executor.reconcile(job_record(group[0]), jobs[0])}
        pack = group[0]["pack"]
        if is_array(pack):
            return self._find_or_submit_array(executor, group, steps, jobs, pack)
        if not isinstance(executor, PacksJobs):
            raise HpcflowError(f"{executor.name} cannot run packs (group_size) any more: "
                               f"its steps of pack {pack} cannot be recovered")
        found = executor.find(pack)
        if found:
            log.info("pack %s found in %s as %s: not submitted again", pack, executor.name,
                     found)
            return {r["id"]: found for r in group}
        natives, rest = _adopted_and_rest(executor, group, jobs)
        if rest:
            native = executor.submit_pack(pack, [job for _, job in rest])
            natives.update({r["id"]: native for r, _ in rest})
        return natives

    def _find_or_submit_array(self, executor: Executor, group: list[Any], steps: list[Any],
                              jobs: list[JobSpec], array: str) -> dict[int, str]:
        """An array cut off by a crash: found by its name (its elements in the intents'
        order, the order it was submitted in), else its elements that left traces adopted
        and the rest submitted as a new array of the same name."""
        if not (isinstance(executor, ArraysJobs) and executor.runs_arrays):
            raise HpcflowError(f"{executor.name} cannot run job arrays any more: its steps of "
                               f"array {array} cannot be recovered")
        found = executor.find(array)
        if found:
            log.info("array %s found in %s as %s: not submitted again", array, executor.name,
                     found)
            ids = executor.element_ids(found, len(group))
            return {r["id"]: native for r, native in zip(group, ids, strict=True)}
        natives, rest = _adopted_and_rest(executor, group, jobs)
        if rest:
            throttle = _executor_of(steps[0])[1].get(
                "array_throttle", getattr(executor, "grouping", {}).get("array_throttle"))
            ids = executor.submit_array(array, [job for _, job in rest], throttle)
            natives.update({r["id"]: native for (r, _), native in zip(rest, ids, strict=True)})
        return natives

    def _fail_unsubmitted(self, steps: list[Any], reason: str) -> None:
        with self.store.write() as conn:
            for step in steps:
                self._fail_step(conn, step, reason)

    def _fail_step(self, conn: Any, step: Any, reason: str) -> None:
        """A Pending step that cannot be submitted (no such machine, a refused resource)."""
        if self.store.set_step_phase(conn, step["id"], states.PENDING, states.ERROR,
                                     outputs=self.default_outputs(step), reason=reason,
                                     workflow_id=step["workflow_id"]):
            self.after_final(conn, step["parent_id"], step["workflow_id"], states.ERROR,
                              reason)

