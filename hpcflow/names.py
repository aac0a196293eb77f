"""Name rules of dflow (seed README, section 3.1.18), enforced when a workflow is built.

>>> check_step_name("My-name1-2")
>>> check_template_name("my-name")
"""

from __future__ import annotations

import re

from hpcflow.errors import WorkflowDefinitionError

_RFC1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_STEP_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9-]*$")
_IO_NAME = re.compile(r"^[a-zA-Z0-9_-]+$")

WORKFLOW_RULE = (
    "lowercase RFC 1123 subdomain (lower case alphanumeric characters, '-' or '.', "
    "starting and ending with an alphanumeric character), at most 57 characters"
)
STEP_RULE = "alphanumeric characters or '-', starting with an alphanumeric character"
IO_RULE = "alphanumeric characters, '_' or '-'"
#: dflow's key rule (``dflow.common.key_regex``).
KEY_RULE = "lower case alphanumeric characters or '-', starting with an alphanumeric character"
_KEY = re.compile(r"^[a-z0-9][-a-z0-9]*$")
_REFERENCE = re.compile(r"\{\{[^}]*\}\}")


def _fail(kind: str, name: object, rule: str) -> None:
    raise WorkflowDefinitionError(f"{kind} name {name!r} breaks the naming rule: must be {rule}")


def check_workflow_name(name: str) -> None:
    if not isinstance(name, str) or len(name) > 57 or not _RFC1123_SUBDOMAIN.match(name):
        _fail("workflow", name, WORKFLOW_RULE)


def check_template_name(name: str) -> None:
    if not isinstance(name, str) or len(name) > 57 or not _RFC1123_SUBDOMAIN.match(name):
        _fail("template", name, WORKFLOW_RULE)


def check_step_name(name: str) -> None:
    if not isinstance(name, str) or not _STEP_NAME.match(name):
        _fail("step", name, STEP_RULE)


def check_io_name(name: str, kind: str = "parameter") -> None:
    if not isinstance(name, str) or not _IO_NAME.match(name):
        _fail(kind, name, IO_RULE)


def check_key(key: str) -> None:
    """A key as written, checked as dflow checks it: each ``{{...}}`` stands for a letter,
    so ``"{{inputs.parameters.block_id}}--prep"`` passes whatever it resolves to. The
    resolved key is a label and is not checked again (nor is it in dflow).

    >>> check_key("evo-{{item}}"), check_key("{{inputs.parameters.id}}--prep-train")
    (None, None)
    """
    if not isinstance(key, str) or not _KEY.match(_REFERENCE.sub("a", key)):
        _fail("key", key, KEY_RULE)


def to_template_name(text: str) -> str:
    """Turn a class or function name into a valid template name: ``SumOP`` -> ``sumop``."""
    cleaned = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-") or "template"
    return cleaned[:50].strip("-") or "template"
