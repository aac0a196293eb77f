"""Errors a user can act on.

Every class here carries a one-line message that names the culprit and what to
do; the CLI prints ``hpcflow: <message>`` and exits non-zero, never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable


class HpcflowError(Exception):
    """Base of all errors caused by user input or the environment."""


class WorkflowDefinitionError(HpcflowError):
    """The workflow as written cannot run (bad name, missing input, wrong type...)."""


class StoreError(HpcflowError):
    """The store cannot be opened or used safely."""


class NotFoundError(HpcflowError):
    """A workflow, step or artifact that was asked for does not exist."""


def nearest(word: str, known: Iterable[str]) -> str | None:
    """The one of ``known`` ``word`` most likely misspells, for a message's "did you mean
    ...?"; None when none is close."""
    import difflib

    found = difflib.get_close_matches(word, list(known), n=1)
    return found[0] if found else None
