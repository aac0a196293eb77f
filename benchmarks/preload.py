"""A fan-out of an OP that imports numpy, with and without ``executors.local.preload``.

Local steps are forked from a process that imported hpcflow's runner; an OP's own imports
still happen in every step unless the config file's ``executors.local.preload`` names them.
Each run is a fresh ``$HPCFLOW_HOME`` (its engine started by ``submit()``, stopped after),
``--n`` items at ``local_parallelism`` 2, each item ``numpy.sqrt`` of its number; the two
settings alternate over ``--rounds``. Reported per run: seconds from ``submit()`` until the
workflow is seen finished, per item, the result checked, and the tips the engine recorded
for the workflow (``hpcflow status``: the run without preload should be told to preload
numpy); then the medians and their ratio.

Usage: .venv/bin/python benchmarks/preload.py [--n 500] [--rounds 3] [--modules numpy]
"""


import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SETTINGS = ("plain", "preload")


def one_run(n: int) -> dict:
    """In a child process whose ``$HPCFLOW_HOME`` is set: submit, wait, check."""
    from hpcflow import Step, Workflow, argo_range
    from hpcflow import settings as config
    from hpcflow.python import OP, PythonOPTemplate

    @OP.function
    def root(x: int) -> {"y": float}:  # type: ignore[valid-type]
        import numpy

        return {"y": float(numpy.sqrt(x))}

    config.config["local_parallelism"] = 2
    wf = Workflow("numpy-fanout")
    wf.add(Step("root", PythonOPTemplate(root), parameters={"x": "{{item}}"},
                with_param=argo_range(n)))
    begin = time.perf_counter()
    wf.submit()
    phase = wf.wait(interval=0.05, timeout=3600)
    seconds = time.perf_counter() - begin
    values = [s.outputs.parameters["y"].value for s in wf.query_step(name="root")
              if s.type == "Pod"]
    correct = phase == "Succeeded" and sorted(values) == sorted(float(i) ** 0.5
                                                                 for i in range(n))
    from hpcflow.daemon.client import tips

    return {"seconds": round(seconds, 3), "per_item_ms": round(seconds / n * 1000, 2),
            "phase": phase, "correct": correct,
            "tips": tips(Path(os.environ["HPCFLOW_HOME"]), wf.id)}


def run(setting: str, n: int, modules: list[str], base: Path, round_: int) -> dict:
    home = base / f"{setting}-{round_}"
    home.mkdir(mode=0o700)
    config = home / "config.toml"
    config.write_text("[executors.local]\n" + (f"preload = {json.dumps(modules)}\n"
                                               if setting == "preload" else ""))
    os.chmod(config, 0o600)
    env = dict(os.environ, HPCFLOW_HOME=str(home))
    try:
        done = subprocess.run([sys.executable, __file__, "--one", "--n", str(n)], env=env,
                              capture_output=True, text=True, timeout=3900, check=True)
    finally:
        subprocess.run([sys.executable, "-m", "hpcflow.cli.main", "daemon", "stop"], env=env,
                       capture_output=True, timeout=120)
    record = json.loads(done.stdout.strip().splitlines()[-1])
    shutil.rmtree(home, ignore_errors=True)
    return {"measure": "preload", "setting": setting, "round": round_, "n": n,
            "modules": modules if setting == "preload" else [], **record}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--modules", default="numpy",
                        help="what preload names, comma-separated")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_run(args.n)), flush=True)
        return 0
    base = Path(tempfile.mkdtemp(prefix="hpcflow-preload-"))
    modules = [m for m in args.modules.split(",") if m]
    runs: dict[str, list[float]] = {s: [] for s in SETTINGS}
    try:
        for round_ in range(args.rounds):
            for setting in SETTINGS:
                record = run(setting, args.n, modules, base, round_)
                print(json.dumps(record), flush=True)
                if record["correct"]:
                    runs[setting].append(record["per_item_ms"])
    finally:
        shutil.rmtree(base, ignore_errors=True)
    medians = {s: statistics.median(v) if v else None for s, v in runs.items()}
    plain, preload = medians["plain"], medians["preload"]
    print(json.dumps({"measure": "preload_summary", "n": args.n, "median_per_item_ms": medians,
                      "plain_over_preload": round(plain / preload, 2)
                      if plain and preload else None}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
