"""Errors a user can act on.

Every class here carries a one-line message that names the culprit and what to
do; the CLI prints ``hpcflow: <message>`` and exits non-zero, never a traceback.
"""

from __future__ import annotations


class HpcflowError(Exception):
    """Base of all errors caused by user input or the environment."""


class WorkflowDefinitionError(HpcflowError):
    """The workflow as written cannot run (bad name, missing input, wrong type...)."""


class StoreError(HpcflowError):
    """The store cannot be opened or used safely."""


class NotFoundError(HpcflowError):
    """A workflow, step or artifact that was asked for does not exist."""
