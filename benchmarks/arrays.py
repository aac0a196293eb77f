"""1000 tiny steps on the real Slurm three ways, side by side in one run (issue 17): one job
per step, packs (``group_size=100``: 10 jobs running 100 steps each in turn) and one array
job (``array_size=1000``: one ``sbatch``, an element per step).

Each way runs the same workflow (a fan-out of N tiny OP steps, then a summing step, all on
Slurm) in a fresh ``$HPCFLOW_HOME`` whose config gives the machine ``max_jobs = N``. The
daemon's PATH starts with wrappers of ``sbatch``, ``squeue``, ``sacct`` and ``scancel`` that
log each call before running the real one. Reported per way: seconds from ``hpcflow
submit`` until the workflow is seen finished, scheduler calls by command, and the queue
entries Slurm had to hold (jobs plus array elements).

Needs the test services (``bash tests/services/up.sh``, then ``source
/tmp/hpcflow-services/state/services.env``).

Usage: .venv/bin/python benchmarks/arrays.py [--steps 1000] [--group 100] [--ways jobs,packs,
       arrays] [--timeout 1800]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

TOOLS = ("sbatch", "squeue", "sacct", "scancel")

WORKFLOW = '''
import sys
from hpcflow import Step, Workflow, SlurmExecutor, argo_range
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def tiny(x: int) -> {"y": int}:
    return {"y": 2 * x}

@OP.function
def total(ys: list) -> {"s": int}:
    return {"s": sum(ys)}

n, way, group = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
grouping = {"jobs": {}, "packs": {"group_size": group}, "arrays": {"array_size": n}}[way]
cluster = SlurmExecutor(partition="debug", time="0:10:00", **grouping)
wf = Workflow(f"bench-{way}")
fan = Step("tiny", PythonOPTemplate(tiny), parameters={"x": "{{item}}"},
           with_param=argo_range(n), executor=cluster)
wf.add(fan)
wf.add(Step("total", PythonOPTemplate(total), parameters={"ys": fan.outputs.parameters["y"]},
            executor=SlurmExecutor(partition="debug", time="0:10:00")))
wf.submit()
print(wf.id)
'''


def wrappers(bin_dir: Path, calls: Path) -> None:
    """``TOOLS`` on a PATH of their own, each logging ``TOOL ARGS`` then running the real one."""
    bin_dir.mkdir(parents=True)
    for tool in TOOLS:
        real = shutil.which(tool)
        if real is None:
            raise SystemExit(f"{tool} is not on PATH: start the test services first")
        script = bin_dir / tool
        script.write_text(f'#!/bin/sh\necho "{tool} $*" >> {calls}\nexec {real} "$@"\n')
        script.chmod(0o755)


def hpcflow(args: list[str], env: dict[str, str], cwd: Path,
            timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hpcflow.cli.main", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def run_way(way: str, n: int, group: int, base: Path, timeout: float) -> dict:
    work = base / way
    home = work / "home"
    home.mkdir(parents=True, mode=0o700)
    (home / "config.toml").write_text(
        f'[machines.slurm]\nscheduler = "slurm"\nmax_jobs = {n}\n')
    (home / "config.toml").chmod(0o600)
    calls = work / "calls.txt"
    wrappers(work / "bin", calls)
    script = work / "wf.py"
    script.write_text(WORKFLOW)
    env = dict(os.environ, HPCFLOW_HOME=str(home), PATH=f"{work / 'bin'}:{os.environ['PATH']}",
               HPCFLOW_ENGINE_IDLE_EXIT="60")
    start = time.monotonic()
    done = hpcflow(["submit", "-q", str(script), "--", str(n), way, str(group)], env, work)
    if done.returncode != 0:
        raise SystemExit(f"{way}: submit failed: {done.stderr.strip()}")
    wf_id = done.stdout.strip()
    phase = "Running"
    while time.monotonic() - start < timeout:
        status = json.loads(hpcflow(["status", wf_id, "--json"], env, work).stdout)
        phase = status["phase"]
        if phase not in ("Pending", "Running"):
            break
        time.sleep(1.0)
    seconds = time.monotonic() - start
    steps = json.loads(hpcflow(["steps", wf_id, "--json"], env, work).stdout)
    hpcflow(["daemon", "stop"], env, work)
    counted = Counter(line.split(" ", 1)[0] for line in calls.read_text().splitlines())
    job_ids = {s["job_id"] for s in steps if s["type"] == "Pod" and s["job_id"]}
    return {"way": way, "steps": n, "phase": phase, "seconds": round(seconds, 1),
            "per_step_ms": round(1000 * seconds / n, 1), "calls": dict(counted),
            "queue_entries": len(job_ids)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--group", type=int, default=100)
    parser.add_argument("--ways", default="jobs,packs,arrays")
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="hpcflow-arrays-bench-"))
    results = []
    for way in args.ways.split(","):
        record = run_way(way, args.steps, args.group, base, args.timeout)
        print(json.dumps(record), flush=True)
        results.append(record)
    print()
    print("| way | phase | seconds | ms per step | sbatch | squeue | sacct | scancel "
          "| queue entries |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        c = r["calls"]
        print(f"| {r['way']} | {r['phase']} | {r['seconds']} | {r['per_step_ms']} | "
              f"{c.get('sbatch', 0)} | {c.get('squeue', 0)} | {c.get('sacct', 0)} | "
              f"{c.get('scancel', 0)} | {r['queue_entries']} |")
    print(f"\nCommand: .venv/bin/python benchmarks/arrays.py --steps {args.steps} "
          f"--group {args.group} --ways {args.ways}")
    shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
