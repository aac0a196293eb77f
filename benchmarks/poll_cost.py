"""The daemon's CPU time per poll cycle with many jobs live on the real Slurm (issue 15,
point 4: a poll cycle's daemon CPU time should be O(live jobs) with a small constant).

For each size N (``--sizes``, default 250,500,1000) this

1. makes a fresh ``$HPCFLOW_HOME`` (0700) whose config polls the ``slurm`` machine every
   second (``min_poll_interval = max_poll_interval = 1``), lets it queue N jobs
   (``max_jobs``, 500 unless raised) and logs at debug level, puts a ``squeue`` wrapper
   first on the daemon's PATH (it appends its arguments to a file with the shell's
   builtin ``printf``, then ``exec``s the real one: no extra process), starts
   the daemon with ``hpcflow daemon start`` and submits one workflow of N steps
   (``with_param=argo_range(N)``), each its own Slurm job submitted with ``--hold``: they
   stay queued, so N jobs stay live for as long as the benchmark wants;
2. waits (while the submissions progress) until Slurm queues the N jobs, then until the
   daemon's log says ``polled slurm: N live jobs`` and a few more polls have gone by (the
   jobs' first sight as queued is written to the store once, not every poll);
3. measures a window of K polls (``--polls``), from just after one poll to just after the
   K-th poll after it (each end waits until the daemon's CPU time stops moving, so both ends
   are at the same point of a cycle): the daemon's own CPU time (``utime + stime`` of
   ``/proc/PID/stat``, PID from ``$HPCFLOW_HOME/daemon.json``'s ``pid``) and, separately,
   that of the children it reaped (``cutime + cstime``: the ``squeue`` runs), each divided
   by the polls the log shows in the window; the wall time per poll is the span between the
   window's first and last poll lines (log time stamps) over K;
4. terminates the workflow (``hpcflow terminate``: the daemon scancels the jobs), waits
   until ``squeue --me`` shows none of its jobs, stops the daemon, and (unless
   ``--no-purge-wait``, or after the last size) waits until Slurm forgets the cancelled
   jobs (``MinJobAge``), so that the next size's ``squeue --states=all`` (the daemon's
   poll) lists only its own jobs (and whatever other users of this Slurm left).

Per size one JSON line (``"measure": "poll_cost"``); then the ratio of the daemon's CPU per
poll between the largest and the smallest size, with a least-squares line
``cpu_ms = fixed_ms + per_job_us * N / 1000``; then, for the largest size (unless
``--no-profile``), a py-spy profile of the daemon during the held phase (``py-spy record
-r 100 -f raw --nonblocking``: see run_profile; idle threads are left out, so the samples
are the daemon's time on CPU), whose raw stacks are collapsed here into the functions with
the largest inclusive share; last a Markdown table.

CPU time is in clock ticks (``SC_CLK_TCK``, usually 100 per second: 10 ms): over K polls one
tick is 10/K ms per poll, which the JSON gives as ``tick_ms_per_poll``. Other processes on
the machine do not change CPU time much, only wall time; the load average is recorded.

Usage: .venv/bin/python benchmarks/poll_cost.py [--sizes 250,500,1000] [--polls 20]
       [--profile-seconds 20] [--no-profile] [--no-purge-wait] [--keep]
(source the services' env file first: ``squeue`` must reach the test Slurm).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PY_SPY = Path(sys.executable).parent / "py-spy"
CLK_TCK = os.sysconf("SC_CLK_TCK")
CLI = [sys.executable, "-m", "hpcflow.cli.main"]
#: The daemon's poll of Slurm as the wrapper logs its arguments (see SlurmScheduler.poll_argv).
POLL_ARGS = "--me --noheader --states=all --format=%i|%j|%T|%r"
POLL_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \S+ "
                       r"polled slurm: (\d+) live jobs, (\d+) ended")

#: ``max_jobs`` (the machine's queue limit, 500 by default) is raised to the size measured.
CONFIG = ("[daemon]\nlog_level = 'debug'\n"
          "[machines.slurm]\nscheduler = 'slurm'\n"
          "min_poll_interval = 1\nmax_poll_interval = 1\nmax_jobs = NJOBS\n")

WORKFLOW = '''
from hpcflow import Step, Workflow, SlurmExecutor, argo_range
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def never(x: int) -> {"y": int}:
    return {"y": x}

wf = Workflow("poll-cost-NJOBS")
wf.add(Step("held", PythonOPTemplate(never), parameters={"x": "{{item}}"},
            with_param=argo_range(NJOBS),
            executor=SlurmExecutor(partition="debug", extra_directives=["--hold"])))
wf.submit()
'''


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def note(text: str) -> None:
    print(f"# {text}", file=sys.stderr, flush=True)


# -- /proc ------------------------------------------------------------------------------
def cpu_ticks(pid: int) -> tuple[int, int] | None:
    """(utime + stime, cutime + cstime) of ``pid`` in clock ticks; None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # from field 3 (state) on
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return utime + stime, cutime + cstime


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


