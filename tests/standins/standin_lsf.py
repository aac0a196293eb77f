"""Stand-ins for LSF's ``bsub``, ``bjobs`` and ``bkill`` (IBM Spectrum LSF 10.1 behaviour;
see ``standin_common`` for why they exist).

What they replay, after the commands' pages of the LSF Command Reference:

* ``bsub [opts] < SCRIPT``: ``#BSUB`` lines up to the first command, command-line options
  over them; prints ``Job <ID> is submitted to default queue <normal>.`` (or ``to queue
  <Q>.`` with ``-q``). ``-o`` appends (``-oo`` overwrites) the output, stderr included unless
  ``-e``, and LSF's job report is appended at the end; ``-cwd`` (default: where bsub ran).
  ``-W [H:]M`` is enforced: SIGUSR2, then SIGKILL; the job ends EXIT with exit code 140 and
  ``TERM_RUNLIMIT``. ``-W`` counts minutes; for tests only, ``HPCFLOW_STANDIN_LSF_SECONDS_PER_
  MINUTE`` (read by bsub) makes a stand-in minute that many seconds long.
* ``bjobs [-a] [-noheader] [-o "FIELD... delimiter='C'"] [-J NAME] [ID...]``: finished jobs
  only with ``-a``; "Job <ID> is not found" on stderr for an unknown id, exit status 255 when
  no listed id is known (``LSB_BJOBS_CONSISTENT_EXIT_CODE=N``, the default).
* ``bkill ID...``: SIGINT, SIGTERM, then SIGKILL; EXIT with 128 + the ending signal and
  ``TERM_OWNER``.
* Job arrays (Administrator's Guide, "Job Arrays"): ``bsub -J "NAME[X-Y[:Z]]%K"`` makes one
  job id with an element per index, each run with ``LSB_JOBINDEX=i`` (0 for a plain job),
  ``%I`` in ``-o``/``-e`` replaced by ``i``, at most K running at once. ``bjobs ID`` lists
  every element (JOBID the array's id, JOB_NAME ``NAME[i]``, field ``jobindex``),
  ``bjobs "ID[i]"`` one, ``bjobs -J NAME`` the array's; ``bkill "ID[i]"`` kills one element,
  ``bkill ID`` them all.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
import time
from typing import Any

import standin_common as common

CLUSTER = "standin"
DEFAULT_QUEUE = "normal"
RUNLIMIT_EXIT_CODE = 140
#: The gap between bkill's signals (JOB_TERMINATE_INTERVAL, 10 s by default; shortened).
KILL_GRACE = 1.0
REASONS = {"limit": "TERM_RUNLIMIT: job killed after reaching LSF run time limit",
           "owner": "TERM_OWNER: job killed by owner"}
BSUB_VALUE = {"-J", "-o", "-oo", "-e", "-eo", "-cwd", "-W", "-n", "-M", "-q", "-P", "-R",
              "-gpu", "-G", "-app", "-w", "-E", "-m", "-u", "-sla", "-c", "-L"}
BSUB_FLAGS = {"-x", "-N", "-B", "-r", "-rn"}
FIELDS = {"jobid": "JOBID", "id": "JOBID", "stat": "STAT", "exit_code": "EXIT_CODE",
          "exit_reason": "EXIT_REASON", "job_name": "JOB_NAME", "name": "JOB_NAME",
          "user": "USER", "queue": "QUEUE", "from_host": "FROM_HOST",
          "exec_host": "EXEC_HOST", "jobindex": "JOBINDEX"}
ARRAY_NAME = re.compile(r"^([^\[\]]+)\[(\d+)-(\d+)(?::(\d+))?\](?:%(\d+))?$")


def _die(message: str, code: int = 255) -> int:
    sys.stderr.write(message + "\n")
    return code


def _directives(script: str) -> list[str]:
    args: list[str] = []
    for line in script.splitlines():
        stripped = line.strip()
        if not stripped or (stripped.startswith("#") and not stripped.startswith("#BSUB")):
            continue
        if not stripped.startswith("#BSUB"):
            break
        args += shlex.split(stripped[5:], comments=True)
    return args


def _options(args: list[str]) -> tuple[dict[str, str], list[str]] | str:
    options: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in BSUB_FLAGS:
            options[arg] = ""
        elif arg in BSUB_VALUE:
            if i + 1 >= len(args):
                return f"{arg}: option requires an argument"
            i += 1
            options[arg] = args[i]
        elif arg.startswith("-"):
            return f"{arg}: Illegal option"
        else:
            return options, args[i:]
        i += 1
    return options, []


def bsub(argv: list[str]) -> int:
    parsed = _options(argv)
    if isinstance(parsed, str):
        return _die(f"{parsed}\nUsage: bsub [-h] [-V] [-x] [-J job_name] [-o out_file] ... "
                    "[command [argument ...]]")
    cli, command = parsed
    script = shlex.join(command) + "\n" if command else sys.stdin.read()
    from_script = _options(_directives(script))
    if isinstance(from_script, str):
        return _die(f"{from_script} (in a #BSUB line). Job not submitted.")
    options = {**from_script[0], **cli}
    limit = None
    if "-W" in options:
        match = re.match(r"^(?:(\d+):)?(\d+)$", options["-W"])
        if match is None:
            return _die(f"{options['-W']}: Bad RUNLIMIT specification. Job not submitted.")
        minutes = int(match.group(1) or 0) * 60 + int(match.group(2))
        scale = float(os.environ.get("HPCFLOW_STANDIN_LSF_SECONDS_PER_MINUTE", "60"))
        limit = minutes * scale
    name = options.get("-J", command[0] if command else "STDIN")
    indices: list[int] = []
    throttle = None
    if "[" in name:
        match = ARRAY_NAME.match(name)
        if match is None:
            return _die(f"{name}: Bad job array name or index specification. Job not "
                        "submitted.")
        name = match.group(1)
        start, end, step = (int(match.group(2)), int(match.group(3)),
                            int(match.group(4) or 1))
        indices = list(range(start, end + 1, step)) if step > 0 else []
        throttle = int(match.group(5)) if match.group(5) else None
        if not indices or start < 1:
            return _die(f"{name}: Bad job array name or index specification. Job not "
                        "submitted.")
    job_id = common.next_id()
    cwd = options.get("-cwd", os.getcwd())
    if not os.path.isdir(cwd):
        return _die(f"{cwd}: No such directory. Job not submitted.")
    output = options.get("-oo", options.get("-o"))
    error = options.get("-eo", options.get("-e"))

    def expand(path: str, index: int = 0) -> str:  # %J: the job id, %I: the array index
        return os.path.join(cwd, path.replace("%J", str(job_id)).replace("%I", str(index)))

    spool = os.path.join(common.state_dir(), f"lsf-{job_id}.sh")
    with open(spool, "w") as f:
        f.write(script)
    queue = options.get("-q", DEFAULT_QUEUE)
    record = {
        "kind": "lsf", "id": job_id, "name": name, "script_path": spool,
        "submitted": time.time(), "workdir": cwd, "submit_dir": os.getcwd(),
        "output_path": expand(output) if output else None,
        "error_path": expand(error) if error else None,
        "join": not error, "append_output": "-oo" not in options,
        "queue": queue, "project": options.get("-P", "default"), "limit_seconds": limit,
        "kill_signals": {"limit": ["SIGUSR2", "SIGKILL"],
                         "owner": ["SIGINT", "SIGTERM", "SIGKILL"]},
        "kill_grace": KILL_GRACE, "report": bool(output), "options": options,
        "env": {"LSB_JOBID": str(job_id), "LSB_JOBNAME": name, "LSB_QUEUE": queue,
                "LS_SUBCWD": os.getcwd(), "LSB_JOBFILENAME": spool, "LSB_JOBINDEX": "0"},
    }
    if not indices:
        common.create_job(record)
        common.start_supervisor("lsf", job_id)
    else:
        record.update(indices=indices, throttle=throttle)

        def element(index: int) -> dict[str, Any]:
            return {**record, "id": f"{job_id}[{index}]", "array": job_id, "index": index,
                    "indices": None, "output_path": expand(output, index) if output else None,
                    "error_path": expand(error, index) if error else None,
                    "env": {**record["env"], "LSB_JOBINDEX": str(index),
                            "LSB_JOBNAME": f"{name}[{index}]"}}

        common.create_array(record, element, indices)
    where = "default queue" if "-q" not in options else "queue"
    print(f"Job <{job_id}> is submitted to {where} <{queue}>.")
    return 0


def stat(job: dict[str, Any]) -> str:
    if not job.get("finished"):
        return "RUN" if job.get("started") else "PEND"
    return "DONE" if job.get("returncode") == 0 and not job.get("killed") else "EXIT"


def exit_code(job: dict[str, Any]) -> int | None:
    if stat(job) != "EXIT":
        return None
    if job.get("killed") == "limit":
        return RUNLIMIT_EXIT_CODE
    code = job.get("returncode")
    if code is None:  # killed while pending
        return 130
    return code if code >= 0 else 128 - code


def exit_reason(job: dict[str, Any]) -> str:
    return REASONS.get(job.get("killed") or "", "-") if stat(job) == "EXIT" else "-"


def report(job: dict[str, Any], started: float, ended: float) -> str:
    """LSF's job report, appended to the -o file (abridged)."""
    state = stat(job)
    code = exit_code(job)
    lines = ["", "-" * 60, f"Sender: LSF System <lsfadmin@{common.host()}>",
             f"Subject: Job {job['id']}: <{job['name']}> in cluster <{CLUSTER}> "
             f"{'Done' if state == 'DONE' else 'Exited'}", "",
             f"Job <{job['name']}> was submitted from host <{common.host()}> by user "
             f"<{common.user()}> in cluster <{CLUSTER}> at {time.ctime(job['submitted'])}",
             f"<{job['workdir']}> was used as the working directory.",
             f"Started at {time.ctime(started)}", f"Terminated at {time.ctime(ended)}", ""]
    if state == "DONE":
        lines.append("Successfully completed.")
    else:
        if exit_reason(job) != "-":
            lines.append(f"{exit_reason(job)}.")
        lines.append(f"Exited with exit code {code}.")
    lines += ["", "Resource usage summary:", "",
              f"    Run time :                                   {int(ended - started)} sec.",
              "", "The output (if any) is above this job summary.", ""]
    return "\n".join(lines)


