"""What one forked runner costs, beside the fork-and-reap floor, in one parent.

A parent holding what the fork server holds (its imports, ``gc.freeze()``) forks, one after
the other: children that run the real runner (``hpcflow.daemon.runner.main`` through the
fork server's ``run_child``) on a fresh step directory each (a tiny Python OP: ``step.json``
and ``op.pkl`` written here as the daemon writes them), and floor children that exit at
once. Per child: wall time, user and system CPU and minor page faults (``wait4``). On the
small VMs this project runs on, a runner's cost is mostly system time: copies of the
parent's pages it touches (the floor child touches few) and the files it creates.

A third kind, ``minimal``, does only what any runner of a pickled OP must: read
``step.json``, unpickle the OP, call it, write and ``fsync`` its result. It bounds what a
leaner runner could save: the rest of a runner child's cost is running Python in a fork.

Prints one JSON line per kind. Usage:
python benchmarks/runner_child.py [--children 300] [--rounds 3] [--dir /tmp/runner-child]
"""


import argparse
import gc
import json
import os
import shutil
import sys
import time
from pathlib import Path


def fork_server_imports() -> object:
    """What ``connectors/executors/forkserver.py`` imports before it forks; its runner."""
    import cloudpickle  # noqa: F401

    import hpcflow.context_syntax
    import hpcflow.daemon.script_step
    import hpcflow.daemon.slice_group
    import hpcflow.python.hdf5
    import hpcflow.python.op
    import hpcflow.python.signs
    import hpcflow.python.typecheck
    import hpcflow.settings  # noqa: F401
    from hpcflow.daemon import runner

    return runner


def step_files(base: Path) -> tuple[bytes, dict]:
    """``op.pkl`` of a tiny OP (doubles its input) and the ``step.json`` document."""
    import cloudpickle

    from hpcflow.python import OP

    @OP.function
    def double(x: int) -> {"y": int}:  # type: ignore[valid-type]
        return {"y": 2 * x}

    job = {
        "workflow_id": "bench", "step_id": 1, "name": "double", "key": None, "attempt": 0,
        "template": {"kind": "python", "name": "double",
                     "inputs": {"parameters": {"x": {"type": "int"}}, "artifacts": {}},
                     "outputs": {"parameters": {"y": {"type": "int"}}, "artifacts": {}},
                     "python_packages": [], "envs": {}, "input_artifact_kinds": {}},
        "inputs": {"parameters": {"x": 21}, "artifacts": {}},
        "storage": {"kind": "local", "root": str(base / "artifacts")},
        "artifact_prefix": "wf/bench/1-0", "archive_mode": "tar", "output_dir": None,
        "slice_group": None, "wake_dir": None, "value_files": True, "python": None}
    return cloudpickle.dumps(double), job


def minimal_child(step_dir: Path) -> None:
    """The least a runner of a pickled OP does (``minimal``); exits the child."""
    import pickle

    from hpcflow.python.signs import OPIO

    os.chdir(step_dir)
    job = json.loads(Path("step.json").read_text())
    with open("op.pkl", "rb") as f:
        op_class = pickle.load(f)
    out = op_class().execute(OPIO(job["inputs"]["parameters"]))
    fd = os.open("result.json", os.O_CREAT | os.O_WRONLY, 0o600)
    os.write(fd, json.dumps({"outputs": dict(out)}).encode())
    os.fsync(fd)
    os.close(fd)
    os._exit(0)


def run(kind: str, dirs: list[Path], runner: object) -> dict:
    from hpcflow.connectors.executors.forkserver import run_child

    user = system = faults = 0.0
    begin = time.perf_counter()
    for step_dir in dirs:
        pid = os.fork()
        if pid == 0:
            if kind == "floor":
                os._exit(0)
            if kind == "minimal":
                minimal_child(step_dir)
            run_child(str(step_dir), runner.main, {})  # type: ignore[attr-defined]
        _, status, usage = os.wait4(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"a {kind} child exited with {status}")
        user, system = user + usage.ru_utime, system + usage.ru_stime
        faults += usage.ru_minflt
    n = len(dirs)
    return {"kind": kind, "children": n,
            "wall_ms": round((time.perf_counter() - begin) / n * 1000, 3),
            "user_ms": round(user / n * 1000, 3), "system_ms": round(system / n * 1000, 3),
            "minor_faults": round(faults / n)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", default="/tmp/runner-child")
    args = parser.parse_args()
    base = Path(args.dir)
    runner = fork_server_imports()
    op, job = step_files(base)
    gc.collect()
    gc.freeze()
    for round_ in range(args.rounds):
        for kind in ("runner", "minimal", "floor"):
            shutil.rmtree(base, ignore_errors=True)
            dirs = [base / f"s{i}" for i in range(args.children)]
            for step_dir in dirs:
                step_dir.mkdir(parents=True)
                (step_dir / "op.pkl").write_bytes(op)
                (step_dir / "step.json").write_text(json.dumps(job))
            print(json.dumps({"measure": "runner_child", "round": round_,
                              **run(kind, dirs, runner),
                              "python": sys.version.split()[0]}), flush=True)
    shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
