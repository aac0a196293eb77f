"""PBS (OpenPBS 19+, PBS Professional): ``qsub``, one ``qstat -f -x -F json`` for every live
job of a machine, ``qselect -N`` to find a job by name, ``qdel``; job arrays (``qsub -J``).

Sources (the commands' own reference pages; nothing here is copied from them): the
"qsub", "qstat", "qselect" and "qdel" pages of the PBS Professional Reference Guide (shipped as
OpenPBS's man pages), and the "Job Exit Status" section of its Administrator's Guide; for
arrays, the "Job Arrays" chapter of the PBS Professional User's Guide (subjob identifiers,
``PBS_ARRAY_INDEX``, ``^array_index^`` in output paths, states B and X) and the
``max_run_subjobs`` job attribute of the Reference Guide (OpenPBS 20 / PBS Professional
2020.1 and later).

Choices, and why:

* ``qsub`` prints ``SEQUENCE.SERVER``; the job id kept is the sequence number alone, which
  ``qstat``, ``qselect`` and ``qdel`` complete with the default server. (The batch executor
  only cancels digit-only ids, and one daemon talks to one server.)
* ``qstat -f -x -F json ID...``: all jobs in one call, finished ones included (``-x``: the
  server's job history, ``job_history_enable``). Without history, a job that ended without
  hpcflow's result is reported "lost" instead of with the reason below. ``qstat`` exits
  non-zero when one listed id is unknown (history purged): the call is wrapped so that only
  "Unknown Job Id" lines are forgiven (``shell.tolerant_argv``).
* The script ``cd``s into the step directory: PBS starts jobs in the home directory and not
  every version has a working-directory option. ``-j oe`` joins stderr into ``-o``;
  ``-k oed`` writes the output straight to its final path (PBS Pro 13+; a version without
  direct write spools it and copies it at the end), so ``hpcflow logs`` shows a running job.
* ``Exit_status``: the script's own code (0-255); 256 + N when PBS killed it with signal N
  (``qdel``, or the walltime in versions before OpenPBS 20: 271 = SIGTERM); negative values
  are PBS's ``JOB_EXEC_*`` codes, e.g. -29 for a walltime kill in newer versions, -27 for
  memory. A 271 counts as a walltime kill only when ``resources_used.walltime`` reached
  ``Resource_List.walltime``; otherwise it was a ``qdel``.
* Arrays: ``#PBS -J 1-N`` (PBS refuses an array of one subjob: hpcflow's arrays have two
  elements or more, and the one array that may have one, a crash's leftover submitted again,
  gets a second, empty subjob that exits at once). The throttle is the range's ``%K`` suffix,
  which sets the array's ``max_run_subjobs`` (OpenPBS 20+; ``qalter -W max_run_subjobs=K``
  changes it later); an older server refuses the ``%``. ``qsub`` answers ``SEQ[].SERVER``:
  the array's id is kept as ``SEQ[]``, an element's as ``SEQ[i]`` (its subjob, ``qdel``-able
  alone). The poll asks for each array (``qstat -t SEQ[]``: the array, state B while it runs,
  and one entry per subjob, X once finished, with its own ``Exit_status``); ``qselect`` lists
  an array as ``SEQ[].SERVER``. An element's PBS output goes to the array's
  ``log-^array_index^.txt``; its own output to its step directory's ``log.txt``.

>>> s = PBSScheduler()
>>> s.parse_submit("4242.pbs01\\n")
'4242'
>>> doc = ('{"timestamp": 1, "pbs_version": "22.05.11", "pbs_server": "pbs01", "Jobs": {'
...        '"12.pbs01": {"Job_Name": "hpcflow-wf-1-0", "job_state": "R"},'
...        '"13.pbs01": {"Job_Name": "hpcflow-wf-2-0", "job_state": "F", "Exit_status": -29}}}')
>>> states = s.parse_poll(doc)
>>> states["12"].state, states["13"].state, states["13"].timed_out
('running', 'done', True)
>>> s.parse_submit("77[].pbs01\\n"), s.element_id("77[]", 3), s.parse_find("77[].pbs01\\n")
('77[]', '77[3]', ['77[]'])
>>> s.poll_argv(["12", "77[1]", "77[2]", "adopted"])[-3:]
['-t', '12', '77[]']
>>> doc = ('{"Jobs": {"77[].pbs01": {"Job_Name": "a-array", "job_state": "B"},'
...        '"77[1].pbs01": {"Job_Name": "a-array", "job_state": "X", "Exit_status": 0},'
...        '"77[2].pbs01": {"Job_Name": "a-array", "job_state": "R"}}}')
>>> {i: (v.state, v.exit_code) for i, v in s.parse_poll(doc).items()}
{'77[]': ('running', None), '77[1]': ('done', 0), '77[2]': ('running', None)}
>>> print(s.render(JobScript("hpcflow-wf-1-0", "/scratch/s-1", ["python", "-m", "runner"],
...                          resources={"walltime": "1:00:00", "ncpus": 4, "mem": "8gb"})))
#!/bin/bash
#PBS -N hpcflow-wf-1-0
#PBS -S /bin/bash
#PBS -o /scratch/s-1/log.txt
#PBS -j oe
#PBS -k oed
#PBS -l walltime=1:00:00
#PBS -l select=1:ncpus=4:mem=8gb
cd /scratch/s-1 || exit 1
exec python -m runner
<BLANKLINE>
"""

