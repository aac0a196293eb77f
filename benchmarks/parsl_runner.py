"""The scaling benchmark's workflows on Parsl's HighThroughputExecutor: a non-durable upper
bound (no store: the futures live in this process's memory and die with it).

Runs in Parsl's own environment (``bash benchmarks/setup_parsl_env.sh``), never in
hpcflow's. The same two shapes as benchmarks/workflows.py, written as Parsl python_apps:

- ``chain``: N apps in sequence, each taking the previous app's future (adds 1).
- ``fanout``: N apps (each doubles its number), then one app summing their results
  (``inputs=`` the N futures). Parsl has no slices: this is also the slices family's figure.

One executor, ``max_workers_per_node`` workers on one local block (2: this machine has 2
cores), address and interchange on loopback, Parsl's defaults otherwise (its run directory,
logs and encryption included), usage tracking off. Before the timed workflow one app runs
and is waited for: the local block is launched at the strategy's first tick (its period is
5 s) and its workers take seconds more to register, a start-up of about 8 s here that would
swamp the small sizes. Prints one JSON line: seconds (first submit of the workflow to its
last result, warm workers), startup_seconds (``parsl.load`` and the warm-up app),
total_seconds (both), the result and whether it is right.

Usage: python benchmarks/parsl_runner.py --workflow chain --n 200 [--workers 2] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time

import parsl
from parsl import python_app
from parsl.config import Config
from parsl.executors import HighThroughputExecutor
from parsl.providers import LocalProvider


@python_app
def inc(x: int) -> int:
    return x + 1


@python_app
def double(x: int) -> int:
    return 2 * x


@python_app
def total(inputs: tuple = ()) -> int:
    return sum(inputs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workflow", choices=["chain", "fanout"], required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work", help="run directory (default: a new temporary one)")
    parser.add_argument("--no-sum", action="store_true",
                        help="fanout: wait for the N apps, no summing app")
    args = parser.parse_args()
    # a caller's time-out (SIGTERM) ends the run through dfk.cleanup(), which stops the
    # interchange and cancels the block (its workers are in a process group of their own)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    work = args.work or tempfile.mkdtemp(prefix="bench-parsl-")
    os.makedirs(work, exist_ok=True)
    os.chdir(work)
    # HTEX starts interchange.py and process_worker_pool.py by name: this venv's scripts
    bin_dir = os.path.dirname(sys.executable)
    os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    config = Config(
        executors=[HighThroughputExecutor(
            label="htex", address="127.0.0.1", max_workers_per_node=args.workers,
            cores_per_worker=1,
            provider=LocalProvider(init_blocks=1, min_blocks=1, max_blocks=1))],
        run_dir=os.path.join(work, "runinfo"), usage_tracking=0,
    )
    begin = time.perf_counter()
    dfk = parsl.load(config)
    try:
        if inc(-1).result() != 0:
            raise RuntimeError("the warm-up app gave a wrong result")
        loaded = time.perf_counter()
        if args.workflow == "chain":
            future = inc(0)
            for _ in range(args.n - 1):
                future = inc(future)
            expected = args.n
            result = future.result()
        elif args.no_sum:
            futures = [double(i) for i in range(args.n)]
            result = sum(f.result() for f in futures)
            expected = 2 * sum(range(args.n))
        else:
            future = total(inputs=[double(i) for i in range(args.n)])
            expected = 2 * sum(range(args.n))
            result = future.result()
        finished = time.perf_counter()
    finally:
        dfk.cleanup()
        parsl.clear()
    print(json.dumps({
        "backend": "parsl", "workflow": args.workflow, "n": args.n,
        "seconds": round(finished - loaded, 3), "startup_seconds": round(loaded - begin, 3),
        "total_seconds": round(finished - begin, 3), "result": result,
        "correct": result == expected, "workers": args.workers, "no_sum": args.no_sum,
        "parsl_version": parsl.__version__}), flush=True)
    return 0 if result == expected else 1


if __name__ == "__main__":
    sys.exit(main())
