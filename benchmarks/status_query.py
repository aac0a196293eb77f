"""How long a status query takes on a finished 10,000-step workflow.

The workflow's rows are written through the store's own API (the calls the engine makes
when it runs steps: insert_step, set_step_phase, job rows and events), so the store holds
what a real run leaves behind, without spending minutes running 10,000 processes. Then it
times, best of several runs each:

- the query in-process (what ``hpcflow status WF --json`` does after start-up);
- ``hpcflow status WF --json`` as a command (includes Python's start-up and imports);
- ``hpcflow steps WF --json`` as a command, for comparison (it reads every step).

Usage: python benchmarks/status_query.py [--steps 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def build_finished_workflow(home: Path, n_steps: int) -> str:
    from hpcflow.daemon.store import Store

    store = Store.open(home)
    wf_id = "bench-status-00000"
    store.insert_workflow(wf_id, "bench-status", {"name": "bench-status"}, {}, {}, {})
    with store.write() as conn:
        store.set_workflow_phase(conn, wf_id, "Running")
        root = store.insert_step(conn, wf_id, 0, "root", "bench-status", "main", "Steps",
                                 "Running", {"parameters": {}, "artifacts": {}}, None)
        assert root is not None
        for i in range(n_steps):
            sid = store.insert_step(conn, wf_id, root, f"0.s{i}", f"s{i}", "op", "Pod", "Pending",
                                    {"parameters": {"x": i}, "artifacts": {}}, None)
            assert sid is not None
            store.insert_job_intent(conn, sid, wf_id, "local", f"hpcflow-{wf_id}-{sid}-0",
                                    f"/tmp/run/{sid}")
            store.set_step_phase(conn, sid, "Pending", "Running", workflow_id=wf_id)
            store.set_step_phase(conn, sid, "Running", "Succeeded",
                                 outputs={"parameters": {"y": i + 1}, "artifacts": {}},
                                 workflow_id=wf_id)
        store.set_step_phase(conn, root, "Running", "Succeeded", workflow_id=wf_id)
        store.set_workflow_phase(conn, wf_id, "Succeeded")
    store.close()
    return wf_id


def best_of(repeat: int, fn) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hpcflow-bench-status-") as tmp:
        home = Path(tmp) / "home"
        t0 = time.perf_counter()
        wf_id = build_finished_workflow(home, args.steps)
        build_s = time.perf_counter() - t0

        from hpcflow.daemon import client

        def in_process() -> None:
            client._stores.pop(home, None)
            row = client.workflow_row(home, wf_id)
            counts = client.phase_counts(home, wf_id)
            assert row["phase"] == "Succeeded" and counts == {"Succeeded": args.steps}

        env = dict(os.environ, HPCFLOW_HOME=str(home))

        def command(*cli: str) -> None:
            out = subprocess.run([sys.executable, "-m", "hpcflow.cli.main", *cli], env=env,
                                 capture_output=True, text=True, check=True).stdout
            json.loads(out)

        def python_startup() -> None:
            subprocess.run([sys.executable, "-c", "pass"], check=True)

        results = {
            "steps": args.steps,
            "store_build_s": round(build_s, 2),
            "status_query_in_process_ms": round(1000 * best_of(args.repeat, in_process), 2),
            "status_command_ms": round(1000 * best_of(args.repeat,
                                                      lambda: command("status", wf_id, "--json")),
                                       1),
            "python_startup_ms": round(1000 * best_of(args.repeat, python_startup), 1),
            "steps_command_ms": round(1000 * best_of(args.repeat,
                                                     lambda: command("steps", wf_id, "--json")),
                                      1),
        }
    print(json.dumps(results))
    print(f"status query on a finished {args.steps}-step workflow: "
          f"{results['status_query_in_process_ms']} ms in process, "
          f"{results['status_command_ms']} ms as 'hpcflow status --json' "
          f"(of which Python start-up {results['python_startup_ms']} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
