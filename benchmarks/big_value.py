"""What a big parameter costs: the daemon's peak memory, the store's size, the step directories.

A workflow of two steps runs on the local executor in a fresh ``$HPCFLOW_HOME``: ``make``
returns a string of ``--mb`` megabytes (random hex, so nothing compresses it away) as an
output parameter, and ``size`` takes it as an input parameter and returns its length (with
``--constant``, ``size`` alone runs, given the string as a constant by the script). The
script then reports:

- the daemon's peak resident memory (``VmHWM`` of ``/proc/PID/status``, read while it still
  runs, after the workflow ended; the steps themselves run in other processes);
- the store's size: ``store.db`` and its ``-wal`` file right after the workflow ended, and
  again after ``hpcflow daemon stop`` (which checkpoints);
- each step directory's size on disk, and the largest files in it;
- ``hpcflow steps WF --json``: the bytes it prints and its own peak memory (``wait4``), and
  the same with ``--values`` when this hpcflow has that option.

Nothing is asserted (a benchmark, not a test); the exit status is 0 and the home is removed.

Usage: python benchmarks/big_value.py [--mb 100] [--constant] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCRIPT = '''
import os
from hpcflow import Step, Workflow
from hpcflow.python import OP, PythonOPTemplate


@OP.function
def make(n: int) -> {"blob": str}:
    return {"blob": os.urandom(n // 2).hex()}


@OP.function
def size(blob: str) -> {"n": int}:
    return {"n": len(blob)}


wf = Workflow(name="big-value")
first = Step("make", PythonOPTemplate(make), parameters={"n": %d})
second = Step("size", PythonOPTemplate(size), parameters={"blob": first.outputs.parameters["blob"]})
wf.add(first)
wf.add(second)
wf.submit()
'''

CONSTANT = SCRIPT.split("wf = Workflow")[0] + '''
wf = Workflow(name="big-constant")
wf.add(Step("size", PythonOPTemplate(size), parameters={"blob": os.urandom(%d // 2).hex()}))
wf.submit()
'''

MB = 1 << 20


def run(env: dict[str, str], *args: str) -> tuple[str, str, int, int]:
    """``hpcflow ARGS``: (stdout, stderr, exit status, peak RSS in KiB, from wait4)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, "-m", "hpcflow.cli.main", *args], env=env,
                                stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return (out.read().decode(errors="replace"), err.read().decode(errors="replace"),
                proc.returncode, usage.ru_maxrss)


def peak_rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def phase_of(home: Path, wf_id: str) -> str | None:
    conn = sqlite3.connect(f"file:{home / 'store.db'}?mode=ro", uri=True, timeout=30)
    try:
        row = conn.execute("SELECT phase FROM workflows WHERE id=?", (wf_id,)).fetchone()
        return row[0] if row else None
    finally:
        conn.close()


def store_sizes(home: Path) -> str:
    parts = []
    for suffix in ("", "-wal"):
        path = home / f"store.db{suffix}"
        size = path.stat().st_size if path.exists() else 0
        parts.append(f"store.db{suffix} {size / MB:.1f} MiB")
    return ", ".join(parts)


def tree_size(folder: Path) -> tuple[int, list[tuple[int, str]]]:
    files = [(p.stat().st_size, str(p.relative_to(folder))) for p in folder.rglob("*")
             if p.is_file()]
    return sum(s for s, _ in files), sorted(files, reverse=True)[:3]


def measure(home: Path, env: dict[str, str], mb: int, constant: bool) -> None:
    from hpcflow.daemon.engine import engine_pid

    script = home.parent / "big_value_wf.py"
    script.write_text((CONSTANT if constant else SCRIPT) % (mb * MB))
    started = time.time()
    out, err, code, submit_rss = run(env, "submit", str(script))
    if code != 0:
        raise RuntimeError(f"hpcflow submit failed: {err.strip()}")
    wf_id = out.split()[-1]
    pid = None
    while pid is None and time.time() - started < 60:  # the daemon takes its lock soon after
        pid = engine_pid(home)
        time.sleep(0.05)
    what = "constant given to" if constant else "output parameter passed to"
    print(f"workflow {wf_id}, daemon pid {pid}; a {mb} MiB {what} one step")
    phase = None
    while time.time() - started < 900:
        phase = phase_of(home, wf_id)
        if phase not in ("Pending", "Running", None):
            break
        time.sleep(0.2)
    print(f"workflow {phase} in {time.time() - started:.1f} s")
    rss = peak_rss_kib(pid) if pid and pid > 0 else None
    print(f"daemon peak RSS (VmHWM): {rss / 1024:.0f} MiB" if rss else
          "daemon peak RSS: the daemon is gone")
    print(f"submitting process peak RSS: {submit_rss / 1024:.0f} MiB")
    print(f"store after the run: {store_sizes(home)}")
    for step_dir in sorted((home / "runs" / wf_id).iterdir()):
        total, largest = tree_size(step_dir)
        print(f"step directory {step_dir.name}: {total / MB:.1f} MiB; largest: " +
              ", ".join(f"{name} {size / MB:.1f} MiB" for size, name in largest))
    for extra in ([], ["--values"]):
        out, err, code, rss_kib = run(env, "steps", wf_id, "--json", *extra)
        label = " ".join(["steps --json", *extra])
        if code != 0:
            print(f"{label}: exit {code} ({err.strip().splitlines()[-1:]})")
            continue
        print(f"{label}: {len(out) / MB:.2f} MiB printed, peak RSS {rss_kib / 1024:.0f} MiB")
    run(env, "daemon", "stop")
    print(f"store after 'hpcflow daemon stop': {store_sizes(home)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100, help="size of the parameter (100)")
    parser.add_argument("--constant", action="store_true",
                        help="give the value to one step as a constant instead")
    parser.add_argument("--keep", action="store_true", help="keep the temporary home")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="hpcflow-bench-big-"))
    home = base / "home"
    env = dict(os.environ, HPCFLOW_HOME=str(home), HPCFLOW_ENGINE_IDLE_EXIT="300",
               HPCFLOW_LOCAL_PARALLELISM="1")
    try:
        measure(home, env, args.mb, args.constant)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
    except Exception as exc:  # report, never fail: this is a benchmark, not a test
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
    finally:
        with contextlib.suppress(Exception):
            run(env, "daemon", "stop")
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
