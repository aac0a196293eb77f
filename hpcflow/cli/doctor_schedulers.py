"""Whose a scheduler's command is and what its errors mean, for ``hpcflow doctor``.

Each scheduler's client tools name themselves in their version or help answer (a Grid
Engine ``qstat`` is not PBS's), and their errors have known causes (a Slurm client without
its ``slurm.conf`` is not a missing Slurm). Both serve the check of an executor's scheduler
(its commands are on PATH, are its own and work, and its server answers) and the search for
this machine's schedulers when the config file declares no machine.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from hpcflow.cli.doctor_probe import (
    PROBE_SECONDS,
    TIMED_OUT,
    Failed,
    Probe,
    Target,
    first_said,
    shown_command,
)

#: Seconds a scheduler's job query may take.
QUERY_SECONDS = 60
#: A job name no job has: the scheduler's own query for it shows that its server answers.
NO_SUCH_JOB = "hpcflow-doctor-probe"


@dataclass(frozen=True)
class Family:
    """What doctor knows of one scheduler's client tools beyond their plugin: how their
    version or help answer looks (whose is this ``qstat``?) and what their errors mean."""

    title: str
    #: Its daemon that answers the job queries.
    server: str
    #: Matches the line of its tools' version or help answer that names it.
    mark: re.Pattern[str]
    #: (what its tools print, the cause in words); ``{said}`` is the command and the line
    #: that matched, ``{where}`` the machine, ``{file}`` the pattern's first group.
    causes: tuple[tuple[re.Pattern[str], str], ...] = ()
    #: dpdispatcher's ``batch_type`` for it.
    batch_type: str | None = None


def _lines(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.MULTILINE)


FOR_SHELLS = ", for non-interactive shells too (e.g. in ~/.bashrc before its interactive-only part)"
FAMILIES: dict[str, Family] = {
    "slurm": Family("Slurm", "slurmctld", _lines(r"^slurm(?:-wlm)? \d\S*"), (
        (_lines(r"cannot stat file (\S+?):? No such file"),
         "Slurm's client on {where} has no configuration: {file} does not exist ({said}): set "
         "SLURM_CONF to the cluster's slurm.conf (or install it at that path)" + FOR_SHELLS),
        (_lines(r"Could not establish a configuration source|fetch_config|"
                r"resolve_ctls_from_dns_srv"),
         "Slurm's client on {where} has no configuration: no slurm.conf where it looks, and "
         "no DNS SRV record of a configless cluster ({said}): set SLURM_CONF to the cluster's "
         "slurm.conf" + FOR_SHELLS),
        (_lines(r"Unable to contact slurm controller|Zero Bytes were transmitted"),
         "{where} gets no answer from slurmctld ({said}): is it running, and reachable from "
         "there?"),
        (_lines(r"[Mm]unge|[Aa]uthentication"),
         "Slurm on {where} cannot authenticate ({said}): munged must run there, with the "
         "cluster's munge key"),
    ), "Slurm"),
    "sge": Family("Grid Engine", "sge_qmaster",
                  _lines(r"^\s*(?:SGE|OGS(?:/GE)?|UGE|GE) \d\S*.*|^.*\bGrid Engine\b.*"), (
        (_lines(r"SGE_ROOT|SGE_CELL|act_qmaster|cell directory"),
         "Grid Engine's client on {where} has no configuration ({said}): source "
         "$SGE_ROOT/$SGE_CELL/common/settings.sh (it sets SGE_ROOT and SGE_CELL)" + FOR_SHELLS),
        (_lines(r"unable to (?:contact|send message to) qmaster|commlib error"),
         "{where} gets no answer from sge_qmaster ({said}): is it running, and reachable "
         "from there?"),
    ), "SGE"),
    "pbs": Family("PBS", "pbs_server", _lines(r"^\s*pbs_version\s*=\s*\S+"), (
        (_lines(r"pbs\.conf|PBS_CONF_FILE|PBS_EXEC|No default server"),
         "PBS's client on {where} has no configuration ({said}): set PBS_CONF_FILE to the "
         "cluster's pbs.conf (by default /etc/pbs.conf)" + FOR_SHELLS),
        (_lines(r"[Cc]annot connect to server|errno=15010|Communication failure|"
                r"Connection refused"),
         "{where} gets no answer from the PBS server ({said}): is pbs_server running, and "
         "reachable from there?"),
    ), "PBS"),
    "lsf": Family("LSF", "mbatchd",
                  _lines(r"^.*\b(?:Spectrum LSF|Platform LSF|IBM LSF|[Oo]pen[Ll]ava)\b.*"), (
        (_lines(r"lsf\.conf|LSF_ENVDIR|Bad configuration environment"),
         "LSF's client on {where} has no configuration ({said}): source the cluster's "
         "profile.lsf (it sets LSF_ENVDIR)" + FOR_SHELLS),
        (_lines(r"LIM is down|not responding|LIM configuration is not ready"),
         "{where} gets no answer from LSF's daemons ({said}): is LSF running, and is this "
         "host one of its hosts?"),
        (_lines(r"External authentication failed"),
         "LSF on {where} cannot authenticate ({said}): ask the cluster's administrators"),
    ), "LSF"),
}
#: Tools doctor recognises that no scheduler plugin of hpcflow drives.
STRANGERS: dict[str, Family] = {
    "torque": Family("Torque", "pbs_server", _lines(r"^\s*Version:\s*\d\S*\s*$")),
}
#: dpdispatcher's batch types, as the scheduler plugins whose commands they call.
DISPATCHER_BATCH = {"slurm": "slurm", "slurmjobarray": "slurm", "pbs": "pbs", "lsf": "lsf",
                    "sge": "sge"}


def _family(name: str) -> Family | None:
    return FAMILIES.get(name) or STRANGERS.get(name)


def _whose(text: str, expected: str) -> tuple[str, str] | None:
    """(family, the line that names it) of a tool's answer, ``expected``'s first."""
    for name in (expected, *FAMILIES, *STRANGERS):
        family = _family(name)
        found = family.mark.search(text) if family else None
        if found:
            return name, found.group(0).strip()[:200]
    return None


def _owner(probe: Probe, argv: tuple[str, ...], expected: str, where: str
           ) -> tuple[str, str] | None:
    """Whose the command of ``argv`` is: from its answer, else (it failed without naming
    anyone) from what another scheduler's probe of the same command answers."""
    from hpcflow.connectors.plugins import schedulers

    done = probe.run(list(argv), where)
    found = _whose(f"{done.stdout}\n{done.stderr}", expected)
    if found or done.ok:
        return found
    for name, plugin in sorted(schedulers().items()):
        for other in plugin.probes:
            if name != expected and name in FAMILIES and other[0] == argv[0]:
                answer = probe.run(list(other), where)
                mark = FAMILIES[name].mark.search(f"{answer.stdout}\n{answer.stderr}")
                if mark:
                    return name, mark.group(0).strip()[:200]
    return None


