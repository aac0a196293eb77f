"""A scheduler plugin for hpcflow in one module, as a third party would write one: the
``toy`` scheduler runs each job as a detached ``nice``d process of the machine. Installed
with one entry point (``hpcflow.schedulers``: ``toy = "hpcflow_toy:SCHEDULER"``); a config
file's ``[machines.NAME] scheduler = "toy"`` then uses it, and ``ToyExecutor`` is how a step
asks for it. tests/e2e/test_plugins.py installs it and runs a workflow through it.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from hpcflow.connectors.plugins import SchedulerPlugin
from hpcflow.connectors.schedulers.base import (
    RUNNING,
    JobScript,
    SchedulerError,
    SchedulerState,
    directive_value,
)
from hpcflow.executors import BatchExecutorSpec

MARK = "# toy-job "


class ToyScheduler:
    name = "toy"

    def render(self, job: JobScript) -> str:
        niceness = int(job.resources.get("niceness", 0))
        if not 0 <= niceness <= 19:
            raise SchedulerError(f"toy: niceness must be 0..19, not {niceness}")
        command = " ".join(shlex.quote(a) for a in job.command)
        return "\n".join(["#!/bin/sh", f"{MARK}{directive_value('job name', job.name)}",
                          f"cd {shlex.quote(job.step_dir)} || exit 1",
                          "exec >>log.txt 2>&1", *job.prepare,
                          f"exec nice -n {niceness} {command}"]) + "\n"

    def submit_argv(self, script_path: str, pass_env: Sequence[str] = ()) -> list[str]:
        return ["sh", "-c", 'setsid sh "$1" toy-job </dev/null >/dev/null 2>&1 & echo $!',
                "sh", script_path]

    def parse_submit(self, stdout: str) -> str:
        pid = stdout.strip()
        if not pid.isdigit():
            raise SchedulerError(f"toy: no pid in {stdout!r}")
        return pid

    def poll_argv(self, native_ids: list[str]) -> list[str]:
        return ["ps", "x", "-o", "pid=,args="]

    def parse_poll(self, stdout: str) -> dict[str, SchedulerState]:
        return {parts[0]: SchedulerState(parts[0], RUNNING, "running")
                for parts in (line.split() for line in stdout.splitlines())
                if len(parts) >= 3 and parts[-1] == "toy-job"}

    def accounting_argv(self, native_ids: list[str]) -> list[str] | None:
        return None

    def parse_accounting(self, stdout: str) -> dict[str, SchedulerState]:
        return {}

    def find_argv(self, job_name: str) -> list[str]:
        return ["true"]  # no record of names: a crash between submit and record reruns

    def parse_find(self, stdout: str) -> list[str]:
        return []

    def cancel_argv(self, native_ids: list[str]) -> list[str]:
        return ["kill", "-TERM", "--", *(f"-{pid}" for pid in native_ids)]


SCHEDULER = SchedulerPlugin("toy", ToyScheduler, ("niceness",), probes=(("nice", "true"),))


class ToyExecutor(BatchExecutorSpec):
    """``Step(executor=ToyExecutor(machine="t", niceness=5))``."""

    scheduler = "toy"
