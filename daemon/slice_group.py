"""Running a group of slices in one step (``Slices(group_size=N, pool_size=P)``).

The OP runs once per slice, each in its own ``workdir/<j>``, one after another or in up to
``pool_size`` forked processes, each for at most ``pool_timeout`` seconds. Outputs come back
per slice: parameters as lists, artifacts as one list artifact, which the loop then flattens.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hpcflow.artifact_files import present
from hpcflow.daemon.loops import SUCCEEDED_SLICES, group_positions, merge_artifacts


def slice_inputs(job: dict, step_dir: Path, op_in: dict[str, Any], group: dict,
                 j: int) -> dict[str, Any]:
    one = dict(op_in)
    for name in group["parameters"]:
        one[name] = op_in[name][j]
    kinds = job["template"].get("input_artifact_kinds", {})
    for name in group["artifacts"]:
        ref = job["inputs"]["artifacts"].get(name)
        root = step_dir / "inputs" / "artifacts" / name
        one[name] = None if ref is None else present(ref["items"][j], kinds.get(name, "path"),
                                                     root)
    return one


def _run_one(job: dict, step_dir: Path, workdir: Path, op_in: dict[str, Any], group: dict,
             j: int, storage: Any) -> dict:
    from hpcflow.daemon.runner import run_python_op, store_outputs

    slice_dir = workdir / str(j)
    slice_dir.mkdir(exist_ok=True)
    position = group_positions(group)[j]
    sub_job = dict(job, artifact_prefix=f"{job['artifact_prefix']}/{j}",
                   output_dir=str(position) if group.get("create_dir") else None)
    cwd = os.getcwd()
    os.chdir(slice_dir)
    try:
        with _time_limit(group.get("timeout"), position):
            op_out = run_python_op(sub_job, step_dir, slice_inputs(job, step_dir, op_in, group,
                                                                   j))
    finally:
        os.chdir(cwd)
    return store_outputs(sub_job, step_dir, slice_dir, op_out, storage, write_files=False)


class SliceTimeout(Exception):
    """A slice ran longer than ``Slices(pool_timeout=)``."""


@contextlib.contextmanager
def _time_limit(seconds: int | None, position: int) -> Iterator[None]:
    """dflow's ``pool_timeout``: an alarm while one slice runs; the OP is interrupted where it
    is (a call that never returns to Python, as in dflow, is not)."""
    if not seconds:
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise SliceTimeout(f"slice {position} ran longer than pool_timeout={seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(int(seconds))
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _attempt(job: dict, step_dir: Path, workdir: Path, op_in: dict[str, Any], group: dict,
             j: int, storage: Any) -> dict:
    """One slice: ``{"outputs": ...}`` or ``{"error": ..., "transient": ...}``."""
    from hpcflow.daemon.runner import StepFailure

    try:
        return {"outputs": _run_one(job, step_dir, workdir, op_in, group, j, storage)}
    except StepFailure as exc:
        traceback.print_exception(type(exc.__cause__ or exc), exc.__cause__ or exc,
                                  (exc.__cause__ or exc).__traceback__)
        return {"error": exc.reason, "transient": exc.transient}
    except SliceTimeout as exc:  # the alarm rang outside the OP's own code
        return {"error": f"TimeoutError: {exc}"}


def _in_pool(job: dict, step_dir: Path, workdir: Path, op_in: dict[str, Any], group: dict,
             storage: Any, pool_size: int) -> list[dict]:
    """Fork up to ``pool_size`` slices at a time; each child leaves its outcome in a file."""
    pending = list(range(group["size"]))
    running: dict[int, int] = {}
    while pending or running:
        while pending and len(running) < pool_size:
            j = pending.pop(0)
            pid = os.fork()
            if pid == 0:
                try:
                    result = _attempt(job, step_dir, workdir, op_in, group, j, storage)
                except BaseException as exc:  # the child must never return into the runner
                    result = {"error": f"{type(exc).__name__}: {exc}"}
                (workdir / f".slice-{j}.json").write_text(json.dumps(result))
                os._exit(1 if "error" in result else 0)
            running[pid] = j
        pid, _ = os.wait()
        running.pop(pid, None)
    results = []
    for j in range(group["size"]):
        path = workdir / f".slice-{j}.json"
        results.append(json.loads(path.read_text()) if path.exists()
                       else {"error": "the slice died"})
    return results


def run_slice_group(job: dict, step_dir: Path, workdir: Path, op_in: dict[str, Any],
                    storage: Any) -> dict:
    """Every slice of the group runs (one failing does not stop the others, as in dflow's
    pool); then the group fails with the first failure, unless the step counts successful
    slices (``tolerate``): the failed slices' outputs are then ``None``. The number of
    slices that succeeded is ``SUCCEEDED_SLICES`` in the outputs (or the failure)."""
    from hpcflow.daemon.runner import StepFailure, write_parameter_files

    group = job["slice_group"]
    pool_size = int(group.get("pool_size") or 1)
    if pool_size > 1:
        per_slice = _in_pool(job, step_dir, workdir, op_in, group, storage, pool_size)
    else:
        per_slice = [_attempt(job, step_dir, workdir, op_in, group, j, storage)
                     for j in range(group["size"])]
    ok = sum(1 for r in per_slice if "error" not in r)
    failed = [(j, r) for j, r in enumerate(per_slice) if "error" in r]
    if failed and not group.get("tolerate"):
        j, first = failed[0]
        raise StepFailure(f"slice {group_positions(group)[j]}: {first['error']}"
                           + (f" ({len(failed)} of {len(per_slice)} slices failed)"
                              if len(failed) > 1 else ""),
                           transient=bool(first.get("transient")), succeeded_slices=ok)
    outs = [r.get("outputs") or {"parameters": {}, "artifacts": {}} for r in per_slice]
    template = job["template"]
    params = {name: [out["parameters"].get(name) for out in outs]
              for name in template["outputs"]["parameters"]}
    arts = {name: merge_artifacts([out["artifacts"].get(name) for out in outs])
            for name in template["outputs"]["artifacts"]}
    write_parameter_files(step_dir / "outputs" / "parameters", params)
    return {"parameters": params,
            "artifacts": {n: a for n, a in arts.items() if any(a["items"])},
            SUCCEEDED_SLICES: ok}
