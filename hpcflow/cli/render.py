"""Plain-text rendering for the CLI: tables, durations, progress lines."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

PHASE_ORDER = ("Succeeded", "Running", "Pending", "Failed", "Error", "Skipped", "Omitted")
#: Native ids that name no scheduler job (a fork of the local engine, a job found again).
NO_JOB_ID = frozenset({"forked", "adopted"})


def job_id(step: Any) -> str:
    """The scheduler's id of a step's latest job (a row with ``native_id``), or ""."""
    native = step["native_id"]
    return "" if not native or native in NO_JOB_ID else str(native)


def machine(step: Any) -> str:
    """Where a leaf step's latest job runs (or would: its executor before it has a job)."""
    if step["type"] != "Pod":
        return ""
    return step["job_executor"] or step["executor"] or ""


def attempt(step: Any) -> str:
    """A started leaf step's attempt, counted from 1."""
    return str((step["attempt"] or 0) + 1) if step["type"] == "Pod" and step["started_at"] \
        else ""


def plural(count: int, word: str, many: str | None = None) -> str:
    """``count`` and ``word``, in the plural unless it is 1.

    >>> plural(1, "pass", "passes"), plural(0, "pass", "passes"), plural(3, "workflow")
    ('1 pass', '0 passes', '3 workflows')
    """
    return f"{count} {word if count == 1 else (many or word + 's')}"


def run_seconds(step: Any) -> float | None:
    """How long a step has run: its earlier attempts' time and its latest attempt's (not the
    gaps between attempts); None if it never started."""
    before = float(step["run_seconds"] or 0)
    if not step["started_at"]:
        return before or None
    return before + (step["finished_at"] or time.time()) - step["started_at"]


def step_duration(step: Any) -> str:
    """``duration`` of a step, its attempts added up (``run_seconds``)."""
    return seconds_text(run_seconds(step))


def duration(start: float | None, end: float | None) -> str:
    return seconds_text((end or time.time()) - start if start else None)


def seconds_text(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells)
    return "\n".join(line.rstrip() for line in lines)


def streamed_table(headers: Sequence[str],
                   rows: Callable[[], Iterable[Sequence[Any]]]) -> Iterator[str]:
    """``table``'s lines for rows too many to hold: ``rows`` is read twice, once for the
    column widths and once to print."""
    widths = [len(str(h)) for h in headers]
    for row in rows():
        widths = [max(w, len("" if c is None else str(c))) for w, c in zip(widths, row,
                                                                           strict=True)]
    yield "  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()
    for row in rows():
        yield "  ".join(("" if c is None else str(c)).ljust(w)
                        for c, w in zip(row, widths, strict=True)).rstrip()


def json_array(items: Iterable[Any]) -> Iterator[str]:
    """The text of ``json.dumps(list(items), indent=2)``, a piece per item."""
    first = True
    for item in items:
        body = json.dumps(item, indent=2).replace("\n", "\n  ")
        yield ("[\n  " if first else ",\n  ") + body
        first = False
    yield "[]" if first else "\n]"


def counts_text(counts: dict[str, int]) -> str:
    parts = [f"{counts[p]} {p}" for p in PHASE_ORDER if counts.get(p)]
    return ", ".join(parts) or "no steps yet"


def of_expected(counts: dict[str, int], expected: int | None) -> str:
    """`` (2/3)``: the leaf steps that ended of those the workflow will have, when that is
    known ("" otherwise).

    >>> of_expected({"Succeeded": 1, "Failed": 1}, 3), of_expected({"Succeeded": 2}, None)
    (' (2/3)', '')
    """
    if expected is None:
        return ""
    ended = sum(n for phase, n in counts.items() if phase not in ("Pending", "Running"))
    return f" ({ended}/{max(expected, sum(counts.values()))})"


def progress_bar(done: int, total: int, width: int = 30) -> str:
    filled = int(width * done / total) if total else 0
    return "[" + "#" * filled + "-" * (width - filled) + f"] {done}/{total}"
