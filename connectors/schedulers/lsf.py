"""IBM Spectrum LSF (10.1): ``bsub < script``, one ``bjobs -a -o ...`` for every live job of a
machine, ``bjobs -J`` to find a job by name, ``bkill``; job arrays (``-J "name[1-N]%K"``).

Sources (the commands' own reference pages; nothing here is copied from them): the "bsub",
"bjobs" (and its "-o" output-format page), "bkill" pages of the LSF Command Reference, the
"LSB_BJOBS_CONSISTENT_EXIT_CODE" page of the Configuration Reference, and "Termination
reasons displayed by bacct, bhist, and bjobs" and "LSF job exit codes" of the Administrator's
Guide; for arrays, "Job Arrays" of the Administrator's Guide (``bsub -J
"name[index_list]%slot_limit"``, ``%I`` in output files, ``LSB_JOBINDEX``, an element as
``ID[index]`` for bjobs and bkill), the "-J" page of ``bsub`` and the ``jobindex`` field of
``bjobs -o``, and ``LSB_BJOBS_DISPLAY_ENH`` (bjobs may write an element's id as ``ID[index]``).

Choices, and why:

* ``bsub`` reads ``#BSUB`` lines only from a script given on its standard input, and the
  ``Scheduler`` protocol's ``submit_argv`` is an argument list without input, so the script is
  redirected by ``sh -c 'exec bsub < "$1"' bsub SCRIPT``: the path is an argument of the
  shell, never parsed by it.
* ``-o`` gets LSF's own output: it appends a job report (resource usage, termination reason)
  to it, which would push the job's last lines out of ``hpcflow steps``. The script sends its
  own output to ``log.txt`` itself (``exec >>log.txt 2>&1``), like every other executor.
* ``-W`` is minutes (``[hours:]minutes``), LSF's run limit: resource ``runlimit``. ``-M``
  takes a unit (``8GB``); without one LSF reads ``LSF_UNIT_FOR_LIMITS`` (KB by default).
* ``bjobs -a ID...`` shows finished jobs for ``CLEAN_PERIOD`` (an hour by default): far longer
  than a poll. It exits 255 when a listed id is unknown (or when all are, depending on
  ``LSB_BJOBS_CONSISTENT_EXIT_CODE``): the call is wrapped so that only "is not found" lines
  are forgiven (``shell.tolerant_argv``). There is no accounting call: ``bhist``/``bacct``
  print free text meant for people.
* ``exit_reason`` (``TERM_RUNLIMIT: ...``) says why LSF ended a job. Without one, exit code
  140 (128 + SIGUSR2, the run-limit warning signal) is taken as a run-limit kill.
* Arrays: ``#BSUB -J "NAME[1-N]%K"`` (the name checked as a plain job's). All elements share
  the array's job id; an element is kept as ``ID[i]``, which ``bjobs`` and ``bkill`` take.
  The poll asks once per array (``bjobs ID`` lists every element) and tells the elements
  apart by ``jobindex`` (0 for a plain job; ``-`` read as 0 too). LSF's report for element
  ``i`` goes to ``lsf-output-%I.txt`` in the array's directory, and what the script writes
  before it moves into the element's step directory to ``log-$LSB_JOBINDEX.txt`` there; from
  then on the element writes to its step directory's ``log.txt`` (``element_lines``): the
  script's first redirection never names the shared ``log.txt`` of the array's directory.

>>> s = LSFScheduler()
>>> s.parse_submit("Job <4242> is submitted to default queue <normal>.\\n")
'4242'
>>> states = s.parse_poll("12|RUN|-|-|hpcflow-wf-1-0\\n"
...     "13|EXIT|140|TERM_RUNLIMIT: job killed after reaching LSF run time limit|hpcflow-wf-2-0\\n")
>>> states["12"].state, states["13"].state, states["13"].timed_out
('running', 'done', True)
>>> s.element_id("77", 3), s.parse_find("77\\n77\\n78\\n")
('77[3]', ['77', '78'])
>>> s.poll_argv(["12", "77[1]", "77[2]", "adopted"])[-2:]
['12', '77']
>>> states = s.parse_poll("77|DONE|-|-|a-array[1]|1\\n77|EXIT|3|-|a-array[2]|2\\n"
...                       "12|RUN|-|-|hpcflow-wf-1-0|0\\n")
>>> sorted((i, v.state, v.exit_code) for i, v in states.items())
[('12', 'running', None), ('77[1]', 'done', None), ('77[2]', 'done', 3)]
>>> s.submit_argv("/scratch/s 1/job.sh")
['sh', '-c', 'exec bsub < "$1"', 'bsub', '/scratch/s 1/job.sh']
>>> print(s.render(JobScript("hpcflow-wf-1-0", "/scratch/s-1", ["python", "-m", "runner"],
...                          resources={"runlimit": 90, "ntasks": 4, "mem": "8GB"})))
#!/bin/bash
#BSUB -J hpcflow-wf-1-0
#BSUB -o /scratch/s-1/lsf-output.txt
#BSUB -cwd /scratch/s-1
#BSUB -W 90
#BSUB -n 4
#BSUB -M 8GB
exec >>/scratch/s-1/log.txt 2>&1
exec python -m runner
<BLANKLINE>
"""