from __future__ import annotations

import json
import re
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
    array_range,
    command_line,
    directive_value,
    element_lines,
    extra_directive,
)
from hpcflow.connectors.schedulers.shell import tolerant_argv

#: Step resources: where each goes. ``ncpus``, ``mem`` and ``ngpus`` form one select chunk.
SELECT = ("ncpus", "mem", "ngpus")
OPTIONS = {"queue": "-q", "account": "-A"}
LIMITS = {"walltime": "walltime", "place": "place"}
KNOWN = (*SELECT, *OPTIONS, *LIMITS)

#: Formats of the values PBS itself checks (reference guide: "PBS data types").
_WALLTIME = re.compile(r"^\d+(:\d{1,2}){0,2}(\.\d+)?$")

#: qsub's refusals for a limit on how many jobs a user, group, project or everyone may have
#: queued (``max_queued``, ``queued_jobs_threshold`` of a queue or the server, "complex"):
#: "qsub: would exceed queue workq's per-user limit", "qsub: would exceed complex's per-user
#: limit of jobs in 'Q' state", "qsub: Maximum number of jobs for user alice already in queue
#: workq", "qsub: Maximum number of jobs already in queue workq" (Torque's wording of the
#: last adds " for user MSG=..."). Source: the messages OpenPBS's own functional tests of
#: entity limits expect of qsub (openpbs/openpbs, test/tests/functional, TestEntityLimits),
#: and the PBSE_MAXQUED text of its error table. The limits on a *resource* of queued jobs
#: ("would exceed per-user limit on resource ncpus") are not waited out: one job can exceed
#: them alone, and then it would wait for ever.
_JOB_LIMIT = re.compile(
    r"would exceed (?:queue \S+'s|complex's) per-(?:user|group|project) limit"
    r"(?: of jobs in 'Q' state)?"
    r"|Maximum number of jobs (?:in 'Q' state )?(?:for (?:user|group|project) \S+ )?"
    r"already in (?:queue|complex)(?: \S+)?")

_SIZE = re.compile(r"^\d+([kmgtp]?[bw])?$", re.IGNORECASE)
_COUNT = re.compile(r"^[1-9]\d*$")

QUEUED_STATES = frozenset("QHWT")  # queued, held, waiting for its start time, in transit
QUEUED_WORDS = {"Q": "queued", "H": "held", "W": "waiting for its start time",
                "T": "in transit"}
