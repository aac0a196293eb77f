"""Stand-ins for PBS's ``qsub``, ``qstat``, ``qdel`` and ``qselect`` (OpenPBS 19+ / PBS
Professional behaviour; see ``standin_common`` for why they exist).

What they replay, after the commands' pages of the PBS Professional Reference Guide:

* ``qsub [opts] SCRIPT``: ``#PBS`` directives up to the first command line, command-line
  options over directives; prints ``SEQ.SERVER``. The job starts in the home directory
  (``PBS_O_WORKDIR`` holds the submission directory); ``-o``/``-e``/``-j oe``; ``-l
  walltime=[[H:]M:]S`` is enforced (SIGTERM, then SIGKILL after the kill delay, and MoM's
  "job killed: walltime" line in the job's stderr), recorded as ``Exit_status`` -29
  (JOB_EXEC_KILL_WALLTIME, OpenPBS 20+; older versions report 271).
* ``qstat [-f] [-x] [-F json] [ID...]``: JSON ``{"timestamp", "pbs_version", "pbs_server",
  "Jobs": {"SEQ.SERVER": {...}}}``; a finished job only with ``-x`` (else "Job has finished,
  use -x or -H"); unknown ids: "qstat: Unknown Job Id ID" on stderr, exit status 153
  (PBSE_UNKJOBID 15001 modulo 256) after printing the others.
* ``qdel ID...``: SIGTERM, SIGKILL after the kill delay; the job ends with ``Exit_status``
  256 + the signal that ended it (271 for SIGTERM); a queued job ends without one.
* ``qselect [-x] [-N NAME]``: one ``SEQ.SERVER`` per line (``SEQ[].SERVER`` for an array).
* Job arrays (User's Guide, "Job Arrays"; OpenPBS 20+ for the throttle): ``qsub -J X-Y[:Z][%K]``
  (two subjobs at least) prints ``SEQ[].SERVER`` and makes subjobs ``SEQ[i]``, each run with
  ``PBS_ARRAY_INDEX=i`` (``PBS_JOBID`` ``SEQ[i].SERVER``, ``PBS_ARRAY_ID`` ``SEQ[].SERVER``),
  ``^array_index^`` in ``-o``/``-e`` replaced by ``i``, at most K running at once
  (``max_run_subjobs``). ``qstat`` shows the array as ``SEQ[]`` (Q, then B once a subjob
  started, F when all ended, then only with ``-x``) and, with ``-t`` or named, its subjobs
  (Q, R, then X with their own ``Exit_status``); a plain ``SEQ`` is not the array.
  ``qdel SEQ[i]`` deletes one subjob (refused once it finished), ``qdel SEQ[]`` all.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import sys
import time
from typing import Any

import standin_common as common

SERVER = "standin"
VERSION = "22.05.11 (stand-in)"
WALLTIME_EXIT_STATUS = -29
UNKNOWN_JOB_EXIT = 15001 % 256  # PBSE_UNKJOBID
FINISHED_JOB_EXIT = 15139 % 256  # PBSE_HISTJOBID
#: PBS's kill_delay between SIGTERM and SIGKILL (10 s by default; shortened here).
KILL_GRACE = 2.0
RUN_AT = "%a %b %d at %H:%M"
#: Options of the four commands that take a value, and those that do not.
WITH_VALUE = set("aAcCDeFGjJkKlmMNoPqrsSuvW")
FLAGS = set("1EfhHIptVwxXz")


def _die(message: str, code: int = 2) -> int:
    sys.stderr.write(message + "\n")
    return code


def _full(job_id: int | str) -> str:
    return f"{job_id}.{SERVER}"


def _display(job: dict[str, Any]) -> str:
    """A job's, an array's (``SEQ[]``) or a subjob's (``SEQ[i]``) full id."""
    return _full(f"{job['id']}[]" if job.get("indices") else job["id"])


def _indices(text: str) -> tuple[list[int], int | None] | None:
    """``X-Y[:Z][%K]`` as its indices and throttle; None when PBS would refuse it."""
    match = re.match(r"^(\d+)-(\d+)(?::(\d+))?(?:%(\d+))?$", text)
    if match is None:
        return None
    start, end, step = int(match.group(1)), int(match.group(2)), int(match.group(3) or 1)
    indices = list(range(start, end + 1, step)) if step > 0 else []
    throttle = int(match.group(4)) if match.group(4) else None
    if len(indices) < 2 or throttle == 0:
        return None
    return indices, throttle


