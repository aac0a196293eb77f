"""The fork-and-reap floor: what one local step cannot cost less than, on this machine.

A parent that has imported hpcflow's in-job runner (``hpcflow.daemon.runner``,
``hpcflow.python`` and the modules the fork server imports before it forks, so its memory,
which a fork copies the page tables of, is the fork server's) forks children that do
trivial work (add 1 to a number) and leave with ``os._exit(0)``; the parent reaps each with
``os.waitpid`` and forks the next, keeping ``--in-flight`` children alive at once. Reported:
milliseconds of wall time per child (total / children), best and median of ``--rounds``, and
the CPU time of a child (user + system, ``RUSAGE_CHILDREN``, mean over all rounds).

It is a floor, not a model of a step: a real step also becomes a session leader, opens its
log, reads ``step.json``, unpickles its OP, writes its result, and the daemon plans and
records it. hpcflow's per-step overhead divided by this figure says how far above the floor
it is.

Prints one JSON line per in-flight setting. Usage:
python benchmarks/fork_floor.py [--children 2000] [--in-flight 2] [--in-flight 1] [--rounds 3]
                                [--gc-freeze]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import sys
import time


def load_runner() -> None:
    """What a fork server holds before it forks (connectors/executors/forkserver.py)."""
    import cloudpickle  # noqa: F401

    import hpcflow.daemon.runner
    import hpcflow.python
    import hpcflow.python.op
    import hpcflow.python.signs  # noqa: F401


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_round(children: int, in_flight: int) -> float:
    """Seconds to fork, run and reap ``children`` children, ``in_flight`` at a time."""
    started = reaped = 0
    begin = time.perf_counter()
    while reaped < children:
        while started < children and started - reaped < in_flight:
            pid = os.fork()
            if pid == 0:  # the child: trivial work, then leave without any clean-up
                value = {"y": started + 1}
                os._exit(0 if value["y"] > 0 else 1)
            started += 1
        _, status = os.waitpid(-1, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"a child exited with {status}")
        reaped += 1
    return time.perf_counter() - begin


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=2000)
    parser.add_argument("--in-flight", type=int, action="append",
                        help="children alive at once (repeatable; default 2)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--gc-freeze", action="store_true",
                        help="gc.freeze() after the imports, as a fork server may do")
    args = parser.parse_args()
    begin = time.perf_counter()
    load_runner()
    import_seconds = time.perf_counter() - begin
    if args.gc_freeze:
        gc.freeze()
    rss_kib = None
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss_kib = int(line.split()[1])
    one_round(min(100, args.children), 2)  # warm-up: page cache, allocator
    for in_flight in args.in_flight or [2]:
        cpu_before = children_cpu()
        rounds = [one_round(args.children, in_flight) for _ in range(args.rounds)]
        child_cpu_ms = (children_cpu() - cpu_before) / (args.children * args.rounds) * 1000
        per_child = [r / args.children * 1000 for r in rounds]
        print(json.dumps({
            "measure": "fork_floor", "in_flight": in_flight, "children": args.children,
            "rounds": args.rounds, "ms_per_child_best": round(min(per_child), 4),
            "ms_per_child_median": round(statistics.median(per_child), 4),
            "ms_per_child_rounds": [round(p, 4) for p in per_child],
            "child_cpu_ms": round(child_cpu_ms, 4), "parent_rss_kib": rss_kib,
            "parent_import_seconds": round(import_seconds, 3), "gc_freeze": args.gc_freeze,
            "python": sys.version.split()[0]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
