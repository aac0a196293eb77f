"""What /proc says about a process: peak and current RSS, CPU time, children; and the daemon
of an ``$HPCFLOW_HOME`` with its fork server (for benchmarks/workflows.py and scaling.py).

Only the standard library: workflows.py imports this in the hpcflow run alone, after the
workflow ended and before the daemon stops.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def status_kib(pid: int, key: str) -> int | None:
    """A ``kB`` field of ``/proc/PID/status`` (``VmHWM``: peak RSS, ``VmRSS``: RSS now)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces: the fields after it follow the last ')'
    return text[text.rindex(")") + 2:].split()


def cpu_seconds(pid: int) -> tuple[float, float] | None:
    """(utime + stime, cutime + cstime) in seconds: the process's own CPU time, and that of
    its children it has reaped."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    # fields 14-17 of stat; here counted from field 3 (state) as index 0
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return (utime + stime) / TICK, (cutime + cstime) / TICK


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None and fields[1] == str(pid):
            found.append(int(entry.name))
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != "Z"


def daemon_pid(home: Path) -> int | None:
    """The pid in ``HOME/daemon.json`` (keys: pid, started_at, version, home, updated_at,
    last_poll...), if that process still runs."""
    try:
        pid = int(json.loads((home / "daemon.json").read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return pid if alive(pid) else None


def process_figures(pid: int) -> dict:
    cpu = cpu_seconds(pid)
    return {"pid": pid, "peak_rss_kib": status_kib(pid, "VmHWM"),
            "rss_kib": status_kib(pid, "VmRSS"),
            "cpu_seconds": None if cpu is None else round(cpu[0], 2),
            "reaped_children_cpu_seconds": None if cpu is None else round(cpu[1], 2)}


def daemon_snapshot(home: Path, pid: int | None = None) -> dict:
    """The daemon's figures and its fork server's (its child running ``...forkserver``,
    whose reaped children are the steps), read while both still run; {} without a daemon.
    ``pid``: the daemon's, when known otherwise (else read from ``daemon.json``)."""
    pid = pid or daemon_pid(home)
    if pid is None or not alive(pid):
        return {}
    found = {"daemon": process_figures(pid)}
    for child in children_of(pid):
        if "forkserver" in cmdline(child):
            found["forkserver"] = process_figures(child)
    return found