def _sequence(text: str) -> str:
    return text.split("@")[0].split(".")[0]


def _seconds(text: str) -> int | None:
    if not re.match(r"^\d+(:\d{1,2}){0,2}(\.\d+)?$", text):
        return None
    total = 0
    for part in text.split(".")[0].split(":"):
        total = total * 60 + int(part)
    return total


def _parse_options(args: list[str], options: dict[str, list[str]]) -> list[str] | str:
    """getopt-style ``-x value`` / ``-xvalue``; returns the operands or an error message."""
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("-") or arg == "-":
            return args[i:]
        if arg == "--":
            return args[i + 1:]
        letter = arg[1]
        if letter in FLAGS:
            options.setdefault(letter, []).append("")
            for extra in arg[2:]:
                if extra not in FLAGS:
                    return f"invalid option -- '{extra}'"
                options.setdefault(extra, []).append("")
        elif letter in WITH_VALUE:
            if len(arg) > 2:
                value = arg[2:]
            elif i + 1 < len(args):
                i += 1
                value = args[i]
            else:
                return f"option requires an argument -- '{letter}'"
            options.setdefault(letter, []).append(value)
        else:
            return f"invalid option -- '{letter}'"
        i += 1
    return []


def _directives(script: str) -> list[str]:
    """The ``#PBS`` lines before the first command of the script, as arguments."""
    args: list[str] = []
    for line in script.splitlines():
        stripped = line.strip()
        if not stripped or (stripped.startswith("#") and not stripped.startswith("#PBS")):
            continue
        if not stripped.startswith("#PBS"):
            break
        args += shlex.split(stripped[4:], comments=True)
    return args


def _resources(values: list[str]) -> dict[str, Any] | str:
    resources: dict[str, Any] = {}
    for value in values:
        for item in value.split(","):
            name, sep, setting = item.partition("=")
            if not sep or not setting:
                return f"qsub: illegal -l value {item!r}"
            resources[name] = setting
    if "walltime" in resources and _seconds(resources["walltime"]) is None:
        return "qsub: Illegal attribute or resource value Resource_List.walltime"
    select = resources.get("select")
    if select:
        chunks, _, spec = str(select).partition(":")
        if not chunks.isdigit():
            return "qsub: Illegal attribute or resource value Resource_List.select"
        for item in spec.split(":") if spec else []:
            name, _, setting = item.partition("=")
            resources.setdefault(name, setting)
    resources.setdefault("ncpus", "1")
    resources.setdefault("nodect", "1")
    resources.setdefault("place", "pack")
    return resources


def _local_path(path: str) -> str:
    return path.split(":", 1)[1] if re.match(r"^[A-Za-z0-9.-]+:/", path) else path


