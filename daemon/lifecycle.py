"""The job lifecycle: what a step does when its job ends (pure).

The executor reports how a job ended (a ``JobResult``: the runner's result, the scheduler's
account, lost, past its deadline); these rules turn it, with the step's phase and attempt
and its template's retry settings, into one decision for the service to apply in its write
transaction: finish the step in a phase, retry it, or leave it (a step no longer Running:
terminated, or already final). The style is the planner's and dask's
``worker_state_machine``: facts in, a decision out, no store and no processes, so that
every rule has a unit test.

The rules, in dflow/Argo's terms:

- A result the runner sealed gives the phase, reason and outputs; anything else that claims
  outputs (planted, altered) is an Error and nothing of it is used (``JobResult.trusted``
  decides, before this module sees the result).
- A lost job (no trace in the scheduler, no result) is an Error; a job killed at the step's
  ``timeout`` is Failed with a ``TimeoutError`` reason.
- A failure is retried while ``attempt < limit`` when it is *transient*: the OP raised
  ``TransientError``; the node failed or the job was preempted (then at least
  ``INFRASTRUCTURE_RETRIES`` attempts, whatever the template says); the step timed out
  and the template has ``timeout_as_transient_error``; or the template's
  ``retry_on_failure``/``_error``/``_failure_and_error`` policy names the phase (its own
  limit). ``retry_on_transient_error`` is the limit otherwise.
- A failed step keeps its template's default outputs (so that ``continue_on_failed``
  consumers read them) and, for a slice group, how many of its slices succeeded.

>>> end = JobResult("Failed", reason="boom", transient=True)
>>> decide(end, StepFacts(phase="Running", attempt=0), {"retry_on_transient_error": 2})
Retry(message='attempt 1 of 3 failed (boom); retrying')
>>> decide(end, StepFacts(phase="Running", attempt=2), {"retry_on_transient_error": 2})
Finish(phase='Failed', reason='boom', outputs=None)
>>> decide(JobResult.lost("the job vanished"), StepFacts("Running", 0), {})
Finish(phase='Error', reason='the job vanished', outputs=None)
>>> decide(end, StepFacts(phase="Failed", attempt=0), {}) is None  # terminated meanwhile
True

A submitted step whose job waits in the scheduler's queue is Pending, with the scheduler's
reason (Argo's meaning: created, not yet running), and Running from when its job starts:

>>> queue_change("Pending", None, "queued", "Priority", "hpc")
('Pending', "waiting in hpc's queue: Priority")
>>> queue_change("Pending", "waiting in hpc's queue: Priority", "running", None, "hpc")
('Running', None)
>>> queue_change("Running", None, "running", None, "hpc") is None  # nothing new
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hpcflow.connectors.executors.base import JobResult, JobState
from hpcflow.daemon import states

#: Attempts a step gets after node failures or preemptions, whatever its own retry setting.
INFRASTRUCTURE_RETRIES = 3
#: The policy value of dflow's ``retry_on_failure_and_error``-like settings that retries
#: whatever the phase.
ALWAYS = "Always"


@dataclass(frozen=True)
class StepFacts:
    """What the decision needs of the step: its phase now and its attempt number."""

    phase: str
    attempt: int


@dataclass(frozen=True)
class Retry:
    """Run the step again (a new attempt, back to Pending), saying why."""

    message: str


@dataclass(frozen=True)
class Finish:
    """Make the step final in ``phase``; ``outputs`` None means the template's defaults."""

    phase: str
    reason: str | None
    outputs: dict[str, Any] | None


Decision = Retry | Finish


def retry_limit(end: JobResult, template: dict[str, Any]) -> tuple[bool, int]:
    """(whether the failure counts as transient, how many retries the step gets).

    >>> retry_limit(JobResult("Failed", timed_out=True), {"timeout_as_transient_error": True})
    (True, 0)
    >>> retry_limit(JobResult("Error"), {"retry_policy": {"on": "Error", "limit": 4}})
    (True, 4)
    >>> retry_limit(JobResult("Failed", infrastructure=True), {"retry_on_transient_error": 1})
    (True, 3)
    """
    transient = (end.transient or end.infrastructure
                 or (end.timed_out and bool(template.get("timeout_as_transient_error"))))
    retries = int(template.get("retry_on_transient_error") or 0)
    policy = template.get("retry_policy") or {}
    if not transient and policy.get("on") in (end.phase, ALWAYS):
        transient, retries = True, int(policy["limit"])
    if end.infrastructure:
        retries = max(retries, INFRASTRUCTURE_RETRIES)
    return transient, retries


def decide(end: JobResult, step: StepFacts, template: dict[str, Any]) -> Decision | None:
    """What the step does now that its job ended; None when the step is no longer waiting
    for the job (terminated, or final already): then only the job's record changes. A step
    still Pending had its job end before a poll saw it start: it ends the same way."""
    if step.phase not in states.STEP_LIVE:
        return None
    if end.phase == states.SUCCEEDED:
        return Finish(states.SUCCEEDED, end.reason, end.outputs)
    transient, retries = retry_limit(end, template)
    if transient and step.attempt < retries:
        return Retry(f"attempt {step.attempt + 1} of {retries + 1} failed ({end.reason}); "
                     "retrying")
    return Finish(end.phase, end.reason, None)


def queue_change(phase: str, reason: str | None, job_state: str, why: str | None,
                 machine: str) -> tuple[str, str | None] | None:
    """A live step's (phase, reason) once its job is reported ``queued`` (``why``: the
    scheduler's reason) or ``running``; None when that changes nothing. A running job put
    back in the queue (Slurm requeues a preempted job) makes its step Pending again."""
    if phase not in states.STEP_LIVE:
        return None
    if job_state == JobState.RUNNING:
        return (states.RUNNING, None) if phase == states.PENDING else None
    if job_state != JobState.QUEUED:
        return None
    waiting = f"waiting in {machine}'s queue: {why}" if why else f"waiting in {machine}'s queue"
    if phase == states.PENDING and reason == waiting:
        return None
    return states.PENDING, waiting