# -- waiting ----------------------------------------------------------------------------
def wait_for(check: Callable[[], Any], what: str, timeout: float = 300.0,
             interval: float = 0.5, progress: Callable[[], Any] | None = None,
             stall: float = 180.0) -> Any:
    """Call ``check`` until it returns something true. Gives up after ``timeout`` seconds,
    or, with ``progress``, once its value has not changed for ``stall`` seconds (and the
    timeout is then only a cap)."""
    start = last_change = time.monotonic()
    seen = progress() if progress else None
    while True:
        result = check()
        if result:
            return result
        now = time.monotonic()
        if progress is not None:
            value = progress()
            if value != seen:
                seen, last_change = value, now
            if now - last_change > stall:
                raise TimeoutError(f"{what}: no progress for {stall:.0f} s (at {seen!r})")
        if now - start > timeout:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(interval)


class PollLog:
    """The daemon log's ``polled slurm`` lines, read incrementally (and again from the
    start of a new file after the log rotates): ``polls`` holds (time, live, ended)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.inode: int | None = None
        self.rest = b""
        self.polls: list[tuple[float, int, int]] = []

    def update(self) -> int:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return len(self.polls)
        if st.st_ino != self.inode or st.st_size < self.offset:
            self.inode, self.offset, self.rest = st.st_ino, 0, b""
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        lines = (self.rest + data).split(b"\n")
        self.rest = lines.pop()
        for line in lines:
            match = POLL_LINE.match(line.decode(errors="replace"))
            if match:
                stamp = datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
                self.polls.append((stamp, int(match[2]), int(match[3])))
        return len(self.polls)


# -- Slurm ------------------------------------------------------------------------------
def squeue_names(all_states: bool = False) -> list[str]:
    argv = ["squeue", "--me", "-h", "-o", "%j"] + (["--states=all"] if all_states else [])
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"squeue failed: {done.stderr.strip()}")
    return done.stdout.splitlines()


def jobs_of(wf_id: str, all_states: bool = False) -> int:
    return sum(1 for name in squeue_names(all_states) if name.startswith(f"hpcflow-{wf_id}-"))


def slurm_limits() -> dict:
    text = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True,
                          check=True).stdout
    found: dict[str, Any] = {}
    for key in ("MaxJobCount", "MaxArraySize", "MinJobAge", "SchedulerParameters"):
        match = re.search(rf"^{key}\s*=\s*(.*)$", text, re.M)
        found[key] = match[1].strip() if match else None
    found["queued_now"] = len(squeue_names(all_states=True))
    return found


# -- one size ---------------------------------------------------------------------------
def squeue_wrapper(directory: Path) -> Path:
    """A ``squeue`` on the daemon's PATH that appends its arguments to ``calls.txt`` with
    the shell's builtin printf (one write, no child) and becomes the real one."""
    real = shutil.which("squeue")
    if real is None:
        raise SystemExit("squeue is not on PATH: source the services' env file first")
    calls = directory / "calls.txt"
    bin_dir = directory / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "squeue"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {calls}\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    return calls


def poll_calls(calls: Path) -> int:
    try:
        return sum(1 for line in calls.read_text().splitlines() if line == POLL_ARGS)
    except FileNotFoundError:
        return 0


def quiet(pid: int, most: float = 1.0) -> tuple[int, int]:
    """The daemon's CPU ticks once they stop moving for 50 ms (it sleeps until its next
    poll), or after ``most`` seconds."""
    end = time.monotonic() + most
    last = cpu_ticks(pid)
    while True:
        time.sleep(0.05)
        now = cpu_ticks(pid)
        if now is None or last is None:
            raise RuntimeError(f"the daemon (pid {pid}) is gone")
        if now == last or time.monotonic() > end:
            return now
        last = now