def qsub(argv: list[str]) -> int:
    cli: dict[str, list[str]] = {}
    operands = _parse_options(argv, cli)
    if isinstance(operands, str):
        return _die(f"qsub: {operands}\nusage: qsub [-a date_time] [-A account_string] ... "
                    "[script | -- command [arg1 ...]]")
    if len(operands) > 1:
        return _die("qsub: only one script can be submitted at a time")
    if operands:
        try:
            with open(operands[0]) as f:
                script = f.read()
        except OSError as exc:
            return _die(f"qsub: script file:: {exc.strerror}", 1)
    else:
        script = sys.stdin.read()
    options: dict[str, list[str]] = {}
    parsed = _parse_options(_directives(script), options)
    if isinstance(parsed, str):
        return _die(f"qsub: directive error: {parsed}")
    for letter, values in cli.items():  # the command line wins over the script
        options[letter] = options.get("l", []) + values if letter == "l" else values
    resources = _resources(options.get("l", []))
    if isinstance(resources, str):
        return _die(resources, 1)
    job_id = common.next_id()
    name = options.get("N", [os.path.basename(operands[0]) if operands else "STDIN"])[-1]
    if not re.match(r"^[A-Za-z][^\s@:]{0,235}$", name):
        return _die("qsub: illegal -N value", 2)
    submit_dir = os.getcwd()
    join = options.get("j", ["n"])[-1]
    output = _local_path(options.get("o", [f"{submit_dir}/{name}.o{job_id}"])[-1])
    error = _local_path(options.get("e", [f"{submit_dir}/{name}.e{job_id}"])[-1])
    array = None
    if "J" in options:
        array = _indices(options["J"][-1])
        if array is None:
            return _die("qsub: illegal -J value", 2)
    spool = os.path.join(common.state_dir(), f"pbs-{job_id}.sh")
    with open(spool, "w") as f:
        f.write(script)
    now = time.time()
    limit = _seconds(resources["walltime"]) if "walltime" in resources else None
    record = {
        "kind": "pbs", "id": job_id, "name": name, "script_path": spool, "submitted": now,
        "workdir": os.path.expanduser("~"), "submit_dir": submit_dir,
        "output_path": output, "error_path": None if join == "oe" else error,
        "join": join == "oe", "keep": options.get("k", ["n"])[-1],
        "queue": options.get("q", ["workq"])[-1], "account": options.get("A", [None])[-1],
        "resources": resources, "limit_seconds": limit,
        "limit_message": "=>> PBS: job killed: walltime {used} exceeded limit {limit}",
        "kill_signals": {"limit": ["SIGTERM", "SIGKILL"], "delete": ["SIGTERM", "SIGKILL"]},
        "kill_grace": KILL_GRACE, "report": False,
        "submit_args": " ".join(shlex.quote(a) for a in argv),
        "env": {"PBS_JOBID": _full(job_id), "PBS_JOBNAME": name, "PBS_O_WORKDIR": submit_dir,
                "PBS_O_HOST": common.host(), "PBS_QUEUE": options.get("q", ["workq"])[-1],
                "PBS_ENVIRONMENT": "PBS_BATCH", "PBS_O_HOME": os.path.expanduser("~")},
    }
    if array is None:
        common.create_job(record)
        common.start_supervisor("pbs", job_id)
    else:
        indices, throttle = array
        record.update(indices=indices, throttle=throttle, range=options["J"][-1])

        def element(index: int) -> dict[str, Any]:
            def path(p: str | None) -> str | None:
                return p.replace("^array_index^", str(index)) if p else p
            return {**record, "id": f"{job_id}[{index}]", "array": job_id, "index": index,
                    "indices": None, "output_path": path(record["output_path"]),
                    "error_path": path(record["error_path"]),
                    "env": {**record["env"], "PBS_JOBID": _full(f"{job_id}[{index}]"),
                            "PBS_ARRAY_INDEX": str(index),
                            "PBS_ARRAY_ID": _full(f"{job_id}[]")}}

        common.create_array(record, element, indices)
    if "z" not in cli:
        print(_display(record))
    return 0


def _state(job: dict[str, Any]) -> str:
    if job.get("indices"):  # an array: as its subjobs
        subjobs = common.elements("pbs", job["id"])
        if all(j.get("finished") for j in subjobs):
            return "F"
        return "B" if any(j.get("started") or j.get("finished") for j in subjobs) else "Q"
    if job.get("finished"):
        return "X" if job.get("array") else "F"
    if job.get("started"):
        return "R"
    return "Q"


def _over(job: dict[str, Any]) -> bool:
    """Shown only with -x: a finished job, a finished array, a subjob of one."""
    if job.get("array"):
        parent = common.read_job("pbs", job["array"])
        return parent is not None and _state(parent) == "F"
    return _state(job) == "F"


def exit_status(job: dict[str, Any]) -> int | None:
    """What PBS records: the script's code, 256 + a killing signal, or a JOB_EXEC_* code."""
    if job.get("started") is None:
        return None
    if job.get("killed") == "limit":
        return WALLTIME_EXIT_STATUS
    code = job.get("returncode")
    if code is None:
        return None
    return code if code >= 0 else 256 - code


def report(job: dict[str, Any], started: float, ended: float) -> str:
    return ""  # PBS adds nothing to the job's output beyond MoM's kill messages