def _cause(family: Family | None, argv: list[str] | tuple[str, ...], done: Any,
           where: str) -> str | None:
    """What a failed command's words mean, for the tools of ``family``."""
    text = f"{done.stderr}\n{done.stdout}"
    for pattern, words in family.causes if family else ():
        found = pattern.search(text)
        if found:
            start = text.rfind("\n", 0, found.start()) + 1
            end = text.find("\n", found.end())
            line = text[start:end if end >= 0 else None].strip()[:200]
            return words.format(said=f"'{shown_command(argv)}': {line}", where=where,
                                file=found.group(1) if found.groups() else "")
    return None


def check_scheduler(target: Target) -> Iterator[str]:
    """The scheduler's commands are its own and work, and its server answers."""
    from hpcflow.connectors.executors.registry import make_scheduler
    from hpcflow.connectors.plugins import scheduler

    name = str(target.scheduler)
    family = FAMILIES.get(name)
    title = family.title if family else name
    identity: str | None = None
    for argv in scheduler(name).probes:
        command = argv[0]
        if target.probe.path_of(command, target.where) is None:
            raise Failed(f"'{command}' is not on the PATH on {target.where}: install or load "
                         f"the {title} client tools" + FOR_SHELLS)
        owner = _owner(target.probe, argv, name, target.where)
        if owner and owner[0] != name:
            raise Failed(_not_ours(target, command, title, *owner))
        identity = identity or (owner[1] if owner else None)
        done = target.probe.run(list(argv), target.where)
        if not done.ok:
            raise Failed(_failure(target, argv, done, family, title))
    yield f"{name} commands" + (f" ({identity})" if identity else "")
    query = make_scheduler(name).find_argv(NO_SUCH_JOB)
    done = target.probe.run(query, target.where, QUERY_SECONDS)
    if not done.ok:
        raise Failed(_failure(target, query, done, family, title, QUERY_SECONDS))
    yield f"{family.server if family else name} answers (a query for jobs)"
    if name == "slurm":
        yield slurm_limits(target.probe, target.where)


