"""How much CPU a started daemon with no work uses while idle.

A daemon runs all the time on a login node, where CPU is shared and is often counted
against the user, so an idle daemon should cost next to nothing: the target is below 1% of
one core. This starts a daemon with ``hpcflow daemon start`` in a fresh, empty
``$HPCFLOW_HOME``, lets start-up settle, then reads the CPU time of the daemon and of all
its descendant processes (e.g. the fork server) from ``/proc/PID/stat`` at the start and
at the end of a window, and prints CPU seconds / wall seconds as a percentage of one core.

For a floor measured the same way in the same run, a ``sleep 1000`` process is sampled over
the same window. Wake-ups are counted as voluntary context switches (``/proc/PID/task/*/
status``), summed over all threads, and listed per thread for the daemon, so that a thread
that wakes too often can be named.

CPU time is read in clock ticks (``SC_CLK_TCK``, usually 100 per second): over the default
30 s window one tick is 0.03% of a core. Each process counts ``utime + stime`` plus
``cutime + cstime`` (the time of children it has reaped), so short-lived children that
start and exit within the window are counted too.

Nothing is asserted: the figures and whether the target is met are printed, and the exit
status is 0. The daemon is always stopped (``hpcflow daemon stop``) and the temporary home
removed, also on an error or Ctrl-C.

Usage: python benchmarks/idle_cpu.py [--seconds 30] [--settle 3]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

TARGET_PERCENT = 1.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat_fields(path: Path) -> list[str] | None:
    """The fields of a ``/proc/.../stat`` file from field 3 (state) on, or None if gone.

    The command name (field 2) is in parentheses and may hold spaces or parentheses, so
    the line is split after its last ``)``."""
    try:
        text = path.read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()


def _ppid_map() -> dict[int, int]:
    """pid -> parent pid for every process in /proc."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(Path("/proc", entry, "stat"))
            if fields is not None:
                parents[int(entry)] = int(fields[1])
    return parents


def process_tree(root: int) -> list[int]:
    """``root`` and all its live descendants."""
    children: dict[int, list[int]] = {}
    for pid, ppid in _ppid_map().items():
        children.setdefault(ppid, []).append(pid)
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def _cpu_ticks(pid: int) -> int | None:
    """utime + stime + cutime + cstime (fields 14-17) of a process, in clock ticks."""
    fields = _stat_fields(Path("/proc", str(pid), "stat"))
    if fields is None:
        return None
    # fields[0] is field 3 of stat, so field N is fields[N - 3].
    return sum(int(fields[n - 3]) for n in (14, 15, 16, 17))


