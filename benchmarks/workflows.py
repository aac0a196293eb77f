"""The benchmark workflows, written once against dflow's API and run on either backend.

``--backend dflow`` imports ``dflow`` (pydflow, debug mode); ``--backend hpcflow`` imports
``hpcflow``: the same code with the import renamed, which is the promise this project makes.

- ``chain``: N trivial function OPs in sequence, each adding 1 to the previous output.
- ``fanout``: one step looped over ``argo_range(N)`` (each item doubles its number), then a
  step that sums the looped step's output list.
- ``slices``: the same, with the numbers given as one list parameter sliced per item by
  ``Slices(input_parameter=["x"], output_parameter=["y"])``.

Prints one JSON line: backend, workflow, n, seconds (build + submit + wait), phase, result,
and whether the result is right.

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
    parser.add_argument("--workflow", choices=["chain", "fanout", "slices"], required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--parallelism", type=int, default=2)
    args = parser.parse_args()

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
        if args.workflow == "slices":
            sliced = PythonOPTemplate(double, image="python:3.11", slices=Slices(
                "{{item}}", input_parameter=["x"], output_parameter=["y"]))
            fan = flow.Step("fan", sliced, parameters={"x": list(range(args.n))},
                            with_param=flow.argo_range(args.n))
        else:
            fan = flow.Step("fan", PythonOPTemplate(double, image="python:3.11"),
                            parameters={"x": "{{item}}"}, with_param=flow.argo_range(args.n))
        summed = flow.Step("sum", PythonOPTemplate(total, image="python:3.11"),
                           parameters={"xs": fan.outputs.parameters["y"]})
        wf = flow.Workflow(name=args.workflow)
        wf.add(fan)
        wf.add(summed)
        expected, last = 2 * sum(range(args.n)), "sum"
    wf.submit()
    while wf.query_status() in ("Pending", "Running"):
        time.sleep(0.05)
    seconds = time.perf_counter() - start
    phase = wf.query_status()
    result = None
    if phase == "Succeeded":
        outputs = wf.query_step(name=last)[0].outputs.parameters
        result = int(outputs["y" if args.workflow == "chain" else "s"].value)
    print(json.dumps({"backend": args.backend, "workflow": args.workflow, "n": args.n,
                      "seconds": round(seconds, 3), "phase": phase, "result": result,
                      "correct": result == expected}))
    if args.backend == "hpcflow":
        from hpcflow.cli.main import main as cli

        sys.argv = ["hpcflow", "daemon", "stop"]
        with contextlib.suppress(SystemExit):
            cli(standalone_mode=False)
    return 0 if result == expected else 1


if __name__ == "__main__":
    sys.exit(main())
