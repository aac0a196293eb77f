"""Slurm: ``sbatch --parsable``, one ``squeue`` for every job of a machine, one ``sacct``
(accounting through slurmdbd) for the jobs squeue has forgotten (they leave it ``MinJobAge``
seconds after they end), ``scancel``.

>>> s = SlurmScheduler()
>>> s.parse_submit("1234;cluster\\n")
'1234'
>>> states = s.parse_poll("12|hpcflow-wf-1-0|RUNNING|None\\n13|hpcflow-wf-2-0|TIMEOUT|TimeLimit\\n")
>>> states["12"].state, states["13"].state, states["13"].timed_out
('running', 'done', True)
>>> s.parse_accounting("14|NODE_FAIL|0:0\\n15|COMPLETED|0:0\\n")["14"].infrastructure
True
>>> s.parse_accounting("16_7|CANCELLED by 1001|0:15\\n")["16_7"].reason
'the job was cancelled outside hpcflow by uid 1001 (Slurm CANCELLED: scancel or an administrator)'
>>> queued = s.parse_poll("16|hpcflow-wf-3-0|PENDING|Priority\\n17|hpcflow-wf-4-0|PENDING|None\\n")
>>> queued["16"].state, queued["16"].waiting_for, queued["17"].waiting_for
('queued', 'Priority', None)
>>> s.parse_poll("18_1|hpcflow-wf-5-0-array|RUNNING|None\\n18_2|hpcflow-wf-5-0-array|PENDING|"
...              "JobArrayTaskLimit\\n")["18_2"].waiting_for
'JobArrayTaskLimit'
>>> s.element_id("18", 2), s.parse_find("18\\n18\\n19\\n")
('18_2', ['18', '19'])
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from hpcflow.connectors.plugins import SchedulerPlugin
from hpcflow.connectors.schedulers.base import (
    DONE,
    QUEUED,
    RUNNING,
    JobScript,
    SchedulerError,
    SchedulerState,
    array_range,
    command_line,
    directive_value,
    element_lines,
    extra_directive,
)

#: Step resources and the sbatch option each one becomes.
OPTIONS = {
    "partition": "--partition",
    "nodes": "--nodes",
    "ntasks": "--ntasks",
    "ntasks_per_node": "--ntasks-per-node",
    "cpus_per_task": "--cpus-per-task",
    "gpus": "--gpus",
    "mem": "--mem",
    "mem_per_cpu": "--mem-per-cpu",
    "time": "--time",
    "account": "--account",
    "qos": "--qos",
    "constraint": "--constraint",
    "reservation": "--reservation",
    "exclusive": "--exclusive",
}

PENDING_STATES = frozenset({"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED",
                            "RESV_DEL_HOLD", "SUSPENDED", "STOPPED", "RESIZING"})
#: The scheduler's final states that were not the runner's doing, with what to tell the user.
FAILURES = {
    "TIMEOUT": "the job reached its time limit (Slurm TIMEOUT): ask for more with time=",
    "OUT_OF_MEMORY": "the job ran out of memory (Slurm OUT_OF_MEMORY): ask for more with mem=",
    "NODE_FAIL": "the job's node failed (Slurm NODE_FAIL)",
    "PREEMPTED": "the job was preempted (Slurm PREEMPTED)",
    "BOOT_FAIL": "the job's node failed to boot (Slurm BOOT_FAIL)",
    "CANCELLED": "the job was cancelled outside hpcflow (Slurm CANCELLED: scancel or an "
                 "administrator)",
    "DEADLINE": "the job missed its deadline (Slurm DEADLINE)",
    "REVOKED": "the job was revoked (Slurm REVOKED)",
    "FAILED": "the job failed before hpcflow's runner could report (Slurm FAILED)",
}
INFRASTRUCTURE = frozenset({"NODE_FAIL", "PREEMPTED", "BOOT_FAIL"})

# A submission refused for a count of the user's jobs waits; any other refusal is a mistake.
# sbatch prints the controller's reason on a line of its own, then the error:
#     sbatch: error: QOSMaxSubmitJobPerUserLimit
#     sbatch: error: Batch job submission failed: Job violates accounting/QOS policy (job
#     submit limit, user's size and/or time limits)
# Sources: the reason names and the error text are those of Slurm 22.05.8's libslurmfull
# (read from Debian's slurm-wlm 22.05.8 here: the job reason strings of
# src/common/slurm_protocol_defs.c, ESLURM_ACCOUNTING_POLICY and
# ESLURM_ERROR_ON_DESC_TO_RECORD_COPY of src/common/slurm_errno.c); the two-line output as
# sites document it for their users (e.g. LUMI's "Batch jobs" guide, for
# AssocMaxSubmitJobLimit) and as ReFrame's Slurm backend matches it (reframe-hpc/reframe
# PR 1704). The same error without a reason line may be a size or time limit (a mistake):
# it fails the step, as do the per-job reasons (QOSMaxWallDurationPerJobLimit, ...).
#: The reasons that count submitted jobs (Slurm 22.05's names; later versions add
#: QOSMaxSubmitJobPerAccountLimit), with the limit each one names.
SUBMIT_LIMITS = {
    "QOSMaxSubmitJobPerUserLimit": "the QOS's MaxSubmitJobsPerUser",
    "QOSMaxSubmitJobPerAccountLimit": "the QOS's MaxSubmitJobsPerAccount",
    "MaxSubmitJobsPerAccount": "the QOS's MaxSubmitJobsPerAccount",
    "QOSGrpSubmitJobsLimit": "the QOS's GrpSubmitJobs",
    "AssocMaxSubmitJobLimit": "the association's MaxSubmitJobs",
    "AssocGrpSubmitJobsLimit": "the association's GrpSubmitJobs",
}
_REASON_LINE = re.compile(r"^(?:sbatch: error: )?(\w+)\s*$", re.M)
#: The controller's table of jobs is full (MaxJobCount): sbatch retried, then gave up.
TABLE_FULL = "Unable to create job record, try again"

FINAL = frozenset(FAILURES) | {"COMPLETED", "SPECIAL_EXIT"}


#: A job's id in sacct's output: ``1234``, or an array element's ``1234_7``; not a job step
#: (``1234.batch``) nor the pending rest of an array (``1234_[8-20]``).
JOB_ID = re.compile(r"\d+(?:_\d+)?")


def _state(native_id: str, raw: str, exit_code: int | None = None,
           why: str = "") -> SchedulerState:
    """``why`` is squeue's reason (%r): for a pending job, what it waits for."""
    words = raw.split()
    raw = words[0].rstrip("+") if words else "UNKNOWN"
    if raw in FINAL:
        reason = FAILURES.get(raw)
        if raw == "CANCELLED" and words[1:2] == ["by"] and len(words) > 2:  # sacct: "by UID"
            reason = FAILURES[raw].replace(" (", f" by uid {words[2]} (", 1)
        return SchedulerState(native_id, DONE, raw, exit_code, reason,
                              infrastructure=raw in INFRASTRUCTURE, timed_out=raw == "TIMEOUT")
    if raw in PENDING_STATES:
        why = why.strip()
        return SchedulerState(native_id, QUEUED, raw,
                              waiting_for=why if why and why != "None" else None)
    return SchedulerState(native_id, RUNNING, raw)


