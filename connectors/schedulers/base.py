"""The ``Scheduler`` protocol and what every scheduler module shares.

A scheduler never runs anything: it renders job scripts and argument lists and
parses the scheduler's answers, so each one is tested against recorded output.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from hpcflow.errors import HpcflowError

QUEUED, RUNNING, DONE = "queued", "running", "done"


class SchedulerError(HpcflowError):
    """The scheduler refused something (a bad resource request, say): the step fails."""


class QueueLimitError(SchedulerError):
    """The scheduler refused a job for a limit on how many jobs the user (their QOS,
    association, queue) may have: nothing is wrong with the job, it waits until jobs leave
    the queue (``connectors/executors/queue_hold.py``). The message is the step's reason."""


def submit_limit(scheduler: Any, output: str) -> str | None:
    """What a refused submission's ``output`` says, when it is a refusal for a queue limit
    (the scheduler's ``submit_limit``; a scheduler without one knows no such refusal)."""
    recognise = getattr(scheduler, "submit_limit", None)
    return recognise(output) if callable(recognise) else None


@dataclass(frozen=True)
class JobScript:
    """One job: the runner command to run in ``step_dir`` with the given resources."""

    name: str
    step_dir: str
    command: list[str]
    #: Lines from the machine's config that prepare the environment (module load, ...).
    prepare: list[str] = field(default_factory=list)
    resources: dict[str, Any] = field(default_factory=dict)
    #: An array job: element ``i`` (from 1) runs ``command`` in ``elements[i - 1]``, its
    #: output appended to that directory's ``log.txt``; the scheduler's own messages for an
    #: element go to ``step_dir/log-INDEX.txt``. Empty: one plain job.
    elements: tuple[str, ...] = ()
    #: At most this many elements of the array run at once (None: no limit).
    throttle: int | None = None


@dataclass(frozen=True)
class SchedulerState:
    """What the scheduler says of one job."""

    native_id: str
    #: ``queued``, ``running`` or ``done``.
    state: str
    #: The scheduler's own name for the state (COMPLETED, TIMEOUT, ...).
    raw: str
    exit_code: int | None = None
    #: For a job that ended without the runner's result: why, in words for the user.
    reason: str | None = None
    #: Worth another attempt (node failure, preemption), whatever the step's retry setting.
    infrastructure: bool = False
    #: Killed for its time limit (``timeout_as_transient_error`` applies).
    timed_out: bool = False
    #: Over for its step, yet still in the queue (held in error): cancel it, or it lingers
    #: there and a retry would run beside it.
    lingers: bool = False
    #: For a queued job: why it is not running yet, in the scheduler's words (Slurm's
    #: ``Priority``, ``Resources``, ``QOSMaxJobsPerUserLimit``; held; suspended).
    waiting_for: str | None = None


class Scheduler(Protocol):
    name: str

    def render(self, job: JobScript) -> str:
        """The job script."""

    def submit_argv(self, script_path: str, pass_env: Sequence[str] = ()) -> list[str]:
        """The submit command; the job gets the variables ``pass_env`` of the command's own
        environment (credentials that must not be written into the script)."""

    def parse_submit(self, stdout: str) -> str:
        """The job id from the submit command's output."""

    def poll_argv(self, native_ids: list[str]) -> list[str]:
        """One command that reports on every given job (and maybe others)."""

    def parse_poll(self, stdout: str) -> dict[str, SchedulerState]: ...

    def accounting_argv(self, native_ids: list[str]) -> list[str] | None:
        """A command for jobs the poll no longer shows (finished long ago), if any."""

    def parse_accounting(self, stdout: str) -> dict[str, SchedulerState]: ...

    def find_argv(self, job_name: str) -> list[str]:
        """A command that lists the ids of live jobs called ``job_name`` (reconciliation)."""

    def parse_find(self, stdout: str) -> list[str]: ...

    def cancel_argv(self, native_ids: list[str]) -> list[str]: ...

    # Optional: ``submit_limit(output) -> str | None``: for a submission refused for a limit
    # on the user's jobs (not for a mistake in the job), why, in words for the user with the
    # scheduler's own; None otherwise (see ``submit_limit`` above).


@runtime_checkable
class ArrayScheduler(Protocol):
    """Optional: the scheduler runs job arrays (``JobScript.elements``), each element a job
    of its own in the queue, with its own id, state and cancellation."""

    def element_id(self, array_id: str, index: int) -> str:
        """The id of element ``index`` (from 1) of the array job ``array_id``, as the
        scheduler's poll, accounting and cancel commands name it."""


#: A native id as schedulers give them (``1234``, ``1234_7``, ``123.7``, ``123[7].server``):
#: safe to pass as one argument to their commands.
NATIVE_ID = re.compile(r"^[A-Za-z0-9_.\[\]-]+$")


def element_lines(job: JobScript, index_variable: str) -> list[str]:
    """The lines of an array job's script that move element ``$index_variable`` into its
    own step directory and send its output to that directory's log (its runner then runs
    as a plain job's does, in ``.``).

    >>> element_lines(JobScript("a", "/w/a", ["run"], elements=("/w/s1", "/w/s2")), "I")
    ['HPCFLOW_ELEMENTS=(/w/s1 /w/s2)', 'cd -- "${HPCFLOW_ELEMENTS[I - 1]}" || exit 1', \
'exec >>log.txt 2>&1']
    """
    dirs = " ".join(shlex.quote(directive_value("step directory", d)) for d in job.elements)
    return [f"HPCFLOW_ELEMENTS=({dirs})",
            f'cd -- "${{HPCFLOW_ELEMENTS[{index_variable} - 1]}}" || exit 1',
            "exec >>log.txt 2>&1"]


def array_range(job: JobScript, throttle_mark: str = "%") -> str:
    """``1-N`` (``1-N%K`` with a throttle) for an array of N elements."""
    text = f"1-{len(job.elements)}"
    return text if job.throttle is None else f"{text}{throttle_mark}{int(job.throttle)}"


_SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.,:=@%+/-]*$")


def directive_value(key: str, value: Any) -> str:
    """A resource value safe to write after a directive (no newline, no shell syntax)."""
    text = str(value)
    if isinstance(value, bool) or not _SAFE_VALUE.match(text) or not text:
        raise SchedulerError(f"resource {key}={value!r} is not allowed: use letters, digits "
                             "and ._,:=@%+/- only")
    return text


def extra_directive(text: str) -> str:
    """A user's extra directive: one line, no shell metacharacters that could end it."""
    if not isinstance(text, str) or "\n" in text or "\r" in text or not text.strip():
        raise SchedulerError(f"extra directive {text!r} must be one non-empty line")
    return text.strip()


def command_line(argv: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)