def _format(spec: str) -> tuple[list[str], str] | str:
    delimiter = " "
    match = re.search(r"delimiter='(.)'", spec)
    if match:
        delimiter = match.group(1)
        spec = spec[:match.start()] + spec[match.end():]
    fields = []
    for token in spec.split():
        name = token.split(":")[0].lower()
        if name not in FIELDS:
            return f"{token}: Illegal field name"
        fields.append(name)
    return fields, delimiter


def _value(job: dict[str, Any], field: str) -> str:
    column = FIELDS[field]
    values = {"JOBID": str(job["id"]).split("[")[0], "STAT": stat(job),
              "EXIT_CODE": "-" if exit_code(job) is None else str(exit_code(job)),
              "EXIT_REASON": exit_reason(job),
              "JOB_NAME": f"{job['name']}[{job['index']}]" if job.get("array") else job["name"],
              "JOBINDEX": str(job.get("index") or 0),
              "USER": common.user(), "QUEUE": job["queue"], "FROM_HOST": common.host(),
              "EXEC_HOST": common.host() if job.get("started") else "-"}
    return values[column]


def bjobs(argv: list[str]) -> int:
    every = noheader = False
    spec, name, ids = None, None, []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "-a":
            every = True
        elif arg == "-noheader":
            noheader = True
        elif arg == "-w":
            pass
        elif arg in ("-o", "-J", "-u"):
            if i + 1 >= len(argv):
                return _die(f"{arg}: option requires an argument")
            i += 1
            if arg == "-o":
                spec = argv[i]
            elif arg == "-J":
                name = argv[i]
        elif arg.startswith("-"):
            return _die(f"{arg}: Illegal option\nUsage: bjobs [-a] [-noheader] [-o ...] ...")
        else:
            ids.append(arg)
        i += 1
    parsed = _format(spec or "jobid user stat queue from_host exec_host job_name")
    if isinstance(parsed, str):
        return _die(parsed)
    fields, delimiter = parsed
    status, known = 0, 0
    if ids:
        jobs = []
        for given in ids:
            found = _lookup(given)
            if not found:
                sys.stderr.write(f"Job <{given}> is not found\n")
            else:
                known += 1
                jobs += found
        if known == 0:
            status = 255
    else:
        jobs = [j for j in common.all_jobs("lsf") if not j.get("indices")]
    if name is not None:
        jobs = [j for j in jobs if j["name"] == name]
        if not jobs:
            return _die(f"Job <{name}> is not found")
    shown = [j for j in jobs if every or not j.get("finished")]
    if not shown:
        if known or not ids:
            sys.stderr.write("No job found\n" if every else "No unfinished job found\n")
        return status
    if not noheader:
        print(delimiter.join(FIELDS[f] for f in fields))
    for job in shown:
        print(delimiter.join(_value(job, f) for f in fields))
    return status


def _lookup(given: str) -> list[dict[str, Any]]:
    """A plain job, every element of an array (its id), or one element (``ID[i]``)."""
    job = common.read_job("lsf", given)
    if job is None:
        return []
    return common.elements("lsf", job["id"]) if job.get("indices") else [job]


def bkill(argv: list[str]) -> int:
    ids = [a for a in argv if not a.startswith("-")]
    if not ids:
        return _die("Usage: bkill [-s signal] job_ID ...")
    status = 0
    for given in ids:
        found = _lookup(given)
        if len(found) > 1 or (found and found[0]["id"] != given):  # a whole array
            for element in found:
                common.request_kill("lsf", element["id"], "owner")
            print(f"Job <{given}> is being terminated")
            continue
        _, answer = common.request_kill("lsf", given, "owner")
        if answer == "unknown":
            sys.stderr.write(f"Job <{given}>: No matching job found\n")
            status = 255
        elif answer == "finished":
            sys.stderr.write(f"Job <{given}>: Job has already finished\n")
            status = 255
        else:
            print(f"Job <{given}> is being terminated")
    return status


def main(tool: str) -> None:
    sys.exit({"bsub": bsub, "bjobs": bjobs, "bkill": bkill}[tool](sys.argv[1:]))