def next_poll(log: PollLog, pid: int, after: int, timeout: float = 120.0) -> tuple[int, int]:
    """Waits until the log has more than ``after`` polls, then for the daemon to go quiet."""
    wait_for(lambda: log.update() > after, f"poll {after + 1}", timeout, interval=0.02)
    return quiet(pid)


def measure(log: PollLog, pid: int, calls: Path, n: int, polls: int) -> dict:
    start = next_poll(log, pid, log.update())
    first, calls0, load0 = len(log.polls), poll_calls(calls), loadavg()
    end = next_poll(log, pid, first + polls - 1, timeout=60.0 + 30.0 * polls)
    last = len(log.polls)
    seen = log.polls[first - 1:last]  # the poll just before the window, then the window's
    counted = last - first
    daemon_ms = (end[0] - start[0]) * 1000 / CLK_TCK / counted
    squeue_ms = (end[1] - start[1]) * 1000 / CLK_TCK / counted
    return {"measure": "poll_cost", "live_jobs": n, "polls": counted,
            "live_in_log": sorted({p[1] for p in seen[1:]}),
            "ended_in_log": sum(p[2] for p in seen[1:]),
            "squeue_calls": poll_calls(calls) - calls0,
            "squeue_lines": len(squeue_names(all_states=True)),
            "daemon_cpu_ms_per_poll": round(daemon_ms, 2),
            "daemon_cpu_us_per_job": round(daemon_ms * 1000 / n, 2),
            "squeue_cpu_ms_per_poll": round(squeue_ms, 2),
            "wall_s_per_poll": round((seen[-1][0] - seen[0][0]) / counted, 3),
            "tick_ms_per_poll": round(1000 / CLK_TCK / counted, 2),
            "loadavg": [load0, loadavg()]}


def run_size(n: int, args: argparse.Namespace, work: Path, profile: bool,
             purge: bool) -> dict:
    requested = n
    base = work / f"n{n}"
    base.mkdir()
    home = base / "home"
    home.mkdir(mode=0o700)
    (home / "config.toml").write_text(CONFIG.replace("NJOBS", str(max(n, 500))))
    calls = squeue_wrapper(base)
    env = dict(os.environ, HPCFLOW_HOME=str(home),
               PATH=f"{base / 'bin'}{os.pathsep}{os.environ['PATH']}")
    script = base / "held.py"
    script.write_text(WORKFLOW.replace("NJOBS", str(n)))

    def cli(*argv: str, check: bool = True) -> str:
        done = subprocess.run([*CLI, *argv], env=env, cwd=base, capture_output=True, text=True)
        if check and done.returncode != 0:
            raise RuntimeError(f"hpcflow {' '.join(argv)}: {done.stderr.strip()[-500:]}")
        return done.stdout.strip()

    cli("daemon", "start")
    wf_id = ""
    try:
        pid = int(wait_for(lambda: (json.loads((home / "daemon.json").read_text())
                                    if (home / "daemon.json").exists() else {}).get("pid"),
                           "daemon.json with the daemon's pid", 60))
        began = time.monotonic()
        wf_id = cli("submit", str(script))
        note(f"N={n}: workflow {wf_id}, daemon pid {pid}, home {home}")
        try:
            wait_for(lambda: jobs_of(wf_id) >= n, f"{n} jobs of {wf_id} queued",
                     args.deadline, interval=2.0, progress=lambda: jobs_of(wf_id))
        except TimeoutError as exc:  # measured with as many as Slurm took
            queued = jobs_of(wf_id)
            if not queued:
                raise
            note(f"N={n}: {exc}; measuring with the {queued} jobs queued")
            n = queued
        queued_s = time.monotonic() - began
        log = PollLog(home / "logs" / "daemon.log")
        wait_for(lambda: log.update() and log.polls[-1][1] == n,
                 f"a poll of {n} live jobs", 600, interval=0.2)
        settled = log.update()
        wait_for(lambda: log.update() >= settled + args.settle, "settling polls", 300)
        note(f"N={n}: {n} jobs queued in {queued_s:.0f} s; measuring {args.polls} polls")
        result = measure(log, pid, calls, n, args.polls)
        result["requested"] = requested
        result["submit_to_queued_s"] = round(queued_s, 1)
        emit(result)
        if profile:
            result["profile"] = run_profile(pid, log, base, args.profile_seconds,
                                            args.profile_out)
    finally:
        cleanup(cli, wf_id, purge)
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    return result


