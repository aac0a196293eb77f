"""When to poll each executor next: pure bookkeeping, no clock of its own.

A poll of a cluster costs a scheduler call (one ``squeue`` for all of its jobs,
maybe over SSH), so each executor is polled on its own schedule: at its minimum
interval after a submission or after a poll that found a change, doubling while
nothing changes, up to its maximum. A finished-marker file seen by the watcher, or a
submission, makes the next poll due at once (``kick``), but never sooner than the
minimum interval after the last poll: a hundred jobs finishing within a second are one
``squeue``, not a hundred (the polling storm admins ban tools for). Only the executors
whose polls are reads of this machine's files (``cheap``: the local one) are polled at
every kick.

>>> from hpcflow.config_file import PollBounds
>>> s = PollSchedule({"local": PollBounds(1.0, 8.0)})
>>> s.kick("local", now=0.0); s.due("local", 0.0)
True
>>> s.polled("local", now=0.0, changed=False); [s.due("local", t) for t in (1.9, 2.0)]
[False, True]
>>> s.polled("local", now=2.0, changed=False); s.next_due(["local"])
6.0
>>> s.polled("local", now=6.0, changed=True); s.next_due(["local"])
7.0
>>> s = PollSchedule({"hpc": PollBounds(1.0, 30.0)})
>>> s.polled("hpc", now=10.0, changed=True); s.kick("hpc", now=10.2); s.next_due(["hpc"])
11.0
>>> s.kick("hpc", now=12.5); s.due("hpc", 12.5)
True

Markers arriving steadily never postpone a first poll (they once did, each kick moving it
``min`` further away: one ``squeue`` for a whole workflow):

>>> s = PollSchedule({"new": PollBounds(1.0, 30.0)})
>>> for t in (0.0, 0.5, 1.0, 1.5): s.kick("new", now=t)
>>> s.due("new", 1.5)
True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from hpcflow.config_file import PollBounds
from hpcflow.connectors.plugins import LOCAL


class PollSchedule:
    def __init__(self, bounds: Mapping[str, PollBounds] | None = None,
                 cheap: Iterable[str] = (LOCAL,)) -> None:
        self.bounds: dict[str, PollBounds] = dict(bounds or {})
        self.cheap = frozenset(cheap)
        self._interval: dict[str, float] = {}
        self._next: dict[str, float] = {}
        self._polled_at: dict[str, float] = {}

    def set_bounds(self, bounds: Mapping[str, PollBounds]) -> None:
        """New bounds (a reloaded config); current intervals are clamped into them."""
        self.bounds = dict(bounds)
        for name, interval in self._interval.items():
            b = self._bounds(name)
            self._interval[name] = min(b.max, max(b.min, interval))

    def _bounds(self, name: str) -> PollBounds:
        return self.bounds.get(name, PollBounds())

    def due(self, name: str, now: float) -> bool:
        return now >= self._next.get(name, 0.0)

    def kick(self, name: str, now: float) -> None:
        """Something happened (a submission, a finished marker): poll now (or as soon as
        the minimum interval since the last poll allows), then often."""
        b = self._bounds(name)
        self._interval[name] = b.min
        last = self._polled_at.get(name)
        if name in self.cheap or last is None:  # never polled: nothing to space it from
            self._next[name] = now
        else:
            self._next[name] = max(now, last + b.min)

    def polled(self, name: str, now: float, changed: bool) -> None:
        b = self._bounds(name)
        previous = self._interval.get(name, b.min)
        interval = b.min if changed else min(b.max, previous * 2)
        self._interval[name] = interval
        self._next[name] = now + interval
        self._polled_at[name] = now

    def next_due(self, names: Iterable[str]) -> float | None:
        """The earliest next poll among ``names`` (executors with live jobs); None if none."""
        times = [self._next.get(n, 0.0) for n in names]
        return min(times) if times else None

    def interval(self, name: str) -> float | None:
        return self._interval.get(name)
