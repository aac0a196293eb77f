"""The state machine: the only transition tables for workflows and steps (Argo's phase names).

Pure data and pure functions; the store applies a transition and its event row in one
transaction.

>>> check_step_transition("Pending", "Running")
>>> check_step_transition("Succeeded", "Running")
Traceback (most recent call last):
...
hpcflow.daemon.states.InvalidTransition: step cannot go from Succeeded to Running
"""

from __future__ import annotations

from hpcflow.phases import (
    ERROR,
    FAILED,
    OMITTED,
    PENDING,
    RUNNING,
    SKIPPED,
    STEP_FINAL,
    STEP_LIVE,
    STEP_OK,
    SUCCEEDED,
    TERMINATED,
    WORKFLOW_FINAL,
    WORKFLOW_LIVE,
)

__all__ = ["ERROR", "FAILED", "OMITTED", "PENDING", "RUNNING", "SKIPPED", "STEP_FINAL",
           "STEP_LIVE", "STEP_OK", "SUCCEEDED", "TERMINATED", "WORKFLOW_FINAL",
           "WORKFLOW_LIVE", "InvalidTransition", "check_step_transition",
           "check_workflow_transition", "workflow_phase_for_root"]

#: None stands for "no row yet" (creation).
STEP_TRANSITIONS: dict[str | None, frozenset[str]] = {
    None: frozenset({PENDING, RUNNING, SKIPPED, OMITTED, ERROR, SUCCEEDED, FAILED}),
    PENDING: frozenset({RUNNING, SKIPPED, OMITTED, SUCCEEDED, FAILED, ERROR}),
    RUNNING: frozenset({SUCCEEDED, FAILED, ERROR, PENDING}),
    # A retry: a leaf step back to Pending for a new attempt, a Steps/DAG/loop back to Running.
    FAILED: frozenset({PENDING, RUNNING}),
    ERROR: frozenset({PENDING, RUNNING}),
    SUCCEEDED: frozenset(),
    SKIPPED: frozenset(),
    OMITTED: frozenset(),
}

WORKFLOW_TRANSITIONS: dict[str | None, frozenset[str]] = {
    None: frozenset({PENDING}),
    PENDING: frozenset({RUNNING, FAILED, ERROR, TERMINATED}),
    RUNNING: frozenset({SUCCEEDED, FAILED, ERROR, TERMINATED}),
    FAILED: frozenset({RUNNING}),
    ERROR: frozenset({RUNNING}),
    SUCCEEDED: frozenset(),
    TERMINATED: frozenset({RUNNING}),  # retried (as Argo retries a terminated workflow)
}



class InvalidTransition(RuntimeError):
    """A transition not in the table: a bug in the engine, never a user's mistake."""


def check_step_transition(current: str | None, new: str) -> None:
    if new not in STEP_TRANSITIONS.get(current, frozenset()):
        raise InvalidTransition(f"step cannot go from {current} to {new}")


def check_workflow_transition(current: str | None, new: str) -> None:
    if new not in WORKFLOW_TRANSITIONS.get(current, frozenset()):
        raise InvalidTransition(f"workflow cannot go from {current} to {new}")


def workflow_phase_for_root(root_phase: str) -> str | None:
    """The workflow's final phase once its root step is final, else None."""
    if root_phase in (SUCCEEDED, SKIPPED):
        return SUCCEEDED
    if root_phase in (FAILED, OMITTED):
        return FAILED
    if root_phase == ERROR:
        return ERROR
    return None
