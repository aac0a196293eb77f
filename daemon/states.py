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


#: Only on the user's explicit request (``hpcflow retry --step S --restart-successful``,
#: as Argo's ``--restart-successful``): a succeeded leaf step back to Pending for a new
#: attempt, the Steps/DAG/loops above it and the workflow back to Running. The engine's
#: own transitions never leave Succeeded.
STEP_RESTARTS: dict[str, frozenset[str]] = {SUCCEEDED: frozenset({PENDING, RUNNING})}
WORKFLOW_RESTARTS: dict[str, frozenset[str]] = {SUCCEEDED: frozenset({RUNNING})}


class InvalidTransition(RuntimeError):
    """A transition not in the table: a bug in the engine, never a user's mistake."""


def check_step_transition(current: str | None, new: str, restart: bool = False) -> None:
    """``restart``: the user asked for a succeeded step to run again (``STEP_RESTARTS``).

    >>> check_step_transition("Succeeded", "Pending", restart=True)
    """
    if new in STEP_TRANSITIONS.get(current, frozenset()):
        return
    if restart and current is not None and new in STEP_RESTARTS.get(current, frozenset()):
        return
    raise InvalidTransition(f"step cannot go from {current} to {new}")


def check_workflow_transition(current: str | None, new: str, restart: bool = False) -> None:
    if new in WORKFLOW_TRANSITIONS.get(current, frozenset()):
        return
    if restart and current is not None and new in WORKFLOW_RESTARTS.get(current, frozenset()):
        return
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