#: The user's associations (``id -un``: the user the machine's commands run as) and every
#: QOS, with the limits a workflow runs into; Slurm's array size limit and job count.
ASSOC_QUERY = ["sh", "-c", 'exec sacctmgr --noheader --parsable2 show assoc where '
               'user="$(id -un)" format=account,partition,qos,maxjobs,maxsubmit,maxwall,'
               'maxtres,grpjobs,grpsubmit']
QOS_QUERY = ["sacctmgr", "--noheader", "--parsable2", "show", "qos",
             "format=name,maxjobspu,maxsubmitpu,maxwall,maxtrespu,grpjobs,grpsubmit"]
CONFIG_QUERY = ["scontrol", "show", "config"]
ASSOC_FIELDS = ("MaxJobs", "MaxSubmit", "MaxWall", "MaxTRES", "GrpJobs", "GrpSubmit")
QOS_FIELDS = ("MaxJobsPU", "MaxSubmitPU", "MaxWall", "MaxTRESPU", "GrpJobs", "GrpSubmit")


def _set(names: tuple[str, ...], values: list[str]) -> str:
    shown = [f"{n}={v}" for n, v in zip(names, values, strict=False) if v.strip()]
    return ", ".join(shown) if shown else "no limits"


def parse_slurm_limits(assoc: str, qos: str, config: str) -> str:
    """The limits doctor reports for a Slurm machine, from ``sacctmgr show assoc`` (the
    user's), ``sacctmgr show qos`` and ``scontrol show config``.

    >>> limits = parse_slurm_limits(
    ...     "hpcflow||normal|||||||\\nlab|gpu|normal,long||50|||||\\n",
    ...     "normal|||||||\\nlong|4|20|2-00:00:00||||\\nother|1|1|||||\\n",
    ...     "MaxArraySize            = 1001\\nMaxJobCount = 100000\\n")
    >>> for part in limits.split("; "): print(part)
    account hpcflow: no limits
    account lab (partition gpu): MaxSubmit=50
    QOS normal: no limits
    QOS long: MaxJobsPU=4, MaxSubmitPU=20, MaxWall=2-00:00:00
    MaxArraySize=1001, MaxJobCount=100000
    >>> parse_slurm_limits("", "", "")
    'no association for this user (sacctmgr shows none); MaxArraySize unknown'
    """
    parts, used = [], []
    for line in assoc.splitlines():
        fields = line.split("|")
        if len(fields) < 3 or not fields[0]:
            continue
        where = f" (partition {fields[1]})" if fields[1] else ""
        parts.append(f"account {fields[0]}{where}: {_set(ASSOC_FIELDS, fields[3:])}")
        used += [q for q in fields[2].split(",") if q and q not in used]
    if not parts:
        parts.append("no association for this user (sacctmgr shows none)")
    for line in qos.splitlines():
        fields = line.split("|")
        if fields[0] in used:
            parts.append(f"QOS {fields[0]}: {_set(QOS_FIELDS, fields[1:])}")
    settings = dict(line.split("=", 1) for line in config.splitlines() if "=" in line)
    settings = {k.strip(): v.strip() for k, v in settings.items()}
    limits = [f"{k}={settings[k]}" for k in ("MaxArraySize", "MaxJobCount") if k in settings]
    return "; ".join([*parts, ", ".join(limits) or "MaxArraySize unknown"])


