"""How long a forked local runner spent importing modules, by top-level package.

A step forked by the local executor's fork server that imports numpy pays for the import in
every step (75 ms here, against ~10 ms for the rest of the step), which the config file's
``executors.local.preload`` pays once. The runner reports what it imported and how long it
took (``result.json``'s ``imports``), so that the engine can say so (``daemon/import_hint``).

The clock is put on ``_find_and_load`` of the interpreter's import machinery, which CPython
calls only for a module not yet in ``sys.modules``: an ``import`` of a loaded module costs
nothing more. The whole time of an import is counted for the outermost module that is not
hpcflow's own (numpy's own imports of the standard library are numpy's; the S3 client's
import of boto3 is boto3's). Nothing is measured where the hook is not installed (a batch
job's runner, another Python implementation).
"""

from __future__ import annotations

import sys
import time
from _thread import get_ident
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Seconds spent importing, per top-level module name, since the hook was installed (or the
#: last ``reset``).
SECONDS: dict[str, float] = {}
#: Per thread: how deep it is inside imports of modules that are not hpcflow's.
_depth: dict[int, int] = {}
#: The import machinery's own function, once ``install`` replaced it.
_original: Callable[..., Any] | None = None
#: At most this many modules are reported, the slowest first.
REPORTED = 8
#: Imports shorter than this are not reported.
SMALLEST = 0.001


def _ours(name: str) -> bool:
    return name == "hpcflow" or name.startswith("hpcflow.")


def _timed_find_and_load(name: str, *args: Any) -> Any:
    assert _original is not None
    if _ours(name):
        return _original(name, *args)
    ident = get_ident()
    depth = _depth.get(ident, 0)
    _depth[ident] = depth + 1
    begin = time.perf_counter() if depth == 0 else 0.0
    try:
        return _original(name, *args)
    finally:
        _depth[ident] = depth
        if depth == 0:
            top = name.partition(".")[0]
            SECONDS[top] = SECONDS.get(top, 0.0) + time.perf_counter() - begin


def install() -> bool:
    """Put the clock on imports in this process (and the processes it forks); False where
    the interpreter's import machinery has no ``_find_and_load`` to put it on."""
    global _original
    if _original is not None:
        return True
    machinery = sys.modules.get("_frozen_importlib")
    found = getattr(machinery, "_find_and_load", None)
    if machinery is None or not callable(found):
        return False
    _original = found
    machinery._find_and_load = _timed_find_and_load  # type: ignore[attr-defined]
    return True


def installed() -> bool:
    return _original is not None


def reset() -> None:
    """Forget what was measured (a forked runner starts from nothing)."""
    SECONDS.clear()
    _depth.clear()


def _inside(module: Any, folder: Path) -> bool:
    file = getattr(module, "__file__", None)
    if not isinstance(file, str):
        return False
    try:
        return Path(file).resolve().is_relative_to(folder)
    except OSError:
        return False


def report(step_dir: Path) -> dict[str, float]:
    """What this step imported, slowest first (seconds, rounded to 0.1 ms): the modules the
    fork server could import for every step. Left out: those under the step's directory
    (its ``python_packages``, which only the step has) and the very short."""
    found: dict[str, float] = {}
    if not installed() or not SECONDS:
        return found
    folder = step_dir.resolve()
    for name, seconds in sorted(SECONDS.items(), key=lambda item: -item[1]):
        if seconds < SMALLEST or len(found) >= REPORTED:
            break
        if not _inside(sys.modules.get(name), folder):
            found[name] = round(seconds, 4)
    return found