def cleanup(cli: Callable[..., str], wf_id: str, purge: bool) -> None:
    try:
        if wf_id:
            cli("terminate", wf_id, check=False)
            wait_for(lambda: jobs_of(wf_id) == 0, f"the jobs of {wf_id} cancelled", 600,
                     interval=1.0, progress=lambda: jobs_of(wf_id))
    finally:
        cli("daemon", "stop", check=False)
    if wf_id and purge:
        note(f"waiting for Slurm to forget the cancelled jobs of {wf_id} (MinJobAge)")
        wait_for(lambda: jobs_of(wf_id, all_states=True) == 0,
                 f"the cancelled jobs of {wf_id} purged", 1200, interval=5.0)


# -- py-spy -----------------------------------------------------------------------------
def run_profile(pid: int, log: PollLog, base: Path, seconds: float, keep_as: str) -> dict:
    out = base / "py-spy.raw"
    polls0 = log.update()
    # --nonblocking: sampled while the daemon runs. Paused for each sample (py-spy's
    # default), threads blocked in a wait (the wake directory's inotify watch, the main
    # loop's sleep) were counted as active: two thirds of the samples of a test run.
    done = subprocess.run([str(PY_SPY), "record", "-r", "100", "-f", "raw", "-o", str(out),
                           "--pid", str(pid), "--duration", str(int(seconds)),
                           "--nonblocking"],
                          capture_output=True, text=True)
    polls = log.update() - polls0
    if done.returncode != 0 or not out.exists():
        note(f"py-spy failed: {(done.stderr or done.stdout).strip()[-400:]}")
        return {}
    kept = Path(keep_as)
    with contextlib.suppress(OSError):
        shutil.copyfile(out, kept)
    summary = collapse(out.read_text(), polls)
    summary["raw_file"] = str(kept)
    emit({"measure": "poll_cost_profile", "live_jobs": log.polls[-1][1],
          "seconds": seconds, **summary})
    return summary


