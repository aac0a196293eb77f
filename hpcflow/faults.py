"""Named points where tests inject faults (a crash at the worst moment, say).

Production code calls ``point(name, subject)`` at the moments exactly-once submission must
survive; nothing happens unless a hook was registered for that name. Only tests register
hooks (``tests/faults/sitecustomize.py``, put on the engine's ``PYTHONPATH``), so no
environment variable or test flag is read on a production path.

>>> seen = []
>>> on("example", seen.append)
>>> point("example", "job 12"), point("other", "job 13"), seen
(None, None, ['job 12'])
>>> clear()
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: The points: what their subject is.
AFTER_SUBMIT = "after-submit"  # a str, "PACK-OR-JOB as NATIVE-ID": the id not yet recorded
DISPATCHER_SUBMIT = "dispatcher-submit"  # dpdispatcher's machine, before jobs are submitted

_hooks: dict[str, list[Callable[[Any], None]]] = {}


def on(name: str, hook: Callable[[Any], None]) -> None:
    _hooks.setdefault(name, []).append(hook)


def point(name: str, subject: Any) -> None:
    for hook in _hooks.get(name, ()):
        hook(subject)


def clear() -> None:
    _hooks.clear()