FINAL_STATES = frozenset("FXM")  # finished, finished subjob, moved to another server
#: An element (subjob) ``SEQ[i]`` and an array ``SEQ[]``, as this module keeps their ids.
ELEMENT = re.compile(r"^(\d+)\[(\d+)\]$")
ARRAY = re.compile(r"^\d+\[\]$")

#: JOB_EXEC_* codes of PBS's job.h (negative Exit_status): (reason, infrastructure).
EXEC_CODES = {
    -1: ("PBS could not start the job (JOB_EXEC_FAIL1): see the step's log and the MoM's",
         False),
    -2: ("PBS could not start the job (JOB_EXEC_FAIL2): see the step's log and the MoM's",
         False),
    -4: ("the job's node restarted (JOB_EXEC_INITABT)", True),
    -5: ("the job's node restarted (JOB_EXEC_INITRST)", True),
    -6: ("the job's node restarted (JOB_EXEC_INITRMG)", True),
    -10: ("PBS could not run the job as its user (JOB_EXEC_FAILUID)", False),
    -14: ("a node of the job failed (JOB_EXEC_RERUN_SIS_FAIL)", True),
    -20: ("the job's primary node failed (JOB_EXEC_RERUN_MS_FAIL)", True),
    -24: ("the job used more CPUs than it asked for (JOB_EXEC_KILL_NCPUS_BURST): ask for more "
          "with ncpus=", False),
    -25: ("the job used more CPUs than it asked for (JOB_EXEC_KILL_NCPUS_SUM): ask for more "
          "with ncpus=", False),
    -26: ("the job ran out of virtual memory (PBS JOB_EXEC_KILL_VMEM): ask for more with mem=",
          False),
    -27: ("the job ran out of memory (PBS JOB_EXEC_KILL_MEM): ask for more with mem=", False),
    -28: ("the job reached its CPU time limit (PBS JOB_EXEC_KILL_CPUT)", False),
}
WALLTIME_CODE = -29
#: The batch executor adds the exit code to the reason: it is not repeated here.
WALLTIME_REASON = "the job reached its walltime (PBS {how}): ask for more with walltime="
SIGNAL_OFFSET = 256


def _count(key: str, value: Any) -> str:
    text = directive_value(key, value)
    if not _COUNT.match(text):
        raise SchedulerError(f"resource {key}={value!r} must be a positive whole number")
    return text


def _checked(key: str, value: Any) -> str:
    if key in ("ncpus", "ngpus"):
        return _count(key, value)
    text = directive_value(key, value)
    if key == "mem" and not _SIZE.match(text):
        raise SchedulerError(f"resource mem={value!r} is not a PBS size: write it like 8gb, "
                             "512mb or 1tb")
    if key == "walltime" and not _WALLTIME.match(text):
        raise SchedulerError(f"resource walltime={value!r} is not a PBS duration: write it "
                             "like 1:30:00, 90:00 or 5400 (seconds)")
    return text


def _seconds(text: Any) -> int | None:
    """``[[HH:]MM:]SS`` as seconds, or None."""
    if not isinstance(text, str | int) or not _WALLTIME.match(str(text)):
        return None
    seconds = 0
    for part in str(text).split(".")[0].split(":"):
        seconds = seconds * 60 + int(part)
    return seconds


def _sequence(job_id: str) -> str:
    """``123.server`` (or ``123.server@host``) as ``123``; a subjob ``123[7].server`` as
    ``123[7]``, an array ``123[].server`` as ``123[]``."""
    return job_id.strip().split(".")[0].split("@")[0]


def _polled(native_id: str) -> str | None:
    """What the poll asks ``qstat -t`` for: a plain job itself, an element's whole array
    (one argument lists the array and every subjob); None for anything else ("adopted")."""
    if native_id.isdigit() or ARRAY.match(native_id):
        return native_id
    element = ELEMENT.match(native_id)
    return f"{element.group(1)}[]" if element else None


