"""How long the graph of a large workflow takes, and how big it is: the part of the web
page's first paint that is hpcflow's (issue 18: a 10,000-step workflow's page in under 2 s).

A workflow of one loop of N items (``--items``, default 10,000 and 100,000) is written into
a temporary home through the store's own API (no engine runs: the graph reads rows, and
running 100,000 steps would measure the engine instead), its items Succeeded but for a few
in Error, each with a job row as a run leaves it. Then, in this process, each three times
(the best is printed):

* read: ``workflow_graph`` (the store's outline streamed in id order, folded as it comes);
* draw: the layout and the SVG;

and, as a user would run it, ``hpcflow graph WF -o svg`` in a new process (Python's start
and imports included). Also printed: the nodes of the graph and the SVG's size.

Usage (from the repository root):
    .venv/bin/python benchmarks/graph_size.py [--items 10000 100000] [--fold 30]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SPEC = {"version": 1, "name": "fan", "entrypoint": "main", "parallelism": None, "labels": {},
        "templates": {
            "main": {"kind": "steps", "steps": [[{"name": "fan", "template": "leaf"}]]},
            "leaf": {"kind": "python"}}}


def make_workflow(home: Path, items: int) -> str:
    """A Running workflow whose Steps holds one loop of ``items`` items (every 997th in
    Error, the others Succeeded); its id."""
    from hpcflow.daemon.store import Store

    store = Store.open(home)
    wf_id = f"fan{items}"
    store.insert_workflow(wf_id, "fan", SPEC, {}, {}, {})
    with store.write() as conn:
        root = store.insert_step(conn, wf_id, 0, "root", wf_id, "main", "Steps", "Running",
                                 {}, None)
        assert root is not None
        store.set_workflow_phase(conn, wf_id, "Running", root_step=root)
        loop = store.insert_step(conn, wf_id, root, "0.fan", "fan", "leaf", "StepGroup",
                                 "Running", {}, None)
        assert loop is not None
        for i in range(items):
            phase = "Error" if i % 997 == 500 else "Succeeded"
            step = store.insert_step(conn, wf_id, loop, str(i), f"fan({i}:{i})", "leaf",
                                     "Pod", phase, {}, None,
                                     reason="boom" if phase == "Error" else None)
            assert step is not None  # each with a job, as a run leaves it (the outline
            # reads every step's latest job)
            store.insert_job_intent(conn, step, wf_id, "local", f"hpcflow-{step}",
                                    str(home / "steps" / str(step)))
    store.close()
    return wf_id


def best_of(runs: int, what: Callable[[], Any]) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(runs):
        start = time.perf_counter()
        result = what()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--fold", type=int, default=30)
    args = parser.parse_args()
    from hpcflow.ui.export import render_svg
    from hpcflow.ui.graph_model import workflow_graph
    from hpcflow.ui.layout import layout

    print(f"{'items':>8} {'nodes':>6} {'read s':>7} {'draw s':>7} {'svg KB':>7} "
          f"{'cli s':>6}")
    for items in args.items:
        with tempfile.TemporaryDirectory(prefix="hpcflow-graph-bench-") as tmp:
            home = Path(tmp) / "home"
            wf_id = make_workflow(home, items)
            read, graph = best_of(3, lambda h=home, w=wf_id: workflow_graph(h, w, args.fold))
            draw, svg = best_of(3, lambda g=graph: render_svg(g, layout(g)))
            env = dict(os.environ, HPCFLOW_HOME=str(home), HPCFLOW_ENGINE_AUTOSTART="0")
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "hpcflow.cli.main", "graph", wf_id,
                                   "-o", "svg", "--fold", str(args.fold)], env=env,
                                  capture_output=True, check=False)
            cli = time.perf_counter() - start
            assert done.returncode == 0, done.stderr.decode()
            print(f"{items:>8} {len(graph.nodes):>6} {read:>7.3f} {draw:>7.3f} "
                  f"{len(svg) / 1024:>7.1f} {cli:>6.2f}")


if __name__ == "__main__":
    main()