def _voluntary_switches(task_status: Path) -> int:
    try:
        for line in task_status.read_text().splitlines():
            if line.startswith("voluntary_ctxt_switches:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class Sample:
    """CPU ticks and wake-ups of a process tree at one moment."""

    at: float
    ticks: int = 0
    processes: list[int] = field(default_factory=list)
    # (pid, tid) -> (thread name, voluntary context switches, CPU ticks of the thread)
    threads: dict[tuple[int, int], tuple[str, int, int]] = field(default_factory=dict)

    @property
    def wakeups(self) -> int:
        return sum(switches for _, switches, _ in self.threads.values())


def sample(root: int) -> Sample:
    """CPU ticks of ``root`` and its descendants, and each of their threads' wake-ups."""
    result = Sample(at=time.monotonic())
    for pid in process_tree(root):
        ticks = _cpu_ticks(pid)
        if ticks is None:
            continue
        result.ticks += ticks
        result.processes.append(pid)
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            task = Path("/proc", str(pid), "task", tid)
            try:
                name = (task / "comm").read_text().strip()
            except OSError:
                continue
            fields = _stat_fields(task / "stat")
            thread_ticks = int(fields[11]) + int(fields[12]) if fields else 0
            result.threads[(pid, int(tid))] = (name, _voluntary_switches(task / "status"),
                                               thread_ticks)
    return result


@dataclass
class Usage:
    """What a process tree used between two samples."""

    label: str
    wall_s: float
    cpu_s: float
    wakeups: int
    processes: int

    @property
    def percent(self) -> float:
        return 100.0 * self.cpu_s / self.wall_s

    def line(self) -> str:
        return (f"{self.label:<28} {self.percent:6.3f}% of a core  "
                f"({self.cpu_s:.2f} CPU s in {self.wall_s:.1f} s; "
                f"{self.wakeups} wake-ups = {self.wakeups / self.wall_s:.1f}/s; "
                f"{self.processes} process{'es' if self.processes != 1 else ''})")


def usage(label: str, before: Sample, after: Sample) -> Usage:
    wakeups = sum(switches - before.threads.get(key, ("", 0, 0))[1]
                  for key, (_, switches, _) in after.threads.items())
    return Usage(label=label, wall_s=after.at - before.at,
                 cpu_s=(after.ticks - before.ticks) / CLK_TCK, wakeups=wakeups,
                 processes=len(set(before.processes) | set(after.processes)))


def thread_lines(before: Sample, after: Sample, wall_s: float) -> list[str]:
    """One line per thread that woke or used CPU in the window, busiest first."""
    rows = []
    for key, (name, switches, ticks) in after.threads.items():
        _, switches0, ticks0 = before.threads.get(key, (name, 0, 0))
        if switches - switches0 or ticks - ticks0:
            rows.append((switches - switches0, ticks - ticks0, key, name))
    rows.sort(reverse=True)
    return [f"    pid {pid} tid {tid} {name!r}: {woke} wake-ups ({woke / wall_s:.2f}/s), "
            f"{used / CLK_TCK:.2f} CPU s"
            for woke, used, (pid, tid), name in rows]


def hpcflow(env: dict[str, str], *args: str, timeout: float = 60) -> None:
    """Run ``hpcflow ARGS`` (as ``python -m hpcflow.cli.main``) and echo what it prints."""
    proc = subprocess.run([sys.executable, "-m", "hpcflow.cli.main", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)
    for line in (proc.stdout + proc.stderr).splitlines():
        print(f"  [{' '.join(args)}] {line}")
    if proc.returncode != 0:
        raise RuntimeError(f"'hpcflow {' '.join(args)}' exited with {proc.returncode}")


def measure(home: Path, env: dict[str, str], settle_s: float, window_s: float) -> None:
    from hpcflow.daemon.engine import engine_pid

    hpcflow(env, "daemon", "start")
    pid = engine_pid(home)
    if pid is None or pid < 0:
        raise RuntimeError(f"no daemon pid for {home} after 'hpcflow daemon start'")
    floor = subprocess.Popen(["sleep", "1000"])
    try:
        print(f"daemon pid {pid}, 'sleep 1000' pid {floor.pid}; settling {settle_s:g} s, "
              f"then measuring {window_s:g} s (clock tick {1000 / CLK_TCK:g} ms)")
        time.sleep(settle_s)
        daemon0, floor0 = sample(pid), sample(floor.pid)
        time.sleep(window_s)
        daemon1, floor1 = sample(pid), sample(floor.pid)
    finally:
        floor.kill()
        floor.wait()
    if engine_pid(home) != pid:
        print(f"warning: the daemon (pid {pid}) is no longer running at the end of the window")
    daemon_use = usage("idle daemon (+descendants)", daemon0, daemon1)
    floor_use = usage("sleep 1000 (floor)", floor0, floor1)
    print(daemon_use.line())
    print(floor_use.line())
    print("  daemon threads that woke or used CPU in the window:")
    for line in thread_lines(daemon0, daemon1, daemon_use.wall_s) or ["    none"]:
        print(line)
    met = daemon_use.percent < TARGET_PERCENT
    print(f"target: below {TARGET_PERCENT:g}% of a core -> "
          f"{'met' if met else 'NOT met'} ({daemon_use.percent:.3f}%)")


def stop(home: Path, env: dict[str, str]) -> None:
    """``hpcflow daemon stop``; SIGTERM the daemon's pid if that failed."""
    from hpcflow.daemon.engine import engine_pid

    try:
        hpcflow(env, "daemon", "stop")
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"warning: {exc}", file=sys.stderr)
    pid = engine_pid(home) if home.exists() else None
    if pid is not None and pid > 0:
        print(f"warning: the daemon (pid {pid}) still runs; sending SIGTERM", file=sys.stderr)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0,
                        help="length of the measured window (default 30)")
    parser.add_argument("--settle", type=float, default=3.0,
                        help="seconds to wait after start-up before measuring (default 3)")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="hpcflow-bench-idle-"))
    os.chmod(home, 0o700)
    env = dict(os.environ, HPCFLOW_HOME=str(home))
    try:
        measure(home, env, args.settle, args.seconds)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
    except Exception as exc:  # report, never fail: this is a benchmark, not a test
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
    finally:
        try:
            stop(home, env)
        finally:
            shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
