"""The per-step overhead of hpcflow's Argo path, in Argo Server calls per step.

Kubernetes and Argo cannot run here: the calls go to the STAND-IN Argo Server of
``tests/services/argo_standin`` (Argo v3.7.18's REST API, pods run as local processes, S3 on
the real Ceph RGW), which counts the calls per route. One run measures a fan-out
``with_param=argo_range(N)`` of a trivial Python OP sent to Argo:

* (a) one Argo Workflow per step;
* (b) ``group_size=10``: ten steps per Workflow;
* (c) the same fan-out with the stand-in's ``Unschedulable`` fault on its image: all N pods
  stay Pending (no process), so all N steps are live at once; the daemon's polls are
  watched for ``--observe`` seconds (its debug log line ``polled k8s: L live jobs`` marks
  each poll cycle), then the workflow is terminated with ``hpcflow terminate``.

The daemon's own S3 requests (uploads of the steps' files, results read back) are counted
from its debug log (botocore's ``Making request for OperationModel(name=...)`` lines), and so
are the S3 clients it builds (``Registering S3 region redirector handler``, once per client:
a boto3 client costs about 0.2 s of CPU to build on this machine). The
pods' artifact transfers (the stand-in's controller plays argoexec) are not counted: the
gateway keeps no per-bucket request log here, and its global counter also counts every other
user of the gateway.

Nothing is asserted: the figures are printed. The stand-in, its bucket and the engine of the
temporary home are always stopped/removed (the home is kept, and its path printed, when a
route went wrong or with ``--keep``).

Usage (from the repository root, after ``source /tmp/hpcflow-services/state/services.env``):
    .venv/bin/python benchmarks/argo_calls.py [--steps 40] [--group-size 10] [--observe 30]
                                              [--keep]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.conftest import run_cli, stop_engine, wait_until  # noqa: E402
from tests.integration.conftest import S3_VARS, _argo_standin  # noqa: E402
from tests.integration.flows import steps, submit, wait  # noqa: E402
from tests.integration.test_argo_offload import (  # noqa: E402
    CREATE,
    DELETE,
    GET,
    TERMINATE,
    argo_home,
)

LIST = "GET /api/v1/workflows/{namespace}"
#: botocore logs this once per S3 client it builds.
S3_CLIENT = "Registering S3 region redirector handler"
S3_REQUEST = re.compile(r"Making request for OperationModel\(name=(\w+)\)")
POLLED = re.compile(r"polled k8s: (\d+) live jobs")

FANOUT = '''
from hpcflow import ArgoExecutor, Step, Workflow, argo_range
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def inc(x: int) -> {"y": int}:
    return {"y": x + 1}

wf = Workflow("argo-calls")
wf.add(Step("inc", PythonOPTemplate(inc, image="IMAGE"), parameters={"x": "{{item}}"},
            with_param=argo_range(STEPS), executor=ArgoExecutor(cluster="k8s"EXTRA)))
wf.submit()
'''


@dataclass
class Route:
    name: str
    steps: int
    calls: dict[str, int]
    s3: dict[str, int]  # the daemon's S3 requests by operation
    s3_clients: int  # the S3 clients (boto3) the daemon built
    polls: list[int]  # live jobs at each poll cycle of the route
    window_polls: list[int] = field(default_factory=list)  # (c): those of the window
    window_calls: dict[str, int] = field(default_factory=dict)


def log_size(home: Path) -> int:
    log = home / "logs" / "daemon.log"
    return log.stat().st_size if log.exists() else 0


def log_from(home: Path, offset: int) -> str:
    with (home / "logs" / "daemon.log").open() as f:
        f.seek(offset)
        return f.read()


def s3_requests(home: Path, offset: int) -> dict[str, int]:
    """The daemon's S3 requests by operation, logged after ``offset``."""
    return dict(collections.Counter(S3_REQUEST.findall(log_from(home, offset))))


def s3_clients(home: Path, offset: int) -> int:
    return log_from(home, offset).count(S3_CLIENT)


def polls(home: Path, offset: int) -> list[int]:
    """The live jobs of each poll cycle of the cluster logged after ``offset``."""
    return [int(m) for m in POLLED.findall(log_from(home, offset))]


def fanout(image: str, n: int, group_size: int | None = None) -> str:
    extra = f", group_size={group_size}" if group_size else ""
    return (FANOUT.replace("IMAGE", image).replace("STEPS", str(n))
            .replace("EXTRA", extra))


def all_removed(argo) -> dict[str, int] | None:
    """The calls once every Workflow created was deleted again (the clean-up is done)."""
    calls = argo.calls()
    return calls if calls.get(CREATE) and calls.get(DELETE) == calls[CREATE] else None


def all_terminated(argo) -> dict[str, int] | None:
    """The calls once every Workflow created was terminated (``hpcflow terminate``)."""
    calls = argo.calls()
    return calls if calls.get(CREATE) and calls.get(TERMINATE) == calls[CREATE] else None


def finished_route(argo, home: Path, cwd: Path, name: str, n: int,
                   group_size: int | None) -> Route:
    """Run the fan-out to its end; the calls it cost, clean-up included."""
    argo.reset_calls()
    offset = log_size(home)
    wf_id = submit(cwd, home, fanout("python:3.11-bench", n, group_size))
    final = wait(home, cwd, wf_id, timeout=300)
    outputs = steps(home, cwd, wf_id)["inc"].get("outputs", {}).get("parameters", {})
    if final["phase"] != "Succeeded" or outputs.get("y") != [i + 1 for i in range(n)]:
        raise RuntimeError(f"route {name}: workflow {wf_id} ended {final['phase']}, "
                           f"outputs {outputs}")
    calls = wait_until(lambda: all_removed(argo), f"route {name}: the clean-up")
    return Route(name, n, calls, s3_requests(home, offset), s3_clients(home, offset),
                 polls(home, offset))


