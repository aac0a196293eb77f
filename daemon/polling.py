"""When to poll each executor next: pure bookkeeping, no clock of its own.

A poll of a cluster costs a scheduler call (one ``squeue`` for all of its jobs,
maybe over SSH), so each executor is polled on its own schedule: at its minimum
interval after a submission or after a poll that found a change, doubling while
nothing changes, up to its maximum. A finished-marker file seen by the watcher
makes the next poll due at once (``kick``).

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
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from hpcflow.config_file import PollBounds


class PollSchedule:
    def __init__(self, bounds: Mapping[str, PollBounds] | None = None) -> None:
        self.bounds: dict[str, PollBounds] = dict(bounds or {})
        self._interval: dict[str, float] = {}
        self._next: dict[str, float] = {}

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
        """Something happened (a submission, a finished marker): poll now, then often."""
        self._interval[name] = self._bounds(name).min
        self._next[name] = now

    def polled(self, name: str, now: float, changed: bool) -> None:
        b = self._bounds(name)
        previous = self._interval.get(name, b.min)
        interval = b.min if changed else min(b.max, previous * 2)
        self._interval[name] = interval
        self._next[name] = now + interval

    def next_due(self, names: Iterable[str]) -> float | None:
        """The earliest next poll among ``names`` (executors with live jobs); None if none."""
        times = [self._next.get(n, 0.0) for n in names]
        return min(times) if times else None

    def interval(self, name: str) -> float | None:
        return self._interval.get(name)
