"""The benchmark workflows, written once against dflow's API and run on either backend.

``--backend dflow`` imports ``dflow`` (pydflow, debug mode); ``--backend hpcflow`` imports
``hpcflow``: the same code with the import renamed, which is the promise this project makes.

- ``chain``: N trivial function OPs in sequence, each adding 1 to the previous output.
- ``fanout``: one step looped over ``argo_range(N)`` (each item doubles its number), then a
  step that sums the looped step's output list.
- ``slices``: the same, with the numbers given as one list parameter sliced per item by
  ``Slices(input_parameter=["x"], output_parameter=["y"])``.
- ``grouped``: the slices with ``group_size=100``: a hundred items run one after another
  in one step's process (dflow's own way with tiny items; N counts items, not steps).

Prints one JSON line: backend, workflow, n, seconds (build + submit + wait), phase, result,
and whether the result is right; also build_seconds and submit_seconds (from the call to
``submit()`` until the poll sees the workflow finished). With ``--backend hpcflow`` the line
also has the workflow's id and home, the OPs' own run time measured in this process
(``op_seconds``: each OP's ``execute`` timed here, times the number of calls the workflow
makes), the daemon's and its fork server's peak RSS and CPU time (``procs``: from
``/proc``, read after the workflow ended and before the daemon stops), and from the store
when the first OP step started and the last ended, in seconds after ``submit()``
(``store_times``).

Options for benchmarks/scaling.py: ``--work DIR`` (the run's directory, made if missing;
default a new temporary one), ``--no-sum`` (fan-outs without the summing step: the result
checked is the phase alone), ``--keep-daemon`` (leave hpcflow's daemon running for the
caller to query and stop).

Usage: python benchmarks/workflows.py --backend hpcflow --workflow chain --n 200
"""

import argparse
import contextlib
import importlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

#: Slices per step of the ``grouped`` family (``Slices(group_size=...)``).
GROUP_SIZE = 100


def _backend() -> str:
    """The backend named on the command line, read before the OPs are defined.

    dflow's debug mode re-runs this module's source inside each step, with no command line:
    there the backend is dflow. (hpcflow ships the OPs pickled and never re-runs it.)"""
    for i, arg in enumerate(sys.argv):
        if arg == "--backend" and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
        if arg.startswith("--backend="):
            return arg.split("=", 1)[1]
    return "dflow"


BACKEND = _backend()
flow = importlib.import_module(BACKEND)
OP = importlib.import_module(f"{BACKEND}.python").OP
PythonOPTemplate = importlib.import_module(f"{BACKEND}.python").PythonOPTemplate
Slices = importlib.import_module(f"{BACKEND}.python").Slices


@OP.function
def inc(x: int) -> {"y": int}:
    return {"y": x + 1}


@OP.function
def double(x: int) -> {"y": int}:
    return {"y": 2 * x}