def _frame(frame: str) -> str:
    """``func (path:line)`` -> ``func (short path)``: one entry per function."""
    match = re.match(r"^(.*) \((.*?)(?::\d+)?\)$", frame)
    if not match:
        return frame
    func, path = match[1], match[2]
    for marker in ("site-packages/", "/lib/python3", str(REPO) + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{func} ({path})"


def collapse(raw: str, polls: int, top: int = 25) -> dict:
    """Inclusive (the function anywhere in the stack, counted once per stack) and self
    (the innermost frame) sample counts per function, from py-spy's raw output: one line
    per distinct stack, ``frame;frame;...;frame COUNT``, outermost first."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_frame(f) for f in stack.split(";")]
        total += int(count)
        for name in set(frames):
            inclusive[name] += int(count)
        own[frames[-1]] += int(count)

    def share(counter: Counter[str]) -> list[dict]:
        return [{"function": name, "samples": count, "share": round(count / total, 3),
                 "self_samples": own[name]} for name, count in counter.most_common(top)]

    return {"samples": total, "polls": polls,
            "cycle_share": round(inclusive["Service.cycle (daemon/service.py)"] / total, 3)
            if total else None,
            "samples_per_poll": round(total / polls, 1) if polls else None,
            "top_inclusive": share(inclusive) if total else [],
            "top_self": [{"function": n, "samples": c, "share": round(c / total, 3)}
                         for n, c in own.most_common(10)] if total else []}


# -- report -----------------------------------------------------------------------------
def fit(results: list[dict]) -> dict:
    """Least squares ``cpu_ms = fixed_ms + per_job_us * N / 1000`` over the sizes."""
    xs = [r["live_jobs"] for r in results]
    ys = [r["daemon_cpu_ms_per_poll"] for r in results]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx else 0.0
    return {"fixed_ms": round(my - slope * mx, 2), "per_job_us": round(slope * 1000, 2)}


#: Frames every stack of a thread has (left out of the Markdown table, not of the JSON).
WRAPPERS = re.compile(r"^(Thread\._bootstrap|_run_module_as_main|_run_code|<module> \(daemon/"
                      r"|main \(daemon/process|Thread\.run )")


def table(results: list[dict], summary: dict | None) -> str:
    rows = ["| live jobs | polls | daemon CPU ms/poll | daemon CPU µs/job | squeue CPU ms/poll "
            "| wall s/poll | squeue calls |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        rows.append(f"| {r['live_jobs']} | {r['polls']} | {r['daemon_cpu_ms_per_poll']:.1f} "
                    f"| {r['daemon_cpu_us_per_job']:.1f} | {r['squeue_cpu_ms_per_poll']:.1f} "
                    f"| {r['wall_s_per_poll']:.3f} | {r['squeue_calls']} |")
    if summary:
        rows.append("")
        rows.append(f"Daemon CPU per poll, {summary['to']} vs {summary['from']} live jobs: "
                    f"{summary['daemon_cpu_ratio']}x (jobs {summary['size_ratio']}x); "
                    f"fit: {summary['fixed_ms']} ms + {summary['per_job_us']} µs per job.")
    profiles = [r for r in results if r.get("profile")]
    for r in profiles:
        p = r["profile"]
        rows += ["", f"py-spy, {r['live_jobs']} live jobs: {p['samples']} samples on CPU over "
                 f"{p['polls']} polls ({p['samples_per_poll']} per poll at 100 Hz)", "",
                 "| function | inclusive | self |", "| --- | ---: | ---: |"]
        for f in [f for f in p["top_inclusive"] if not WRAPPERS.search(f["function"])][:15]:
            rows.append(f"| `{f['function']}` | {f['share']:.1%} | "
                        f"{f['self_samples'] / p['samples']:.1%} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="250,500,1000",
                        help="live held jobs per run, comma-separated")
    parser.add_argument("--polls", type=int, default=20, help="polls measured per size")
    parser.add_argument("--settle", type=int, default=3,
                        help="polls of N live jobs let go by before measuring")
    parser.add_argument("--deadline", type=float, default=3600.0,
                        help="cap, in seconds, on queueing the N jobs (while they progress)")
    parser.add_argument("--profile-seconds", type=float, default=20.0)
    parser.add_argument("--profile-out", default="/tmp/poll_cost_py-spy.raw",
                        help="where py-spy's raw stacks are kept")
    parser.add_argument("--no-profile", dest="profile", action="store_false",
                        help="no py-spy profile of the largest size")
    parser.add_argument("--no-purge-wait", dest="purge_wait", action="store_false",
                        help="do not wait for Slurm to forget each size's cancelled jobs")
    parser.add_argument("--keep", action="store_true", help="keep the homes and logs")
    args = parser.parse_args(argv)
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})

    # a run before this one (an interrupted one too) left jobs Slurm still lists
    note_once = [True]

    def leftovers() -> int:
        left = sum(1 for name in squeue_names(all_states=True)
                   if name.startswith("hpcflow-poll-cost-"))
        if left and note_once[0]:
            note(f"waiting for Slurm to forget {left} jobs of an earlier run (MinJobAge)")
            note_once[0] = False
        return left

    wait_for(lambda: leftovers() == 0, "earlier runs' jobs purged", 1200, interval=5.0)
    limits = slurm_limits()
    emit({"measure": "slurm_config", **limits})
    room = int(limits["MaxJobCount"] or 0) - limits["queued_now"]
    if limits["MaxJobCount"] and max(sizes) > room:
        note(f"MaxJobCount={limits['MaxJobCount']} with {limits['queued_now']} jobs known: "
             f"sizes above {room} dropped")
        sizes = [s for s in sizes if s <= room] or [room]
    if PY_SPY.exists() is False and args.profile:
        note(f"no py-spy at {PY_SPY}: no profile")
        args.profile = False

    work = Path(tempfile.mkdtemp(prefix="hpcflow-poll-cost-"))
    results = []
    try:
        for n in sizes:
            last = n == sizes[-1]
            results.append(run_size(n, args, work, profile=args.profile and last,
                                    purge=args.purge_wait and not last))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    summary = None
    if len(results) >= 2:
        small, large = results[0], results[-1]
        summary = {"measure": "poll_cost_ratio", "from": small["live_jobs"],
                   "to": large["live_jobs"],
                   "size_ratio": round(large["live_jobs"] / small["live_jobs"], 2),
                   "daemon_cpu_ratio": round(large["daemon_cpu_ms_per_poll"]
                                             / small["daemon_cpu_ms_per_poll"], 2)
                   if small["daemon_cpu_ms_per_poll"] else None,
                   "squeue_cpu_ratio": round(large["squeue_cpu_ms_per_poll"]
                                             / small["squeue_cpu_ms_per_poll"], 2)
                   if small["squeue_cpu_ms_per_poll"] else None,
                   **fit(results)}
        emit(summary)
    print()
    print(table(results, summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