def _finished(native_id: str, raw: str, job: dict[str, Any]) -> SchedulerState:
    code = job.get("Exit_status")
    code = int(code) if isinstance(code, int | str) and str(code).lstrip("-").isdigit() \
        else None
    if raw == "M":
        return SchedulerState(native_id, DONE, raw, code,
                              "the job was moved to another PBS server (qmove)")
    if code is None:
        return SchedulerState(native_id, DONE, raw, None,
                              "the job was deleted before it ran (qdel or an administrator, "
                              "outside hpcflow)")
    if code == WALLTIME_CODE:
        return SchedulerState(native_id, DONE, raw, code, WALLTIME_REASON.format(
            how="JOB_EXEC_KILL_WALLTIME"), timed_out=True)
    if code in EXEC_CODES:
        reason, infrastructure = EXEC_CODES[code]
        return SchedulerState(native_id, DONE, raw, code, reason, infrastructure=infrastructure)
    if code > SIGNAL_OFFSET:
        signal = code - SIGNAL_OFFSET
        limit = _seconds((job.get("Resource_List") or {}).get("walltime"))
        used = _seconds((job.get("resources_used") or {}).get("walltime"))
        if limit is not None and used is not None and used >= limit:
            return SchedulerState(native_id, DONE, raw, code, WALLTIME_REASON.format(
                how=f"signal {signal} at the walltime"), timed_out=True)
        return SchedulerState(native_id, DONE, raw, code,
                              f"the job was killed by signal {signal} outside hpcflow (PBS: "
                              "qdel or an administrator)")
    if code < 0:
        return SchedulerState(native_id, DONE, raw, code,
                              "PBS ended the job (a negative Exit_status is one of its "
                              "JOB_EXEC_* codes)")
    return SchedulerState(native_id, DONE, raw, code)


def _state(native_id: str, job: dict[str, Any]) -> SchedulerState:
    raw = str(job.get("job_state") or "?")
    if raw in FINAL_STATES:
        return _finished(native_id, raw, job)
    if raw in QUEUED_STATES:  # PBS's comment says why, when the scheduler has looked at it
        why = str(job.get("comment") or "").strip() or QUEUED_WORDS.get(raw, raw)
        return SchedulerState(native_id, QUEUED, raw, waiting_for=why)
    return SchedulerState(native_id, RUNNING, raw)


