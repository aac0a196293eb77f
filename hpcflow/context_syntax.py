"""dflow's ``with`` syntax: steps created inside ``with Workflow(...)``, ``with Steps(...)``
or ``with DAG(...)`` join that container.

The open containers form a stack: a ``with Steps()`` opened inside a ``with Workflow()``
takes the steps made in its block, and those made after it closes join the workflow again
(dflow keeps one current container and forgets the outer one when the inner closes).
"""

from __future__ import annotations

from typing import Any

_open: list[Any] = []


def enter(container: Any) -> None:
    """``container`` (anything with ``add``) takes the steps created from now on."""
    _open.append(container)


def leave(container: Any) -> None:
    """``container``'s block ended; the one around it, if any, takes steps again."""
    if container in _open:
        del _open[len(_open) - 1 - _open[::-1].index(container)]


def join(step: Any) -> None:
    """Called by every new Step/Task: added to the innermost open container, if any."""
    if _open:
        _open[-1].add(step)


def in_context() -> bool:
    return bool(_open)
