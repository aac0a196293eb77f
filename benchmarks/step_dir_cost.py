"""What a step directory's files cost the file system that holds ``$HPCFLOW_HOME``.

Each file and directory a step makes is a metadata operation: microseconds on a local
journaled disk, a round trip to the metadata server on NFS, GPFS or Lustre. This makes
``--steps`` step directories as hpcflow's local steps do, in each of two layouts, in a
folder on the file system to measure (``--dir``: put it under your ``$HPCFLOW_HOME``), then
removes them (what ``hpcflow gc`` does), interleaving the two layouts over ``--rounds``:

- ``parameter-files``: dflow's debug-mode layout (a debug-mode workflow's steps): step.json,
  op.pkl (a hard link), claim, log.txt, result.json, workdir/, and per parameter
  inputs/parameters/x and outputs/parameters/y: twelve new entries, seven of them folders;
- ``lean``: the same without the parameter files (every other workflow): six.

Prints one JSON line per layout and round (milliseconds per step directory to make and to
remove), then the median of each and their ratio. Usage:
python benchmarks/step_dir_cost.py [--dir DIR] [--steps 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

LAYOUTS = ("parameter-files", "lean")


def write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def make_step(step_dir: Path, shared_op: Path, parameter_files: bool) -> None:
    """The entries a Python OP step taking ``x`` and giving ``y`` makes, in the order the
    engine (folder, step.json through a temporary name, op.pkl linked) and the runner
    (claim, log, result through its reserve, workdir, parameter files) make them."""
    step_dir.mkdir(mode=0o700)
    write(step_dir / ".step.json.tmp", b'{"inputs": {"parameters": {"x": 21}}}')
    os.replace(step_dir / ".step.json.tmp", step_dir / "step.json")
    os.link(shared_op, step_dir / "op.pkl")
    write(step_dir / "claim", b"12345 login1")
    write(step_dir / "log.txt", b"")
    write(step_dir / ".result.json.tmp", bytes(4096))
    (step_dir / "workdir").mkdir()
    if parameter_files:
        (step_dir / "inputs" / "parameters").mkdir(parents=True)
        write(step_dir / "inputs" / "parameters" / "x", b"21")
        (step_dir / "outputs" / "parameters").mkdir(parents=True)
        write(step_dir / "outputs" / "parameters" / "y", b"42")
    write(step_dir / ".result.json.tmp", b'{"phase": "Succeeded"}')
    os.replace(step_dir / ".result.json.tmp", step_dir / "result.json")


def one_round(base: Path, layout: str, steps: int) -> dict:
    folder = base / layout
    folder.mkdir()
    shared_op = folder / ".op.pkl"
    write(shared_op, b"\x80\x04N.")
    begin = time.perf_counter()
    for i in range(steps):
        make_step(folder / f"s{i}", shared_op, layout == "parameter-files")
    made = time.perf_counter() - begin
    begin = time.perf_counter()
    shutil.rmtree(folder)
    removed = time.perf_counter() - begin
    return {"layout": layout, "steps": steps,
            "make_ms": round(made / steps * 1000, 3),
            "remove_ms": round(removed / steps * 1000, 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=None,
                        help="a folder on the file system to measure (default: a temporary one)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    parent = Path(args.dir) if args.dir else None
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="step-dir-cost-", dir=parent))
    results: dict[str, list[dict]] = {layout: [] for layout in LAYOUTS}
    try:
        for round_ in range(args.rounds):
            for layout in LAYOUTS:
                record = {"measure": "step_dir_cost", "round": round_,
                          **one_round(base, layout, args.steps)}
                results[layout].append(record)
                print(json.dumps(record), flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    medians = {layout: {key: statistics.median(r[key] for r in runs)
                        for key in ("make_ms", "remove_ms")}
               for layout, runs in results.items()}
    full, lean = medians["parameter-files"], medians["lean"]
    print(json.dumps({"measure": "step_dir_cost_summary", "dir": str(base.parent),
                      "median": medians,
                      "make_ratio": round(full["make_ms"] / lean["make_ms"], 2)
                      if lean["make_ms"] else None,
                      "remove_ratio": round(full["remove_ms"] / lean["remove_ms"], 2)
                      if lean["remove_ms"] else None}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