def slurm_limits(probe: Probe, where: str) -> str:
    """What doctor can read of the user's Slurm limits; never a failure (a cluster without
    slurmdbd has no associations to show)."""
    assoc = probe.run(ASSOC_QUERY, where, QUERY_SECONDS)
    config = probe.run(CONFIG_QUERY, where, QUERY_SECONDS)
    qos = probe.run(QOS_QUERY, where, QUERY_SECONDS) if assoc.ok else None
    text = parse_slurm_limits(assoc.stdout if assoc.ok else "",
                              qos.stdout if qos is not None and qos.ok else "",
                              config.stdout if config.ok else "")
    if not assoc.ok:
        text = text.replace("no association for this user (sacctmgr shows none)",
                            f"associations unreadable ({first_said(assoc)})")
    return f"limits: {text}"


def _not_ours(target: Target, command: str, title: str, other: str, line: str) -> str:
    """The scheduler's command on PATH belongs to another scheduler's tools."""
    theirs = _family(other)
    head = (f"the {command} on {target.where} is {theirs.title if theirs else other}'s "
            f"({line}), not {title}'s")
    ours = FAMILIES.get(other)
    if target.scheduler_key and ours and not (target.batch_type and not ours.batch_type):
        value = ours.batch_type if target.batch_type else other
        return (f"{head}: if the cluster runs {ours.title}, set {target.scheduler_key} = "
                f"\"{value}\"; else put {title}'s {command} first on PATH" + FOR_SHELLS)
    if ours:
        return (f"{head}: this machine's {ours.title} is checked as {other}; for {title}, put "
                f"its {command} first on PATH" + FOR_SHELLS)
    return f"{head}: hpcflow does not drive {theirs.title if theirs else other}"


def _failure(target: Target, argv: list[str] | tuple[str, ...], done: Any,
             family: Family | None, title: str, seconds: int = PROBE_SECONDS) -> str:
    """Why a scheduler's command failed, and what to do, in one line."""
    shown = shown_command(argv)
    cause = _cause(family, argv, done, target.where)
    if cause:
        return cause
    if done.returncode == TIMED_OUT:
        return (f"'{shown}' did not answer within {seconds} s on {target.where} "
                f"({first_said(done)})")
    return (f"'{shown}' fails on {target.where} ({first_said(done)}): check that the {title} "
            "client tools work there, for non-interactive shells too")


def these_schedulers(config: Any) -> tuple[list[str], list[str], Probe]:
    """The schedulers of this machine worth checking (their command is on PATH and is
    theirs), and those not looked at, each with why; the probe that found out (its answers
    are kept)."""
    from hpcflow.connectors.plugins import scheduler
    from hpcflow.connectors.transports.local import LocalTransport

    probe = Probe(LocalTransport())
    found: list[str] = []
    skipped: list[str] = []
    for name in sorted(n for n, m in config.machines.items() if m.implicit):
        probes = scheduler(name).probes
        if not probes:
            skipped.append(f"{name} (no command to look for)")
            continue
        command = probes[0][0]
        path = probe.path_of(command, "this machine")
        if path is None:
            skipped.append(f"{name} (no {command} on PATH)")
            continue
        owner = _owner(probe, probes[0], name, "this machine")
        if owner and owner[0] != name:
            theirs = _family(owner[0])
            skipped.append(f"{name} (the {command} on PATH is "
                           f"{theirs.title if theirs else owner[0]}'s: {owner[1]})")
            continue
        found.append(f"{name} ({path})")
    return found, skipped, probe