from __future__ import annotations

import re
from collections.abc import Sequence
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
from hpcflow.connectors.schedulers.shell import tolerant_argv

#: Step resources and the bsub option each one becomes.
OPTIONS = {
    "queue": "-q",
    "project": "-P",
    "runlimit": "-W",
    "ntasks": "-n",
    "mem": "-M",
    "gpus": "-gpu",
    "exclusive": "-x",
}
#: The output file LSF writes (its job report); the job's own output goes to log.txt.
LSF_OUTPUT = "lsf-output.txt"
#: ``jobindex`` last: an array's element (0 or ``-`` for a plain job).
POLL_FORMAT = "jobid stat exit_code exit_reason job_name jobindex delimiter='|'"
#: An element of an array, as this module keeps its id.
ELEMENT = re.compile(r"^(\d+)\[(\d+)\]$")
NOT_FOUND = "is not found|No (unfinished )?job found"

_RUNLIMIT = re.compile(r"^\d+(:\d{1,2})?$")
_MEM = re.compile(r"^\d+(\.\d+)?([KMGTPEZ]B?)?$", re.IGNORECASE)
_COUNT = re.compile(r"^[1-9]\d*$")

PENDING_STATES = frozenset({"PEND", "PSUSP", "WAIT", "PROV"})
PENDING_WORDS = {"PEND": "pending (bjobs -p says why)", "PSUSP": "suspended while pending "
                 "(bstop by its owner or an administrator)", "WAIT": "waiting (chunk job)",
                 "PROV": "waiting for its hosts to be provisioned"}
FINAL_STATES = frozenset({"DONE", "EXIT"})
#: Exit code of a job killed at its run limit when bjobs gives no reason (128 + SIGUSR2).
RUNLIMIT_EXIT_CODE = 140

KILLED = "the job was killed outside hpcflow (LSF {term}: bkill or an administrator)"
#: LSF termination keywords, with what to tell the user and whether it was the
#: infrastructure's doing (worth another attempt).
TERMINATIONS = {
    "TERM_RUNLIMIT": ("the job reached its run limit (LSF TERM_RUNLIMIT): ask for more with "
                      "runlimit=", False),
    "TERM_MEMLIMIT": ("the job ran out of memory (LSF TERM_MEMLIMIT): ask for more with mem=",
                      False),
    "TERM_SWAP": ("the job reached its swap limit (LSF TERM_SWAP)", False),
    "TERM_CPULIMIT": ("the job reached its CPU time limit (LSF TERM_CPULIMIT)", False),
    "TERM_PREEMPT": ("the job was preempted (LSF TERM_PREEMPT)", True),
    "TERM_ZOMBIE": ("the job ended while LSF could not reach its host (LSF TERM_ZOMBIE)", True),
    "TERM_REMOVE_HUNG_JOB": ("LSF removed the hung job (TERM_REMOVE_HUNG_JOB)", True),
    "TERM_LOAD": ("the job's host became overloaded (LSF TERM_LOAD)", True),
    "TERM_WINDOW": ("the queue's run window closed (LSF TERM_WINDOW)", True),
    "TERM_RC": ("the job's cloud host was reclaimed (LSF TERM_RC)", True),
    "TERM_CWD_NOTEXIST": ("the step directory is not reachable from the job's host (LSF "
                          "TERM_CWD_NOTEXIST)", False),
    **{term: (KILLED.format(term=term), False) for term in (
        "TERM_OWNER", "TERM_ADMIN", "TERM_FORCE_OWNER", "TERM_FORCE_ADMIN",
        "TERM_REQUEUE_OWNER", "TERM_REQUEUE_ADMIN", "TERM_BUCKET_KILL")},
}