def _exit_code(text: str) -> int | None:
    code = text.split(":")[0]
    return int(code) if code.isdigit() else None


class SlurmScheduler:
    name = "slurm"

    def render(self, job: JobScript) -> str:
        step_dir = directive_value("step directory", job.step_dir)
        log = f"{step_dir}/log-%a.txt" if job.elements else f"{step_dir}/log.txt"
        lines = ["#!/bin/bash",
                 f"#SBATCH --job-name={directive_value('job name', job.name)}",
                 f"#SBATCH --output={log}",
                 "#SBATCH --open-mode=append",
                 # hpcflow retries a job lost with its node (NODE_FAIL) itself, at once and
                 # counted as the infrastructure's failure; Slurm's own requeue would run it
                 # again only minutes later, unseen (a user's --requeue still wins)
                 "#SBATCH --no-requeue",
                 f"#SBATCH --chdir={step_dir}"]
        if job.elements:
            lines.append(f"#SBATCH --array={array_range(job)}")
        for key, value in job.resources.items():
            if key == "extra_directives":
                lines += [f"#SBATCH {extra_directive(d)}" for d in value or []]
            elif key in OPTIONS:
                if value is None or value is False:
                    continue
                option = OPTIONS[key]
                lines.append(f"#SBATCH {option}" if value is True
                             else f"#SBATCH {option}={directive_value(key, value)}")
            else:
                raise SchedulerError(f"unknown Slurm resource {key!r} (known: "
                                     f"{', '.join(sorted(OPTIONS))}, extra_directives)")
        lines += list(job.prepare)
        if job.elements:
            lines += element_lines(job, "SLURM_ARRAY_TASK_ID")
        lines.append(f"exec {command_line(job.command)}")
        return "\n".join(lines) + "\n"

    def element_id(self, array_id: str, index: int) -> str:
        return f"{array_id}_{index}"

    def submit_argv(self, script_path: str, pass_env: Sequence[str] = ()) -> list[str]:
        # sbatch hands its whole environment to the job (--export=ALL is its default)
        return ["sbatch", "--parsable", script_path]

    def parse_submit(self, stdout: str) -> str:
        first = stdout.strip().splitlines()[-1] if stdout.strip() else ""
        job_id = first.split(";")[0]
        if not job_id.isdigit():
            raise SchedulerError(f"sbatch answered {stdout.strip()!r}, not a job id")
        return job_id

    def submit_limit(self, output: str) -> str | None:
        """A refusal for a count of the user's jobs, in words; None for any other.

        >>> print(SlurmScheduler().submit_limit(
        ...     "sbatch: error: AssocMaxSubmitJobLimit\\n"
        ...     "sbatch: error: Batch job submission failed: Job violates accounting/QOS "
        ...     "policy (job submit limit, user's size and/or time limits)\\n"))
        Slurm refused a new job for a submit limit (AssocMaxSubmitJobLimit: ...)
        >>> SlurmScheduler().submit_limit("sbatch: error: invalid partition specified: nope")
        """
        for reason in _REASON_LINE.findall(output):
            if reason in SUBMIT_LIMITS:
                return (f"Slurm refused a new job for a submit limit ({reason}: "
                        f"{SUBMIT_LIMITS[reason]})")
        if TABLE_FULL in output:
            return (f"Slurm refused a new job: its controller holds as many jobs as it may "
                    f"(MaxJobCount: {TABLE_FULL})")
        return None

    def poll_argv(self, native_ids: list[str]) -> list[str]:
        # Every job of this user still in the controller's memory, finished ones included
        # (for MinJobAge): one call however many jobs are live. No -j: squeue fails the whole
        # call when one listed id has been forgotten. --array: an array's pending elements
        # one per line (1234_7), not folded into 1234_[7-500].
        return ["squeue", "--me", "--array", "--noheader", "--states=all",
                "--format=%i|%j|%T|%r"]

    def parse_poll(self, stdout: str) -> dict[str, SchedulerState]:
        states = {}
        for line in stdout.splitlines():
            parts = line.strip().split("|")
            if len(parts) >= 3 and parts[0]:
                states[parts[0]] = _state(parts[0], parts[2],
                                          why=parts[3] if len(parts) > 3 else "")
        return states

    def accounting_argv(self, native_ids: list[str]) -> list[str] | None:
        # One call for every job the poll could not explain. --allocations: the job's own
        # line, not its steps (1234.batch); an array element is asked for as 1234_7.
        # No fallback to `sacct --completion` (the jobcomp file of a cluster without slurmdbd):
        # it would take a second call or a shell around this one.
        return ["sacct", "--noheader", "--parsable2", "--allocations",
                f"--jobs={','.join(native_ids)}", "--format=jobid,state,exitcode"]

    def parse_accounting(self, stdout: str) -> dict[str, SchedulerState]:
        states = {}
        for line in stdout.splitlines():
            parts = line.strip().split("|")
            if len(parts) >= 3 and JOB_ID.fullmatch(parts[0]):
                states[parts[0]] = _state(parts[0], parts[1], _exit_code(parts[2]))
        return states

    def find_argv(self, job_name: str) -> list[str]:
        # %F: an array's own id (a plain job's id), whichever elements are listed
        return ["squeue", "--me", "--noheader", "--states=all",
                f"--name={directive_value('job name', job_name)}", "--format=%F"]

    def parse_find(self, stdout: str) -> list[str]:
        ids = [line.strip() for line in stdout.splitlines() if line.strip().isdigit()]
        return list(dict.fromkeys(ids))

    def cancel_argv(self, native_ids: list[str]) -> list[str]:
        return ["scancel", *native_ids]


SCHEDULER = SchedulerPlugin("slurm", SlurmScheduler, tuple(OPTIONS),
                            probes=(("sbatch", "--version"), ("squeue", "--version")))
