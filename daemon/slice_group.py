"""Running a group of slices in one step (``Slices(group_size=N, pool_size=P)``).

The OP runs once per slice, each in its own ``workdir/<j>``, one after another or in up to
``pool_size`` forked processes. Outputs come back per slice: parameters as lists, artifacts
as one list artifact, which the loop then flattens in slice order.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from hpcflow.artifact_files import present
from hpcflow.daemon.loops import merge_artifacts


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
    sub_job = dict(job, artifact_prefix=f"{job['artifact_prefix']}/{j}",
                   output_dir=str(group["first"] + j) if group.get("create_dir") else None)
    cwd = os.getcwd()
    os.chdir(slice_dir)
    try:
        op_out = run_python_op(sub_job, step_dir, slice_inputs(job, step_dir, op_in, group, j))
    finally:
        os.chdir(cwd)
    return store_outputs(sub_job, step_dir, slice_dir, op_out, storage, write_files=False)


def _in_pool(job: dict, step_dir: Path, workdir: Path, op_in: dict[str, Any], group: dict,
             storage: Any, pool_size: int) -> list[dict]:
    """Fork up to ``pool_size`` slices at a time; each child leaves its outputs in a file."""
    from hpcflow.daemon.runner import StepFailure

    pending = list(range(group["size"]))
    running: dict[int, int] = {}
    while pending or running:
        while pending and len(running) < pool_size:
            j = pending.pop(0)
            pid = os.fork()
            if pid == 0:
                code = 0
                try:
                    result: dict = {"outputs": _run_one(job, step_dir, workdir, op_in, group,
                                                        j, storage)}
                except StepFailure as exc:
                    result, code = {"error": exc.reason, "transient": exc.transient}, 1
                except BaseException as exc:  # the child must never return into the runner
                    result, code = {"error": f"{type(exc).__name__}: {exc}"}, 1
                (workdir / f".slice-{j}.json").write_text(json.dumps(result))
                os._exit(code)
            running[pid] = j
        pid, _ = os.wait()
        running.pop(pid, None)
    results = []
    for j in range(group["size"]):
        path = workdir / f".slice-{j}.json"
        data: dict = (json.loads(path.read_text()) if path.exists()
                      else {"error": "the slice died"})
        if "error" in data:
            raise StepFailure(f"slice {group['first'] + j}: {data['error']}",
                              transient=bool(data.get("transient")))
        results.append(data["outputs"])
    return results


def run_slice_group(job: dict, step_dir: Path, workdir: Path, op_in: dict[str, Any],
                    storage: Any) -> dict:
    from hpcflow.daemon.runner import StepFailure, write_parameter_files

    group = job["slice_group"]
    pool_size = int(group.get("pool_size") or 1)
    if pool_size > 1:
        per_slice = _in_pool(job, step_dir, workdir, op_in, group, storage, pool_size)
    else:
        per_slice = []
        for j in range(group["size"]):
            try:
                per_slice.append(_run_one(job, step_dir, workdir, op_in, group, j, storage))
            except StepFailure as exc:
                raise StepFailure(f"slice {group['first'] + j}: {exc.reason}",
                                  transient=exc.transient) from exc
    template = job["template"]
    params = {name: [out["parameters"].get(name) for out in per_slice]
              for name in template["outputs"]["parameters"]}
    arts = {name: merge_artifacts([out["artifacts"].get(name) for out in per_slice])
            for name in template["outputs"]["artifacts"]}
    write_parameter_files(step_dir / "outputs" / "parameters", params)
    return {"parameters": params,
            "artifacts": {n: a for n, a in arts.items() if any(a["items"])}}