def _job_json(job: dict[str, Any]) -> dict[str, Any]:
    state = _state(job)
    stamp = time.ctime(job["submitted"])
    where = common.host()
    data: dict[str, Any] = {
        "Job_Name": job["name"],
        "Job_Owner": f"{common.user()}@{where}",
        "job_state": state,
        "queue": job["queue"],
        "server": SERVER,
        "Checkpoint": "u",
        "ctime": stamp,
        "Error_Path": f"{where}:{job['error_path'] or job['output_path']}",
        "Hold_Types": "n",
        "Join_Path": "oe" if job["join"] else "n",
        "Keep_Files": job["keep"],
        "Mail_Points": "a",
        "mtime": time.ctime(job.get("finished") or job.get("started") or job["submitted"]),
        "Output_Path": f"{where}:{job['output_path']}",
        "Priority": 0,
        "qtime": stamp,
        "Rerunable": "True",
        "Resource_List": {k: (int(v) if str(v).isdigit() and k != "walltime" else v)
                          for k, v in job["resources"].items()},
        "substate": {"Q": 10, "R": 42, "B": 42, "F": 92, "X": 92}[state],
        "Variable_List": {**job["env"], "PBS_O_SYSTEM": "Linux"},
        "etime": stamp,
        "Submit_arguments": job["submit_args"],
        "project": "_pbs_project_default",
        "Submit_Host": where,
    }
    if job.get("account"):
        data["Account_Name"] = job["account"]
    if job.get("indices"):  # the array itself: no process of its own
        counts = {s: sum(_state(j) == s for j in common.elements("pbs", job["id"]))
                  for s in "QRX"}
        data.update({"array": "True", "array_indices_submitted": job["range"],
                     "array_state_count": f"Queued:{counts['Q']} Running:{counts['R']} "
                                          f"Exiting:0 Expired:{counts['X']}"})
        if job.get("throttle"):
            data["max_run_subjobs"] = job["throttle"]
        if state == "F":
            data["history_timestamp"] = int(time.time())
        return data
    if job.get("array"):
        data.update({"array_id": _full(f"{job['array']}[]"), "array_index": job["index"]})
    if job.get("started"):
        used = (job.get("finished") or time.time()) - job["started"]
        data.update({
            "resources_used": {"cpupercent": 0, "cput": "00:00:00", "mem": "0kb",
                               "ncpus": int(job["resources"].get("ncpus", 1)), "vmem": "0kb",
                               "walltime": common.hms(used)},
            "exec_host": f"{where}/0",
            "exec_vnode": f"({where}:ncpus={job['resources'].get('ncpus', 1)})",
            "stime": time.ctime(job["started"]),
            "session_id": job.get("pid", 0),
            "jobdir": job["workdir"],
            "run_count": 1,
            "comment": (f"Job run at {time.strftime(RUN_AT, time.localtime(job['started']))} on "
                        f"({where}:ncpus={job['resources'].get('ncpus', 1)})"
                        + (" and finished" if state in "FX" else "")),
        })
    if state in "FX":
        status = exit_status(job)
        if status is not None:
            data["Exit_status"] = status
        data["history_timestamp"] = int(job["finished"])
        data["substate"] = 92 if status == 0 else 93 if job.get("started") else 91
    return data


def _lookup(given: str) -> dict[str, Any] | None:
    """``SEQ`` (a plain job), ``SEQ[]`` (an array) or ``SEQ[i]`` (a subjob)."""
    seq = _sequence(given)
    if seq.endswith("[]"):
        job = common.read_job("pbs", seq[:-2])
        return job if job is not None and job.get("indices") else None
    job = common.read_job("pbs", seq)
    return None if job is None or job.get("indices") else job


def _select(ids: list[str], history: bool, command: str,
            subjobs: bool = False) -> tuple[list[dict], int]:
    """The jobs asked for (all when none is named; an array's subjobs after it with -t),
    with qstat's exit status."""
    status = 0
    if not ids:
        found = [j for j in common.all_jobs("pbs") if not j.get("array")]
    else:
        found = []
        for given in ids:
            job = _lookup(given)
            if job is None:
                sys.stderr.write(f"{command}: Unknown Job Id {_full(_sequence(given))}\n")
                status = UNKNOWN_JOB_EXIT
            elif _over(job) and not history:
                sys.stderr.write(f"{command}: {_display(job)} Job has finished, use -x or -H "
                                 "to obtain historical job information\n")
                status = FINISHED_JOB_EXIT
            else:
                found.append(job)
    jobs = []
    for job in found:
        if not ids and _over(job) and not history:
            continue
        jobs.append(job)
        if job.get("indices") and subjobs:
            jobs += common.elements("pbs", job["id"])
    return jobs, status