@OP.function
def total(xs: list) -> {"s": int}:
    # dflow hands a loop's outputs over as text, hpcflow keeps their type: int() fits both
    return {"s": sum(int(x) for x in xs)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["dflow", "hpcflow"], required=True)
    parser.add_argument("--workflow", choices=["chain", "fanout", "slices", "grouped"],
                        required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--parallelism", type=int, default=2)
    parser.add_argument("--work", help="the run's directory (default: a new temporary one)")
    parser.add_argument("--no-sum", action="store_true",
                        help="fan-outs without the step that sums their outputs")
    parser.add_argument("--keep-daemon", action="store_true",
                        help="hpcflow: leave the daemon running (the caller stops it)")
    args = parser.parse_args()

    if args.work:
        os.makedirs(args.work, exist_ok=True)
        work = os.path.abspath(args.work)
    else:
        work = tempfile.mkdtemp(prefix=f"bench-{args.backend}-")
    os.chdir(work)
    if args.backend == "dflow":
        flow.config["mode"] = "debug"
        flow.config["debug_workdir"] = work
        flow.config["debug_pool_workers"] = args.parallelism
    else:
        os.environ["HPCFLOW_HOME"] = os.path.join(work, "hpcflow-home")
        flow.config["local_parallelism"] = args.parallelism

    start = time.perf_counter()
    if args.workflow == "chain":
        wf = flow.Workflow(name="chain")
        template = PythonOPTemplate(inc, image="python:3.11")
        prev = None
        for i in range(args.n):
            x = prev.outputs.parameters["y"] if prev is not None else 0
            prev = flow.Step(f"s{i}", template, parameters={"x": x})
            wf.add(prev)
        expected, last = args.n, f"s{args.n - 1}"
    else:
        if args.workflow in ("slices", "grouped"):
            # grouped: dflow's answer for tiny items, GROUP_SIZE slices run in one process
            group = {"group_size": GROUP_SIZE} if args.workflow == "grouped" else {}
            sliced = PythonOPTemplate(double, image="python:3.11", slices=Slices(
                "{{item}}", input_parameter=["x"], output_parameter=["y"], **group))
            fan = flow.Step("fan", sliced, parameters={"x": list(range(args.n))},
                            with_param=flow.argo_range(args.n))
        else:
            fan = flow.Step("fan", PythonOPTemplate(double, image="python:3.11"),
                            parameters={"x": "{{item}}"}, with_param=flow.argo_range(args.n))
        wf = flow.Workflow(name=args.workflow)
        wf.add(fan)
        expected, last = 2 * sum(range(args.n)), "sum"
        if args.no_sum:
            expected, last = None, None
        else:
            wf.add(flow.Step("sum", PythonOPTemplate(total, image="python:3.11"),
                             parameters={"xs": fan.outputs.parameters["y"]}))
    submitted, submitted_at = time.perf_counter(), time.time()
    wf.submit()
    while wf.query_status() in ("Pending", "Running"):
        time.sleep(0.05)
    finished = time.perf_counter()
    phase = wf.query_status()
    result = None
    if phase == "Succeeded" and last is not None:
        outputs = wf.query_step(name=last)[0].outputs.parameters
        result = int(outputs["y" if args.workflow == "chain" else "s"].value)
    correct = phase == "Succeeded" if last is None else result == expected
    record = {"backend": args.backend, "workflow": args.workflow, "n": args.n,
              "seconds": round(finished - start, 3), "phase": phase, "result": result,
              "correct": correct, "build_seconds": round(submitted - start, 3),
              "submit_seconds": round(finished - submitted, 3)}
    if args.backend == "hpcflow":
        import procinfo  # beside this file; only the standard library

        record.update(workflow_id=wf.id, home=os.environ["HPCFLOW_HOME"],
                      procs=procinfo.daemon_snapshot(Path(os.environ["HPCFLOW_HOME"])),
                      op_seconds=round(op_seconds(args.workflow, args.n, args.no_sum), 4),
                      store_times=store_times(Path(os.environ["HPCFLOW_HOME"]), wf.id,
                                              submitted_at))
    print(json.dumps(record), flush=True)
    if args.backend == "hpcflow" and not args.keep_daemon:
        from hpcflow.cli.main import main as cli

        sys.argv = ["hpcflow", "daemon", "stop"]
        with contextlib.suppress(SystemExit):
            cli(standalone_mode=False)
    return 0 if correct else 1


def store_times(home: Path, wf_id: str, submitted_at: float) -> dict:
    """When the OP steps ran, from the store (read-only): the first start and the last end
    of a ``Pod`` step, as seconds after ``submit()`` was called, and how many steps and
    jobs the workflow had. {} with an error if the store's shape is not the one expected."""
    import sqlite3

    try:
        conn = sqlite3.connect(f"file:{home / 'store.db'}?mode=ro", uri=True, timeout=30)
        try:
            first, last, pods = conn.execute(
                "SELECT MIN(started_at), MAX(finished_at), COUNT(*) FROM steps "
                "WHERE workflow_id=? AND type='Pod'", (wf_id,)).fetchone()
            jobs = conn.execute("SELECT COUNT(*) FROM jobs WHERE workflow_id=?",
                                (wf_id,)).fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    if first is None or last is None:
        return {"pods": pods, "jobs": jobs}
    return {"first_pod_started": round(first - submitted_at, 3),
            "last_pod_finished": round(last - submitted_at, 3), "pods": pods, "jobs": jobs}


def op_seconds(workflow: str, n: int, no_sum: bool) -> float:
    """The OPs' own run time in this workflow: each OP's ``execute`` timed in this process
    (the per-call mean of many calls), times the calls the workflow makes."""
    opio = importlib.import_module(f"{BACKEND}.python").OPIO
    op, calls = (inc, n) if workflow == "chain" else (double, n)
    instance = op()
    repeat = 2000
    begin = time.perf_counter()
    for i in range(repeat):
        instance.execute(opio({"x": i}))
    seconds = (time.perf_counter() - begin) / repeat * calls
    if workflow != "chain" and not no_sum:
        begin = time.perf_counter()
        total().execute(opio({"xs": [2 * i for i in range(n)]}))
        seconds += time.perf_counter() - begin
    return seconds


if __name__ == "__main__":
    sys.exit(main())
