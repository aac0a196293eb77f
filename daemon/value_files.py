"""Large parameter values as files of a step directory, one copy each.

The daemon keeps a large value once in the store, by SHA-256 (``hpcflow.values``). A step
that takes one gets it as one file: for a ``str``, plain ``list`` or ``dict`` that file is
dflow's ``inputs/parameters/NAME`` itself (its bytes are the value's rendering), otherwise
``inputs/values/SHA256``; ``step.json`` holds the reference with the file's name. A
runner that may (``"value_files"`` in ``step.json``: its executor can read files back)
leaves a large output the same way, ``outputs/parameters/NAME`` or
``outputs/values/NAME``, and ``result.json`` holds a reference to it; the daemon reads it
back, checks its digest and stores it (``ingest``) before it records the result.
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hpcflow import values

#: The files a result may name (parameter names are identifiers; digests are hex).
_OUTPUT_FILE = re.compile(r"outputs/(parameters|values)/[A-Za-z0-9_][A-Za-z0-9_.-]*")


def _walk_refs(data: Any) -> list[dict]:
    """Every reference in ``data``."""
    if values.is_ref(data):
        return [data]
    if type(data) is list:
        return [r for v in data for r in _walk_refs(v)]
    if type(data) is dict:
        return [r for v in data.values() for r in _walk_refs(v)]
    return []


def _is_rendering(name: str, info: dict, top: bool) -> bool:
    """A top-level value whose bytes are dflow's rendering of it (its parameter file)."""
    return top and info["kind"] != "object" and re.fullmatch(r"[A-Za-z0-9_][\w.-]*", name) \
        is not None


# -- the daemon's side ---------------------------------------------------------------------
def for_job(read: Callable[[dict], bytes], inputs: dict) -> tuple[dict, dict[str, bytes]]:
    """``inputs`` for ``step.json`` (each reference naming its file) and the files to write
    into the step directory, read with ``read`` (the store's ``read_value``)."""
    files: dict[str, bytes] = {}
    for name, value in (inputs.get("parameters") or {}).items():
        for ref in _walk_refs(value):  # (``inputs`` is the caller's fresh copy: noted in it)
            info = values.ref_info(ref)
            rel = f"inputs/parameters/{name}" if _is_rendering(name, info, ref is value) \
                else f"inputs/values/{info['sha256']}"
            if rel not in files:
                files[rel] = read(info)
            info["file"] = rel
    return inputs, files


def strip_files(io: dict | None) -> dict | None:
    """Outputs as the store keeps them: references without the name of a step's file."""
    if not io or not io.get("parameters"):
        return io
    params = {}
    for name, value in io["parameters"].items():
        if values.is_ref(value) and "file" in values.ref_info(value):
            info = {k: v for k, v in values.ref_info(value).items() if k != "file"}
            value = {values.VALUE_TAG: info}
        params[name] = value
    return {**io, "parameters": params}


def ingest(store: Any, read_file: Callable[[str], bytes | None] | None, step_dir: str,
           outputs: dict | None) -> str | None:
    """Store (once, by digest) each output value a step left as a file; why that failed
    (the step is then an Error), or None. One value at a time, each in its own
    transaction: a value may be large and a remote read slow."""
    params = (outputs or {}).get("parameters") or {}
    for name, value in params.items():
        if not (values.is_ref(value) and "file" in values.ref_info(value)):
            continue
        info = values.ref_info(value)
        rel = str(info["file"])
        if not _OUTPUT_FILE.fullmatch(rel) or ".." in rel:
            return f"output parameter {name!r}: the result names the file {rel!r}, not one of " \
                   "the step's outputs"
        raw = read_file(rel) if read_file is not None else None
        if raw is None:
            return f"output parameter {name!r}: its value file {step_dir}/{rel} is missing"
        if len(raw) != info.get("bytes") or hashlib.sha256(raw).hexdigest() != info.get("sha256"):
            return (f"output parameter {name!r}: its value file {step_dir}/{rel} changed after "
                    "the step wrote it (its size or SHA-256 differ from the result's)")
        with store.write() as conn:
            store.put_value(conn, raw)
    return None


# -- the runner's side ---------------------------------------------------------------------
def reader(step_dir: Path) -> Callable[[dict], bytes]:
    """Reads a referenced value from its file in ``step_dir``, checking its digest."""

    def read(info: dict) -> bytes:
        rel = str(info.get("file") or "")
        if not rel or rel.startswith("/") or ".." in rel.split("/"):
            raise ValueError(f"value {info['sha256'][:12]} has no file in the step directory")
        raw = (step_dir / rel).read_bytes()
        if hashlib.sha256(raw).hexdigest() != info["sha256"]:
            raise ValueError(f"{step_dir / rel} does not hold the value step.json names (its "
                             "SHA-256 differs)")
        return raw

    return read


def in_own_file(name: str, value: Any, folder: str) -> bool:
    """The parameter file ``folder/NAME`` already holds this value (written by the daemon or
    by ``write_outputs``): it must not be written again."""
    return values.is_ref(value) and values.ref_info(value).get("file") == f"{folder}/{name}"


def write_outputs(step_dir: Path, params: dict, decls: dict, step: str,
                  files: bool = True) -> dict:
    """Output parameters for ``result.json``: with ``files``, each large one written once
    into the step directory and referenced by digest (a ``BigParameter`` always is); a
    warning in the step's log for one above ``values.WARN_BYTES`` not declared big."""
    out: dict = {}
    for name, value in params.items():
        big = bool((decls.get(name) or {}).get("big"))
        if values.has_ref(value) or (isinstance(value, str) and not big
                                      and len(value) * 4 <= values.INLINE_LIMIT):
            out[name] = value
            continue
        raw, kind = values.stored_form(value)
        if len(raw) <= (0 if big else values.INLINE_LIMIT):
            out[name] = value
            continue
        if len(raw) > values.WARN_BYTES and not big:
            print(f"hpcflow: warning: output parameter {name!r} of step {step!r} is "
                  f"{len(raw) / 2**20:.1f} MiB: parameters pass through the daemon and its "
                  "store; return a file as an output Artifact instead, or declare the output "
                  "BigParameter to say the size is meant", file=sys.stderr, flush=True)
        if not files:
            out[name] = value
            continue
        ref = values.make_ref(raw, kind)
        info = values.ref_info(ref)
        rel = f"outputs/parameters/{name}" if _is_rendering(name, info, True) \
            else f"outputs/values/{name}"
        path = step_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(raw)
        info["file"] = rel
        out[name] = ref
    return out