def qstat(argv: list[str]) -> int:
    options: dict[str, list[str]] = {}
    ids = _parse_options(argv, options)
    if isinstance(ids, str):
        return _die(f"qstat: {ids}\nusage: qstat [-f] [-x] [-F format] [job_identifier...]")
    jobs, status = _select(ids, "x" in options, "qstat", "t" in options)
    form = options.get("F", [""])[-1].lower()
    if form and form != "json":
        return _die(f"qstat: unknown format {form}")
    if form == "json":
        if "f" not in options:
            return _die("qstat: option F requires f")
        import json

        document: dict[str, Any] = {"timestamp": int(time.time()), "pbs_version": VERSION,
                                    "pbs_server": SERVER}
        if jobs:
            document["Jobs"] = {_display(j): _job_json(j) for j in jobs}
        print(json.dumps(document, indent=4))
    elif "f" in options:
        for job in jobs:
            print(f"Job Id: {_display(job)}")
            for key, value in _job_json(job).items():
                if isinstance(value, dict):
                    for sub, item in value.items():
                        print(f"    {key}.{sub} = {item}")
                else:
                    print(f"    {key} = {value}")
            print()
    elif jobs:
        print(f"{'Job id':<17}{'Name':<17}{'User':<16}{'Time Use':<9}S Queue")
        print(f"{'-' * 16} {'-' * 16} {'-' * 15} {'-' * 8} - -----")
        for job in jobs:
            print(f"{_display(job):<17}{job['name'][:16]:<17}{common.user()[:15]:<16}"
                  f"{'0':>8} {_state(job)} {job['queue']}")
    return status


def qdel(argv: list[str]) -> int:
    options: dict[str, list[str]] = {}
    ids = _parse_options(argv, options)
    if isinstance(ids, str) or not ids:
        return _die("usage: qdel [-W force|suppress_email=X] [-x] job_identifier...")
    status = 0
    for given in ids:
        job = _lookup(given)
        if job is not None and job.get("indices"):  # SEQ[]: every subjob still there
            for subjob in common.elements("pbs", job["id"]):
                common.request_kill("pbs", subjob["id"], "delete")
            continue
        if job is not None and job.get("array") and job.get("finished"):
            sys.stderr.write(f"qdel: Request invalid for finished array subjob "
                             f"{_display(job)}\n")
            status = FINISHED_JOB_EXIT
            continue
        answer = "unknown" if job is None else \
            common.request_kill("pbs", job["id"], "delete")[1]
        if answer == "unknown":
            sys.stderr.write(f"qdel: Unknown Job Id {_full(_sequence(given))}\n")
            status = UNKNOWN_JOB_EXIT
        elif answer == "finished":
            sys.stderr.write(f"qdel: Job has finished {_full(_sequence(given))}\n")
            status = FINISHED_JOB_EXIT
    return status


def qselect(argv: list[str]) -> int:
    options: dict[str, list[str]] = {}
    rest = _parse_options(argv, options)
    if isinstance(rest, str) or rest:
        return _die("usage: qselect [-x] [-N name] [-q destination] [-u user_list]")
    names = set(options.get("N", []))
    for job in common.all_jobs("pbs"):
        if job.get("array"):  # subjobs are not listed (their array is)
            continue
        if (names and job["name"] not in names) or (_over(job) and "x" not in options):
            continue
        print(_display(job))
    return 0


def kill_all() -> None:
    """Tests' clean-up: every process group a stand-in job left running."""
    for job in common.all_jobs("pbs"):
        if job.get("pid") and not job.get("finished"):
            common._signal_group(job["pid"], signal.SIGKILL)


def main(tool: str) -> None:
    sys.exit({"qsub": qsub, "qstat": qstat, "qdel": qdel, "qselect": qselect}[tool](
        sys.argv[1:]))
