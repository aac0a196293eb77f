"""Runs each benchmark workflow on pydflow's debug mode and on hpcflow, in the same run.

Usage: python benchmarks/run.py [--chain 200] [--fanout 1000] [--slices 1000]
                               [--only chain|fanout|slices]
(after ``bash benchmarks/setup_pydflow_env.sh``; ``--pydflow-python`` points elsewhere).
Prints a table with both wall times and the ratio pydflow / hpcflow; exits non-zero when a
run failed or gave a wrong result.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_PYDFLOW = os.environ.get("BENCH_VENV", "/tmp/hpcflow-bench/venv-pydflow") + "/bin/python"


def run_one(python: str, backend: str, workflow: str, n: int, timeout: float) -> dict:
    cmd = [python, str(HERE / "workflows.py"), "--backend", backend, "--workflow", workflow,
           "--n", str(n)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return dict(json.loads(line))
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": tail[:200]}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chain", type=int, default=200)
    parser.add_argument("--fanout", type=int, default=1000)
    parser.add_argument("--slices", type=int, default=1000)
    parser.add_argument("--only", choices=["chain", "fanout", "slices"])
    parser.add_argument("--pydflow-python", default=DEFAULT_PYDFLOW)
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    if not Path(args.pydflow_python).exists():
        print(f"no pydflow environment at {args.pydflow_python}: run "
              "bash benchmarks/setup_pydflow_env.sh", file=sys.stderr)
        return 2
    plan = [("chain", args.chain), ("fanout", args.fanout), ("slices", args.slices)]
    if args.only:
        plan = [p for p in plan if p[0] == args.only]
    rows = []
    ok = True
    for workflow, n in plan:
        dflow = run_one(args.pydflow_python, "dflow", workflow, n, args.timeout)
        ours = run_one(sys.executable, "hpcflow", workflow, n, args.timeout)
        good = all(r.get("correct") for r in (dflow, ours))
        ok = ok and good
        ratio = (dflow["seconds"] / ours["seconds"]) if good else None
        rows.append((f"{workflow} ({n})", dflow.get("seconds", dflow.get("error")),
                     ours.get("seconds", ours.get("error")),
                     f"{ratio:.1f}x" if ratio else "-"))
        print(json.dumps({"workflow": workflow, "n": n, "pydflow": dflow, "hpcflow": ours}),
              flush=True)
    print()
    print(f"{'workflow':<16}{'pydflow debug (s)':>20}{'hpcflow (s)':>14}{'ratio':>8}")
    for name, d, h, r in rows:
        print(f"{name:<16}{d!s:>20}{h!s:>14}{r:>8}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
