"""No scheduler: each job is a detached process on the machine (``RemoteExecutor``,
``ContainerExecutor``).

The job script runs under ``setsid`` (its own session and process group, so it outlives the
SSH channel that started it and a cancel reaches its whole tree) with the job's name as its
argument, which is how a poll (``ps``) and a look-up by name (reconciliation) recognise it.
The job id is the process id. A process that is gone has ended: its runner's
``result.json`` says how; one that left none is lost (the batch executor's grace applies).

>>> s = ProcessScheduler()
>>> script = s.render(JobScript("hpcflow-w-1-0", "/r/w/s", ["python3", "-m", "x", "."]))
>>> script.splitlines()[:3]
['#!/bin/sh', '# hpcflow-job: hpcflow-w-1-0', 'cd /r/w/s || exit 1']
>>> s.parse_submit("4242\\n")
'4242'
>>> out = " 12 sh /r/w/s/job.sh hpcflow-w-1-0\\n 13 -bash\\n 14 sh /r/w/t/job.sh hpcflow-w-2-0\\n"
>>> sorted(s.parse_poll(out)), s.parse_poll(out)["12"].state
(['12', '14'], 'running')
"""

from __future__ import annotations

from collections.abc import Sequence

from hpcflow.connectors.plugins import SchedulerPlugin
from hpcflow.connectors.schedulers.base import (
    RUNNING,
    JobScript,
    SchedulerError,
    SchedulerState,
    command_line,
    directive_value,
)

#: The line of the job script that names the job (read back by the submit command).
NAME_LINE = "# hpcflow-job: "
SCRIPT_NAME = "job.sh"

#: $1: the job script. Starts it detached, in its own session, with the job's name (from
#: its second line) as its argument; prints its pid. One line: a csh login shell takes it.
_START = " ".join((
    'cd "${1%/*}" || exit 1;',
    "name=$(sed -n '2s/^# hpcflow-job: //p' \"$1\");",
    '[ -n "$name" ] || { echo "no job name in $1" >&2; exit 1; };',
    'nohup setsid sh "$1" "$name" </dev/null >/dev/null 2>&1 &',
    "echo $!",
))
#: $1: a job name. The pids of this user's processes running a job script for it.
_FIND = "ps x -o pid=,args= | awk -v n=\"$1\" '$NF == n && $(NF-1) ~ /job[.]sh$/ {print $1}'"
#: The ids: each process group, if it is still there.
#: (``kill -SIG -PGID`` without ``--``: dash, Debian's sh, takes no ``--`` and would fall back
#: to the leader alone.)
_CANCEL = 'for p; do kill -TERM "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null; done; exit 0'


class ProcessScheduler:
    name = "shell"

    def render(self, job: JobScript) -> str:
        step_dir = directive_value("step directory", job.step_dir)
        if job.resources.get("extra_directives"):
            raise SchedulerError("a job without a scheduler takes no directives (header): "
                                 "use SlurmRemoteExecutor for a Slurm job")
        unknown = sorted(k for k in job.resources if k != "extra_directives")
        if unknown:
            raise SchedulerError(f"a job without a scheduler takes no resource {unknown[0]!r}")
        lines = ["#!/bin/sh", f"{NAME_LINE}{directive_value('job name', job.name)}",
                 f"cd {step_dir} || exit 1", "exec >>log.txt 2>&1", *job.prepare,
                 f"exec {command_line(job.command)}"]
        return "\n".join(lines) + "\n"

    def submit_argv(self, script_path: str, pass_env: Sequence[str] = ()) -> list[str]:
        # the detached process inherits the command's environment (pass_env included)
        return ["sh", "-c", _START, "sh", script_path]

    def parse_submit(self, stdout: str) -> str:
        pid = stdout.strip().splitlines()[-1].strip() if stdout.strip() else ""
        if not pid.isdigit():
            raise SchedulerError(f"starting the job answered {stdout.strip()!r}, not a pid")
        return pid

    def poll_argv(self, native_ids: list[str]) -> list[str]:
        # every process of this user: one call however many jobs are live
        return ["ps", "x", "-o", "pid=,args="]

    def parse_poll(self, stdout: str) -> dict[str, SchedulerState]:
        states = {}
        for line in stdout.splitlines():
            parts = line.split()
            # a job script run by sh with its name: not some other process with a reused pid
            if len(parts) >= 4 and parts[0].isdigit() and parts[-2].endswith(f"/{SCRIPT_NAME}") \
                    and parts[-1].startswith("hpcflow-"):
                states[parts[0]] = SchedulerState(parts[0], RUNNING, "running")
        return states

    def accounting_argv(self, native_ids: list[str]) -> list[str] | None:
        return None  # a process leaves no record: its result file is the record

    def parse_accounting(self, stdout: str) -> dict[str, SchedulerState]:
        return {}

    def find_argv(self, job_name: str) -> list[str]:
        return ["sh", "-c", _FIND, "sh", directive_value("job name", job_name)]

    def parse_find(self, stdout: str) -> list[str]:
        return [line.strip() for line in stdout.splitlines() if line.strip().isdigit()]

    def cancel_argv(self, native_ids: list[str]) -> list[str]:
        return ["sh", "-c", _CANCEL, "sh", *native_ids]


#: Detached processes, no scheduler: for machines a workflow describes (dflow's
#: ``RemoteExecutor``), not for ``[machines.NAME]`` tables.
SCHEDULER = SchedulerPlugin("shell", ProcessScheduler, (), for_machines=False)
