"""Grid Engine (Son of Grid Engine 8.1, and its relatives that share its commands):
``qsub -terse``, one ``qstat -xml`` for every job of the user, ``qacct -j`` for jobs qstat has
forgotten, ``qstat -j NAME -xml`` to find a job by its name, ``qdel``.

Resources and the ``#$`` option each one becomes:

==================================  =========================================================
``queue="all.q"``                   ``-q all.q``
``time="1:00:00"`` (or seconds)     ``-l h_rt=1:00:00`` (Slurm's ``D-HH:MM:SS`` is converted)
``mem="8G"``                        ``-l h_vmem=8G``
``pe="smp", slots=4``               ``-pe smp 4`` (``cpus_per_task`` is a synonym of ``slots``)
``account="a"``, ``project="p"``    ``-A a``, ``-P p``
``extra_directives=["-l gpu=1"]``   ``#$ -l gpu=1``, as written
==================================  =========================================================

``mem`` is ``h_vmem``, the limit Grid Engine enforces (the job's address space is capped, and
the scheduler kills a job over it), not ``mem_free``, which only steers scheduling and is not
a limit. Two things differ from Slurm's ``--mem``: ``h_vmem`` counts *virtual* memory, and it
is *per slot* (a ``-pe smp 4`` job with ``mem="2G"`` may use 8G). A site that books memory
through another complex (``mem_free``, ``m_mem_free``, ...) can use
``extra_directives=["-l mem_free=8G"]`` instead.

``slots``/``cpus_per_task`` need a parallel environment (``pe``): its name is the site's own
(``qconf -spl`` lists them), so there is no default, and more than one slot without one is
refused rather than silently ignored.

Jobs start in Grid Engine's own clean environment (no ``-V``): the runner is started by its
absolute path, and what a job needs (modules, conda) goes in the machine's ``prepare`` lines.

>>> s = SGEScheduler()
>>> s.parse_submit("1234\\n"), s.parse_submit("1235.1-5:1\\n")
('1234', '1235')
>>> states = s.parse_poll(
...     "<job_info><queue_info><job_list state='running'><JB_job_number>12</JB_job_number>"
...     "<state>r</state></job_list></queue_info><job_info><job_list state='pending'>"
...     "<JB_job_number>13</JB_job_number><state>Eqw</state></job_list></job_info></job_info>")
>>> states["12"].state, states["13"].state, states["13"].raw
('running', 'done', 'Eqw')
>>> ended = s.parse_accounting(
...     "jobnumber    14\\nfailed       37  : qmaster enforced h_rt, h_cpu, or h_vmem limit\\n"
...     "exit_status  137                  (Killed)\\nru_wallclock 6s\\ncategory     -l h_rt=5\\n")
>>> ended["14"].state, ended["14"].timed_out, ended["14"].exit_code
('done', True, 137)
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from hpcflow.connectors.plugins import SchedulerPlugin
from hpcflow.connectors.schedulers.base import (
    DONE,
    QUEUED,
    RUNNING,
    JobScript,
    SchedulerError,
    SchedulerState,
    command_line,
    directive_value,
    element_lines,
    extra_directive,
)

#: Step resources and the qsub option each one becomes (``time``, ``mem``, ``pe`` and the slots
#: have their own rules).
OPTIONS = {"queue": "-q", "account": "-A", "project": "-P"}
RESOURCES = ("queue", "time", "mem", "pe", "slots", "cpus_per_task", "account", "project")

#: ``qacct``'s ``failed`` codes that say the node or Grid Engine let the job down before it ran
#: (worth another attempt): before/in the prolog or the parallel environment's start, the
#: shepherd, a rescheduled job, unreachable daemons.
INFRASTRUCTURE_FAILED = frozenset({1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 18, 19, 21, 25, 36})
#: ``failed 37``: the qmaster killed the job for its h_rt, h_cpu or h_vmem limit.
FAILED_LIMIT = 37
TIME_LIMIT = "the job reached its time limit ({limit}; {how}): ask for more with time="
SIGKILLED = ("the job was killed outside hpcflow (SIGKILL: deleted with qdel by a user or an "
             "administrator, or killed by the system, e.g. out of memory; {how})")
DELETED = ("the job was deleted outside hpcflow (Grid Engine state {raw}: qdel by a user or "
           "an administrator)")
ERROR_STATE = ("Grid Engine held the job in its error state ({raw}) instead of running it "
               "(`qacct -j {id}` or the step's log may say why; a -wd that does not exist on "
               "the node is a common cause); the step has failed and hpcflow removed the job "
               "(`qdel {id}`) so that it cannot run later")


def _poll_state(native_id: str, raw: str) -> SchedulerState:
    """One job of ``qstat``: its state letters (qw, hqw, r, t, Rr, s, S, T, Eqw, dr, ...)."""
    if "E" in raw:  # Eqw, Ehqw: held in error, never runs until someone clears it
        return SchedulerState(native_id, DONE, raw, reason=ERROR_STATE.format(raw=raw,
                                                                           id=native_id),
                              lingers=True)
    if "d" in raw:  # dr, dt, dRr, ...: qdel'd, on its way out
        return SchedulerState(native_id, DONE, raw, reason=DELETED.format(raw=raw))
    if "r" in raw or "t" in raw:  # r, t, Rr, Rt, hr: running (or being sent to its node)
        return SchedulerState(native_id, RUNNING, raw)
    if set(raw) & set("sST"):  # suspended (by a user, its queue, or a load threshold)
        return SchedulerState(native_id, QUEUED, raw, waiting_for=f"suspended ({raw})")
    if "h" in raw:  # hqw: a hold (qhold, -h, a dependency) keeps it from starting
        return SchedulerState(native_id, QUEUED, raw, waiting_for=f"held ({raw})")
    if set(raw) & set("qwR"):
        return SchedulerState(native_id, QUEUED, raw, waiting_for=f"waiting in the queue ({raw})")
    return SchedulerState(native_id, RUNNING, raw)


_RANK = {RUNNING: 2, QUEUED: 1, DONE: 0}

#: qsub's refusal for the global ``max_u_jobs`` (active jobs per user) or ``max_jobs`` (per
#: cluster) limits: sge_conf(5) says qsub then exits with status 25 "and an appropriate error
#: message"; the message's text is the qmaster's own (read in Son of Grid Engine 8.1.9's
#: sge_qmaster binary, Debian's gridengine-master: "job rejected: only %u jobs are allowed per
#: user (current job count: %u)" and "... per cluster"; older releases capitalise "Only"),
#: and qsub prints it after "Unable to run job: ". Any other refusal (an unknown queue, a
#: resource no queue offers) fails the step.
_JOB_LIMIT = re.compile(r"job rejected: only \d+ jobs are allowed per (user|cluster)"
                        r"(?: \(current job count: \d+\))?", re.I)



def _xml(stdout: str, command: str) -> ET.Element:
    try:
        return ET.fromstring(stdout)
    except ET.ParseError as exc:
        raise SchedulerError(f"{command} answered something that is not XML ({exc}): "
                             f"{stdout.strip()[:200]!r}") from None


def _seconds(text: str | None) -> float | None:
    """A Grid Engine time (``5``, ``0:0:5``, ``6s``, ``6.000s``) in seconds."""
    if not text:
        return None
    parts = text.strip().rstrip("s").split(":")
    try:
        total = 0.0
        for part in parts:
            total = total * 60 + float(part or 0)
        return total
    except ValueError:
        return None


def _requested(category: str, name: str) -> str | None:
    """The value of ``-l name=...`` in a ``qacct`` category (``-l h_rt=5,h_vmem=2G -q all.q``)."""
    found = re.search(rf"(?:^|[\s,]){name}=([^\s,]+)", category)
    return found.group(1) if found else None


def _leading_int(text: str) -> int | None:
    found = re.match(r"\s*(-?\d+)", text)
    return int(found.group(1)) if found else None


def _accounting_state(record: dict[str, str]) -> SchedulerState | None:
    native_id = record.get("jobnumber", "").strip()
    failed_text = record.get("failed", "0").strip()
    failed = _leading_int(failed_text)
    exit_status = _leading_int(record.get("exit_status", ""))
    if not native_id.isdigit() or failed is None:
        return None
    failed_why = failed_text.split(":", 1)[1].strip() if ":" in failed_text else ""
    # (the exit status itself is added to the reason by the executor)
    how = f"qacct: failed {failed}" + (f" : {failed_why}" if failed_why else "")
    raw = f"failed {failed}" if failed else f"exit_status {exit_status}"
    category = record.get("category", "")
    h_rt, h_vmem, h_cpu = (_requested(category, n) for n in ("h_rt", "h_vmem", "h_cpu"))
    wallclock, limit = _seconds(record.get("ru_wallclock")), _seconds(h_rt)
    over_time = limit is not None and wallclock is not None and wallclock >= limit
    time_limit = TIME_LIMIT.format(limit=f"h_rt={h_rt}" if h_rt else "h_rt", how=how)

    def done(reason: str | None = None, timed_out: bool = False,
             infrastructure: bool = False) -> SchedulerState:
        return SchedulerState(native_id, DONE, raw, exit_status, reason,
                              infrastructure=infrastructure, timed_out=timed_out)

    if failed == FAILED_LIMIT:
        if over_time or (h_vmem is None and h_cpu is None):  # its h_rt, or the queue's
            return done(time_limit, timed_out=True)
        if h_vmem is not None:
            return done(f"the job went over its memory limit (h_vmem={h_vmem}; {how}): ask "
                        "for more with mem=")
        return done(f"the job went over its CPU time limit (h_cpu={h_cpu}; {how})")
    if exit_status == 137 and over_time:  # the execution daemon enforced h_rt itself
        return done(time_limit, timed_out=True)
    if exit_status == 137:
        return done(SIGKILLED.format(how=how))
    if failed:
        return done(f"Grid Engine could not run the job ({how}); see `qacct -j {native_id}`",
                    infrastructure=failed in INFRASTRUCTURE_FAILED)
    if exit_status and exit_status > 128:
        return done(f"the job was killed by signal {exit_status - 128} ({how})")
    if exit_status:
        return done(f"the job failed before hpcflow's runner could report ({how})")
    return SchedulerState(native_id, DONE, raw, exit_status)


def _h_rt(value: Any) -> str:
    """``time`` as h_rt: seconds or ``[[H:]M:]S`` as they are, Slurm's ``D-H:M:S`` as hours."""
    text = directive_value("time", value)
    days = re.fullmatch(r"(\d+)-(\d+)(:\d+)?(:\d+)?", text)
    if days:
        hours = int(days.group(1)) * 24 + int(days.group(2))
        text = f"{hours}{days.group(3) or ':00'}{days.group(4) or ':00'}"
    if not re.fullmatch(r"\d+(:\d+){0,2}|INFINITY", text):
        raise SchedulerError(f"resource time={value!r} is not a Grid Engine time: use seconds "
                             "or H:MM:SS")
    return text


