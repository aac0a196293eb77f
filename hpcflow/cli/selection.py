"""Choosing workflows on the command line: ids, or selectors (``--label K=V``, ``--phase``,
``--older-than``), as ``kubectl`` and ``argo`` take them; phases are matched without regard
to case, and an unknown one is an error that lists the known ones."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from hpcflow.cli.completion import workflow_ids
from hpcflow.errors import HpcflowError

#: Every phase a workflow can be in, as shown.
WORKFLOW_PHASES = ("Pending", "Running", "Succeeded", "Failed", "Error", "Terminated")
#: Every phase a step can be in, as shown.
STEP_PHASES = ("Pending", "Running", "Succeeded", "Failed", "Error", "Skipped", "Omitted")

F = TypeVar("F", bound=Callable[..., Any])


def canonical_phase(text: str | None, known: tuple[str, ...] = WORKFLOW_PHASES) -> str | None:
    """``text`` as the phase it names, whatever its case.

    >>> canonical_phase("failed"), canonical_phase(None)
    ('Failed', None)
    >>> canonical_phase("Done")
    Traceback (most recent call last):
    hpcflow.errors.HpcflowError: unknown phase 'Done': use one of Pending, Running, Succeeded, Failed, Error, Terminated
    """  # noqa: E501
    if text is None:
        return None
    for phase in known:
        if phase.lower() == text.strip().lower():
            return phase
    raise HpcflowError(f"unknown phase {text!r}: use one of {', '.join(known)}")


def workflow_phase_option(ctx: click.Context, param: click.Parameter, value: str | None
                          ) -> str | None:
    try:
        return canonical_phase(value)
    except HpcflowError as exc:
        raise click.BadParameter(str(exc)) from None


def step_phase_option(ctx: click.Context, param: click.Parameter, value: str | None
                      ) -> str | None:
    try:
        return canonical_phase(value, STEP_PHASES)
    except HpcflowError as exc:
        raise click.BadParameter(str(exc)) from None


def labels_of(values: tuple[str, ...]) -> dict[str, str]:
    labels = {}
    for text in values:
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise HpcflowError(f"--label {text!r} is not KEY=VALUE")
        labels[key] = value
    return labels


def workflow_ids_given(ctx: click.Context, param: click.Parameter,
                       value: str | tuple[str, ...] | None) -> str | tuple[str, ...] | None:
    """WORKFLOW arguments as ids: ``@latest`` is this home's newest workflow (as in
    ``argo get @latest``)."""
    if value is None:
        return None
    if isinstance(value, tuple):
        return tuple(_workflow_id(text) for text in value)
    return _workflow_id(value)


def _workflow_id(text: str) -> str:
    from hpcflow.daemon import client

    if text != client.LATEST:
        return text
    from hpcflow.settings import home

    return client.resolve_workflow_id(home(), text)


def workflow_argument(required: bool = True) -> Callable[[F], F]:
    """``WORKFLOW``: an id (completed by the shell) or ``@latest``."""
    return click.argument("workflow", required=required, shell_complete=workflow_ids,
                          callback=workflow_ids_given)


def selectors(func: F) -> F:
    """``WORKFLOW...`` and the selectors, for a command acting on several workflows."""
    func = click.option("--older-than", "older_than", default=None, metavar="AGE",
                        help="Workflows created more than AGE ago (30d, 12h, 90m).")(func)
    func = click.option("--phase", default=None, callback=workflow_phase_option,
                        help="Workflows in this phase (any case).")(func)
    func = click.option("--label", "labels", multiple=True, metavar="KEY=VALUE",
                        help="Workflows with this label (repeatable: all must match).")(func)
    return click.argument("workflows", nargs=-1, shell_complete=workflow_ids,
                          callback=workflow_ids_given)(func)


def chosen(home: Path, workflows: tuple[str, ...], labels: tuple[str, ...],
           phase: str | None, older_than: str | None, command: str) -> list[str]:
    """The ids given, and those the selectors match (all of them must), in that order,
    each once; an error when neither was given (nothing is acted on by default)."""
    from hpcflow.daemon import client

    if not workflows and not (labels or phase or older_than):
        raise HpcflowError(f"'hpcflow {command}' needs WORKFLOW ids or a selector: --label "
                           "KEY=VALUE, --phase PHASE, --older-than AGE")
    ids = list(dict.fromkeys(workflows))
    if labels or phase or older_than:
        wanted = labels_of(labels)
        cutoff = time.time() - client.parse_age(older_than) if older_than else None
        for row in client.store_for(home).workflows(phase=phase, labels=wanted):
            if cutoff is not None and (row["created_at"] or 0) >= cutoff:
                continue
            if row["id"] not in ids:
                ids.append(row["id"])
    return ids