class PBSScheduler:
    name = "pbs"

    def render(self, job: JobScript) -> str:
        step_dir = directive_value("step directory", job.step_dir)
        # an array's subjob: ^array_index^ in -o is its index (User's Guide, "Job Arrays")
        log = f"{step_dir}/log-^array_index^.txt" if job.elements else f"{step_dir}/log.txt"
        lines = ["#!/bin/bash",
                 f"#PBS -N {directive_value('job name', job.name)}",
                 "#PBS -S /bin/bash",
                 f"#PBS -o {log}",
                 "#PBS -j oe",
                 "#PBS -k oed"]
        if job.elements:
            # -J X-Y[%K]: PBS wants two subjobs at least (a lone element gets an empty
            # second one). %K sets max_run_subjobs (OpenPBS 20+, PBS Professional 2020.1+:
            # Reference Guide, qsub -J and the max_run_subjobs job attribute).
            padded = job.elements if len(job.elements) > 1 else (*job.elements, "")
            lines.append(f"#PBS -J {array_range(replace(job, elements=padded))}")
        select: list[str] = []
        extra: list[str] = []
        for key, value in job.resources.items():
            if key == "extra_directives":
                extra += [f"#PBS {extra_directive(d)}" for d in value or []]
            elif key not in KNOWN:
                raise SchedulerError(f"unknown PBS resource {key!r} (known: "
                                     f"{', '.join(sorted(KNOWN))}, extra_directives)")
            elif value is None or value is False:
                continue
            elif key in SELECT:
                select.append(f"{key}={_checked(key, value)}")
            elif key in OPTIONS:
                lines.append(f"#PBS {OPTIONS[key]} {_checked(key, value)}")
            else:
                lines.append(f"#PBS -l {LIMITS[key]}={_checked(key, value)}")
        if select:
            lines.append(f"#PBS -l select=1:{':'.join(select)}")
        lines += extra
        lines.append(f"cd {command_line([step_dir])} || exit 1")
        lines += list(job.prepare)
        if job.elements:
            if len(job.elements) == 1:  # the empty subjob that PBS's minimum asked for
                lines.append('[ "$PBS_ARRAY_INDEX" -eq 1 ] || exit 0')
            lines += element_lines(job, "PBS_ARRAY_INDEX")
        lines.append(f"exec {command_line(job.command)}")
        return "\n".join(lines) + "\n"

    def element_id(self, array_id: str, index: int) -> str:
        """``SEQ[i]``: subjob ``i`` of the array ``SEQ[]``, as qstat and qdel name it."""
        return f"{array_id.removesuffix('[]')}[{int(index)}]"

    def submit_argv(self, script_path: str, pass_env: Sequence[str] = ()) -> list[str]:
        # -v NAME (no value): the job gets NAME from qsub's environment
        return ["qsub", *(["-v", ",".join(pass_env)] if pass_env else []), script_path]

    def submit_limit(self, output: str) -> str | None:
        """A refusal for a limit on queued jobs, in words; None for any other.

        >>> print(PBSScheduler().submit_limit("qsub: would exceed queue workq's per-user limit"))
        PBS refused a new job for a queued-jobs limit (would exceed queue workq's per-user limit)
        >>> PBSScheduler().submit_limit("qsub: Unknown queue\\n")
        """
        found = _JOB_LIMIT.search(output)
        return None if found is None else \
            f"PBS refused a new job for a queued-jobs limit ({found.group(0)})"

    def parse_submit(self, stdout: str) -> str:
        lines = [line.strip() for line in stdout.splitlines() if line.strip()]
        match = re.match(r"^(\d+(?:\[\])?)(\.\S+)?$", lines[-1]) if lines else None
        if match is None:
            raise SchedulerError(f"qsub answered {stdout.strip()!r}, not a job id")
        return match.group(1)

    def poll_argv(self, native_ids: list[str]) -> list[str]:
        # never "adopted" (reconciliation); an element's array once, whatever its elements:
        # -t lists the array's subjobs, each with its own state and Exit_status
        ids = list(dict.fromkeys(p for p in map(_polled, native_ids) if p))
        if not ids:
            return ["true"]
        return tolerant_argv(["qstat", "-f", "-x", "-F", "json", "-t", *ids], "Unknown Job Id")

    def parse_poll(self, stdout: str) -> dict[str, SchedulerState]:
        if not stdout.strip():
            return {}
        try:
            data = json.loads(stdout)
        except ValueError as exc:
            raise SchedulerError(f"qstat -F json answered something that is not JSON ({exc}): "
                                 f"{stdout.strip()[:200]!r}") from None
        jobs = (data.get("Jobs") or {}) if isinstance(data, dict) else {}
        states = {}
        for job_id, job in jobs.items():
            if isinstance(job, dict):
                native_id = _sequence(job_id)
                states[native_id] = _state(native_id, job)
        return states

    def accounting_argv(self, native_ids: list[str]) -> list[str] | None:
        return None  # qstat -x is the server's history: there is nothing further to ask

    def parse_accounting(self, stdout: str) -> dict[str, SchedulerState]:
        return {}

    def find_argv(self, job_name: str) -> list[str]:
        return ["qselect", "-N", directive_value("job name", job_name)]

    def parse_find(self, stdout: str) -> list[str]:
        # a plain job's id, or an array's (SEQ[]: qselect lists arrays, not their subjobs)
        ids = [_sequence(line) for line in stdout.splitlines() if line.strip()]
        return list(dict.fromkeys(i for i in ids if i.isdigit() or ARRAY.match(i)))

    def cancel_argv(self, native_ids: list[str]) -> list[str]:
        return ["qdel", *native_ids]


SCHEDULER = SchedulerPlugin("pbs", PBSScheduler, tuple(KNOWN), probes=(("qstat", "--version"),))