def waiting_route(argo, home: Path, cwd: Path, name: str, n: int, observe: float) -> Route:
    """All N steps live (pods Unschedulable) for ``observe`` seconds, then terminated.

    The terminated Workflows are not deleted here: once terminated no step is live, so no
    poll runs; the next poll of the cluster (another workflow's) or their ``ttlStrategy``
    removes them."""
    image = "python:3.11-unschedulable-bench"
    argo.fault(image, "Unschedulable")
    try:
        argo.reset_calls()
        start = log_size(home)
        wf_id = submit(cwd, home, fanout(image, n))
        wait_until(lambda: f"polled k8s: {n} live jobs" in log_from(home, start),
                   f"route {name}: a poll seeing all {n} steps live")
        window_start, before = log_size(home), argo.calls()
        time.sleep(observe)  # the measurement window, not a wait for a condition
        window_calls = {k: v - before.get(k, 0) for k, v in argo.calls().items()}
        window_polls = polls(home, window_start)
        done = run_cli(["terminate", wf_id], home, cwd)
        if done.returncode != 0:
            raise RuntimeError(f"route {name}: hpcflow terminate: {done.stderr.strip()}")
        final = wait(home, cwd, wf_id)
        if final["phase"] != "Terminated":
            raise RuntimeError(f"route {name}: workflow {wf_id} ended {final['phase']}")
        calls = wait_until(lambda: all_terminated(argo), f"route {name}: the terminate calls")
    finally:
        argo.fault(image, None)
    return Route(name, n, calls, s3_requests(home, start), s3_clients(home, start),
                 polls(home, start), window_polls,
                 {k: v for k, v in window_calls.items() if v})


def short(route_key: str) -> str:
    """``POST /api/v1/workflows/{namespace}`` -> ``POST workflows``."""
    method, path = route_key.split(" ", 1)
    tail = path.removeprefix("/api/v1/").replace("/{namespace}", "").replace("/{name}", "/NAME")
    return f"{method} {tail}"


COLUMNS = (("creates", CREATE), ("deletes", DELETE), ("lists", LIST), ("gets", GET),
           ("terminates", TERMINATE))


def report(routes: list[Route]) -> None:
    heads = ["route", "steps", "Argo calls", "per step", *(h for h, _ in COLUMNS), "other",
             "daemon S3 requests", "per step", "S3 clients built", "per step"]
    print("\n| " + " | ".join(heads) + " |")
    print("| " + " | ".join("---" if h in ("route", "other") else "---:" for h in heads) + " |")
    for r in routes:
        total, s3 = sum(r.calls.values()), sum(r.s3.values())
        other = ", ".join(f"{short(k)} {v}" for k, v in sorted(r.calls.items())
                          if k not in dict(COLUMNS).values()) or "-"
        cells = [r.name, r.steps, total, f"{total / r.steps:.2f}",
                 *(r.calls.get(key, 0) for _, key in COLUMNS), other, s3, f"{s3 / r.steps:.1f}",
                 r.s3_clients, f"{r.s3_clients / r.steps:.1f}"]
        print("| " + " | ".join(map(str, cells)) + " |")
    for r in routes:
        print(f"\n{r.name}: daemon S3 requests "
              + ", ".join(f"{op} {v}" for op, v in sorted(r.s3.items())))
        print(f"  {len(r.polls)} poll cycles ({min(r.polls, default=0)} to "
              f"{max(r.polls, default=0)} live steps), {r.calls.get(LIST, 0)} list calls")
        if r.window_polls:
            window = ", ".join(f"{short(k)} {v}" for k, v in sorted(r.window_calls.items()))
            print(f"  observation window: {len(r.window_polls)} poll cycles, live steps at "
                  f"each: {sorted(set(r.window_polls))}; Argo calls: {window or 'none'}; "
                  f"list calls per poll cycle: "
                  f"{r.window_calls.get(LIST, 0) / len(r.window_polls):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--group-size", type=int, default=10)
    parser.add_argument("--observe", type=float, default=30.0,
                        help="seconds route (c) is watched with all steps live")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary home (its daemon log) and print its path")
    args = parser.parse_args()
    missing = [v for v in S3_VARS if not os.environ.get(v)]
    if missing:
        sys.exit(f"argo_calls: {', '.join(missing)} not set; first: "
                 "source /tmp/hpcflow-services/state/services.env")
    s3_env = {v: os.environ[v] for v in S3_VARS}
    work = Path(tempfile.mkdtemp(prefix="hpcflow-argo-calls-"))
    home: Path | None = None
    ok = False
    try:
        with contextlib.contextmanager(_argo_standin)(s3_env, work / "standin", False) as argo:
            cwd = work / "run"
            cwd.mkdir()
            home = argo_home(cwd, argo, s3_env, extra='[daemon]\nlog_level = "debug"\n')
            routes = [
                finished_route(argo, home, cwd, "(a) one Workflow per step", args.steps, None),
                finished_route(argo, home, cwd, f"(b) group_size={args.group_size}",
                               args.steps, args.group_size),
                waiting_route(argo, home, cwd, "(c) all live, Unschedulable, terminated",
                              args.steps, args.observe),
            ]
            stop_engine(home)
        report(routes)
        ok = True
    finally:
        if home is not None:
            stop_engine(home)
        if ok and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"argo_calls: kept {work} (daemon log: {home and home / 'logs' / 'daemon.log'})",
                  file=sys.stderr)


if __name__ == "__main__":
    main()