def _checked(key: str, value: Any) -> str:
    text = directive_value(key, value)
    if key in ("ntasks", "gpus") and not _COUNT.match(text):
        raise SchedulerError(f"resource {key}={value!r} must be a positive whole number")
    if key == "runlimit" and not _RUNLIMIT.match(text):
        raise SchedulerError(f"resource runlimit={value!r} is not an LSF run limit: minutes "
                             "(90) or hours:minutes (1:30)")
    if key == "mem" and not _MEM.match(text):
        raise SchedulerError(f"resource mem={value!r} is not an LSF memory limit: write it "
                             "like 8GB or 512MB")
    return f"num={text}" if key == "gpus" else text


def _exit_code(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.lstrip("-").isdigit() else None


def _state(native_id: str, raw: str, exit_code: str = "", exit_reason: str = "") \
        -> SchedulerState:
    raw = raw.strip() or "UNKWN"
    if raw not in FINAL_STATES:
        # UNKWN (host unreachable) and ZOMBI (killed while unreachable) become EXIT in time.
        if raw in PENDING_STATES:
            return SchedulerState(native_id, QUEUED, raw,
                                  waiting_for=PENDING_WORDS.get(raw, raw))
        return SchedulerState(native_id, RUNNING, raw)
    code = _exit_code(exit_code)
    if raw == "DONE":
        return SchedulerState(native_id, DONE, raw, code)
    term = exit_reason.strip().split(":")[0].strip()
    if term in TERMINATIONS:
        reason, infrastructure = TERMINATIONS[term]
        return SchedulerState(native_id, DONE, raw, code, reason, infrastructure=infrastructure,
                              timed_out=term == "TERM_RUNLIMIT")
    if term.startswith("TERM_"):
        return SchedulerState(native_id, DONE, raw, code,
                              f"LSF ended the job ({exit_reason.strip()})")
    if code == RUNLIMIT_EXIT_CODE:
        return SchedulerState(native_id, DONE, raw, code, "the job reached its run limit (LSF "
                              "gave no reason; 140 is its run-limit exit code): ask for more "
                              "with runlimit=", timed_out=True)
    return SchedulerState(native_id, DONE, raw, code)


#: bsub's refusal for the pending job threshold of the user or their group (MAX_PEND_JOBS of
#: lsb.users or lsb.params): "User <alice>: Pending job threshold reached. Retrying in 60
#: seconds...", or "Group <g>: ...". Sources: the "Maximum pending job threshold" section of
#: "About job states" in IBM Spectrum LSF 10.1's documentation (the rejection, and that bsub
#: retries every SUB_TRY_INTERVAL until LSB_NTRIES attempts, for ever when LSB_NTRIES is not
#: set), and the line itself as sites' scripts match it (it is not in IBM's pages).
_PEND_LIMIT = re.compile(r"(?:(?:User|Group) <[^>]*>: )?Pending job threshold reached")


class LSFScheduler:
    name = "lsf"

    def render(self, job: JobScript) -> str:
        step_dir = directive_value("step directory", job.step_dir)
        name = directive_value("job name", job.name)
        output = LSF_OUTPUT
        if job.elements:  # one name, the indices and the throttle, quoted as LSF asks
            throttle = "" if job.throttle is None else f"%{int(job.throttle)}"
            name = f'"{name}[1-{len(job.elements)}]{throttle}"'
            output = LSF_OUTPUT.replace(".txt", "-%I.txt")  # %I: the element's index
        lines = ["#!/bin/bash",
                 f"#BSUB -J {name}",
                 f"#BSUB -o {step_dir}/{output}",
                 f"#BSUB -cwd {step_dir}"]
        for key, value in job.resources.items():
            if key == "extra_directives":
                lines += [f"#BSUB {extra_directive(d)}" for d in value or []]
            elif key in OPTIONS:
                if value is None or value is False:
                    continue
                option = OPTIONS[key]
                lines.append(f"#BSUB {option}" if value is True
                             else f"#BSUB {option} {_checked(key, value)}")
            else:
                raise SchedulerError(f"unknown LSF resource {key!r} (known: "
                                     f"{', '.join(sorted(OPTIONS))}, extra_directives)")
        if job.elements:  # until element_lines moves into the element's own directory
            lines.append(f'exec >>{command_line([step_dir])}/log-"$LSB_JOBINDEX".txt 2>&1')
        else:
            lines.append(f"exec >>{command_line([step_dir + '/log.txt'])} 2>&1")
        lines += list(job.prepare)
        if job.elements:
            lines += element_lines(job, "LSB_JOBINDEX")
        lines.append(f"exec {command_line(job.command)}")
        return "\n".join(lines) + "\n"

    def submit_argv(self, script_path: str, pass_env: Sequence[str] = ()) -> list[str]:
        # bsub hands its whole environment to the job by default (pass_env included).
        # bsub parses #BSUB lines only from standard input; the path stays an argument.
        return ["sh", "-c", 'exec bsub < "$1"', "bsub", script_path]

    def submit_limit(self, output: str) -> str | None:
        """A refusal for the pending job threshold, in words; None for any other.

        >>> print(LSFScheduler().submit_limit(
        ...     "User <alice>: Pending job threshold reached. Retrying in 60 seconds...\\n"))
        LSF refused a new job for its pending job threshold (User <alice>: Pending job ...)
        >>> LSFScheduler().submit_limit("normal: No such queue. Job not submitted.\\n")
        """
        found = _PEND_LIMIT.search(output)
        return None if found is None else \
            f"LSF refused a new job for its pending job threshold ({found.group(0)})"

    def element_id(self, array_id: str, index: int) -> str:
        """``ID[i]``: element ``i`` of the array ``ID``, as bjobs and bkill name it."""
        return f"{array_id}[{int(index)}]"

    def parse_submit(self, stdout: str) -> str:
        match = re.search(r"Job <(\d+)> is submitted", stdout)
        if match is None:
            raise SchedulerError(f"bsub answered {stdout.strip()!r}, not a job id")
        return match.group(1)

    def poll_argv(self, native_ids: list[str]) -> list[str]:
        # never "adopted" (reconciliation); an element's array once: bjobs ID lists them all
        ids = list(dict.fromkeys(i.split("[")[0] for i in native_ids
                                 if i.isdigit() or ELEMENT.match(i)))
        if not ids:
            return ["true"]
        return tolerant_argv(["bjobs", "-a", "-noheader", "-o", POLL_FORMAT, *ids], NOT_FOUND)

    def parse_poll(self, stdout: str) -> dict[str, SchedulerState]:
        states = {}
        for line in stdout.splitlines():
            parts = line.strip().split("|")
            # with LSB_BJOBS_DISPLAY_ENH=Y an element's jobid is already ID[index]
            job_id = parts[0].split("[")[0]
            if len(parts) >= 4 and job_id.isdigit():
                index = parts[5].strip() if len(parts) > 5 else ""
                native_id = f"{job_id}[{index}]" if index.isdigit() and int(index) else job_id
                states[native_id] = _state(native_id, parts[1], parts[2], parts[3])
        return states

    def accounting_argv(self, native_ids: list[str]) -> list[str] | None:
        return None

    def parse_accounting(self, stdout: str) -> dict[str, SchedulerState]:
        return {}

    def find_argv(self, job_name: str) -> list[str]:
        return tolerant_argv(["bjobs", "-noheader", "-o", "jobid", "-J",
                              directive_value("job name", job_name)], NOT_FOUND)

    def parse_find(self, stdout: str) -> list[str]:
        # an array: a line per element, each with the array's id (ID[index] with
        # LSB_BJOBS_DISPLAY_ENH=Y)
        ids = (line.strip().split("[")[0] for line in stdout.splitlines())
        return list(dict.fromkeys(i for i in ids if i.isdigit()))

    def cancel_argv(self, native_ids: list[str]) -> list[str]:
        return ["bkill", *native_ids]


SCHEDULER = SchedulerPlugin("lsf", LSFScheduler, tuple(OPTIONS), probes=(("bjobs", "-V"),))