def _slots(resources: dict[str, Any]) -> int | None:
    given = {k: resources[k] for k in ("slots", "cpus_per_task")
             if resources.get(k) is not None}
    if len(set(map(str, given.values()))) > 1:
        raise SchedulerError(f"slots and cpus_per_task differ ({given}): give one of them")
    if not given:
        return None
    key, value = next(iter(given.items()))
    if isinstance(value, bool) or not str(value).isdigit() or int(value) < 1:
        raise SchedulerError(f"resource {key}={value!r} must be a positive whole number")
    return int(value)


class SGEScheduler:
    name = "sge"

    def render(self, job: JobScript) -> str:
        step_dir = directive_value("step directory", job.step_dir)
        if ":" in step_dir:  # -o takes [host:]path
            raise SchedulerError(f"step directory {step_dir!r}: Grid Engine cannot write "
                                 "output to a path with ':' in it")
        name = directive_value("job name", job.name)
        if re.search(r"[:@/]", name) or name[0].isdigit():
            raise SchedulerError(f"job name {name!r} is not a Grid Engine job name")
        # an array's element: $TASK_ID in -o is its index (Grid Engine's path aliases)
        log = f"{step_dir}/log-$TASK_ID.txt" if job.elements else f"{step_dir}/log.txt"
        lines = ["#!/bin/bash",
                 f"#$ -N {name}",
                 f"#$ -o {log}",
                 "#$ -j y",
                 f"#$ -wd {step_dir}",
                 "#$ -S /bin/bash"]
        if job.elements:
            lines.append(f"#$ -t 1-{len(job.elements)}")
            if job.throttle is not None:
                lines.append(f"#$ -tc {int(job.throttle)}")
        resources = {k: v for k, v in job.resources.items() if v is not None and v is not False}
        unknown = sorted(set(resources) - set(RESOURCES) - {"extra_directives"})
        if unknown:
            raise SchedulerError(f"unknown Grid Engine resource {unknown[0]!r} (known: "
                                 f"{', '.join(RESOURCES)}, extra_directives)")
        slots = _slots(resources)
        for key, value in resources.items():
            if key in OPTIONS:
                lines.append(f"#$ {OPTIONS[key]} {directive_value(key, value)}")
            elif key == "time":
                lines.append(f"#$ -l h_rt={_h_rt(value)}")
            elif key == "mem":
                lines.append(f"#$ -l h_vmem={directive_value(key, value)}")
        if "pe" in resources:
            lines.append(f"#$ -pe {directive_value('pe', resources['pe'])} {slots or 1}")
        elif slots is not None and slots > 1:
            raise SchedulerError(f"{slots} slots need a parallel environment on Grid Engine: "
                                 "add pe='NAME' (your site's; `qconf -spl` lists them)")
        lines += [f"#$ {extra_directive(d)}" for d in resources.get("extra_directives") or []]
        lines += list(job.prepare)
        if job.elements:
            lines += element_lines(job, "SGE_TASK_ID")
        lines.append(f"exec {command_line(job.command)}")
        return "\n".join(lines) + "\n"

    def element_id(self, array_id: str, index: int) -> str:
        return f"{array_id}.{index}"

    def submit_argv(self, script_path: str, pass_env: Sequence[str] = ()) -> list[str]:
        # -v NAME (no value): the job gets NAME from qsub's environment
        return ["qsub", "-terse", *(["-v", ",".join(pass_env)] if pass_env else []),
                script_path]

    def submit_limit(self, output: str) -> str | None:
        """A refusal for ``max_u_jobs``/``max_jobs``, in words; None for any other.

        >>> SGEScheduler().submit_limit("Unable to run job: job rejected: only 2 jobs are "
        ...                              "allowed per user (current job count: 2)\\nExiting.\\n")
        'Grid Engine refused a new job for its per-user job limit (max_u_jobs: job rejected: ...)'
        """
        found = _JOB_LIMIT.search(output)
        if found is None:
            return None
        per_user = found.group(1).lower() == "user"
        return (f"Grid Engine refused a new job for its "
                f"{'per-user job limit (max_u_jobs' if per_user else 'job limit (max_jobs'}: "
                f"{found.group(0)})")

    def parse_submit(self, stdout: str) -> str:
        """``-terse`` prints the id (``123``, or ``123.1-5:1`` for an array); without it,
        ``Your job 123 ("name") has been submitted``."""
        lines = stdout.strip().splitlines()
        last = lines[-1].strip() if lines else ""
        found = (re.fullmatch(r"(\d+)(?:\.\d+-\d+:\d+)?", last)
                 or re.search(r"Your job(?:-array)? (\d+)", stdout))
        if not found:
            raise SchedulerError(f"qsub answered {stdout.strip()!r}, not a job id")
        return found.group(1)

    def poll_argv(self, native_ids: list[str]) -> list[str]:
        # Every live job of this user (qstat's default), in one call however many there are;
        # finished jobs are gone from it at once (they are in qacct). -g d: an array's
        # elements one per entry (<tasks>7</tasks>), pending ones too.
        return ["qstat", "-xml", "-g", "d"]

    def parse_poll(self, stdout: str) -> dict[str, SchedulerState]:
        states: dict[str, SchedulerState] = {}
        for entry in _xml(stdout, "qstat -xml").iter("job_list"):
            native_id = (entry.findtext("JB_job_number") or "").strip()
            raw = (entry.findtext("state") or "").strip()
            if not native_id.isdigit():
                continue
            task = (entry.findtext("tasks") or "").strip()
            if task.isdigit():  # an array's element: a job of its own for hpcflow
                element = f"{native_id}.{task}"
                states[element] = _poll_state(element, raw)
            state = _poll_state(native_id, raw)
            # the array itself: as its most advanced element
            known = states.get(native_id)
            if known is None or _RANK[state.state] > _RANK[known.state]:
                states[native_id] = state
        return states

    def accounting_argv(self, native_ids: list[str]) -> list[str] | None:
        # qacct takes one job per call (a second -j replaces the first) and fails for a job it
        # does not know (yet: a pending job that was qdel'd never gets a record): one shell
        # loop, always successful, reports on those it knows.
        # An array's element (123.7) is `qacct -j 123 -t 7`.
        return ["sh", "-c", 'for id in "$@"; do case $id in *.*) qacct -j "${id%%.*}" '
                '-t "${id#*.}";; *) qacct -j "$id";; esac 2>/dev/null; done; exit 0',
                "qacct", *native_ids]

    def parse_accounting(self, stdout: str) -> dict[str, SchedulerState]:
        """``qacct -j`` records (``key value`` lines between lines of ``=``). A job with
        several records: the last one (a rescheduled job), but a failed task of an array."""
        records: list[dict[str, str]] = [{}]
        for line in stdout.splitlines():
            if line.startswith("====="):
                records.append({})
                continue
            key, _, value = line.partition(" ")
            if key:
                records[-1][key] = value.strip()
        states: dict[str, SchedulerState] = {}
        for record in records:
            state = _accounting_state(record)
            if state is None:
                continue
            array_task = record.get("taskid", "undefined").isdigit()
            if array_task:  # the element's own record, by its id (123.7)
                element = f"{state.native_id}.{record['taskid']}"
                states[element] = replace(state, native_id=element)
            known = states.get(state.native_id)
            if known is None or not array_task or state.reason or not known.reason:
                states[state.native_id] = state
        return states

    def find_argv(self, job_name: str) -> list[str]:
        # qstat -j takes a job name as well as an id; with -xml it answers <unknown_jobs> and
        # exits 0 when there is no such job (without -xml it exits 1)
        return ["qstat", "-j", directive_value("job name", job_name), "-xml"]

    def parse_find(self, stdout: str) -> list[str]:
        root = _xml(stdout, "qstat -j")
        jobs = root.find("djob_info")
        if jobs is None:
            return []
        ids = ((e.findtext("JB_job_number") or "").strip() for e in jobs.findall("element"))
        return [i for i in ids if i.isdigit()]

    def cancel_argv(self, native_ids: list[str]) -> list[str]:
        return ["qdel", *native_ids]


SCHEDULER = SchedulerPlugin("sge", SGEScheduler, RESOURCES, probes=(("qstat", "-help"),))
