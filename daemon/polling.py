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

A scheduler that answers slowly (a call of ``SLOW_CALL`` seconds or more, or one killed at the
machine's ``scheduler_timeout``) is a controller under load: the machine's polls back off, the
wait doubling with each slow poll (at least twice the slow call's time) up to ``MAX_BACKOFF``,
and no finished marker brings the next poll sooner. Each fast poll halves it again, until it
falls below the minimum interval and is gone:

>>> s = PollSchedule({"hpc": PollBounds(1.0, 30.0)})
>>> s.polled("hpc", now=0.0, changed=True, call_seconds=60.0, timed_out=True)
>>> s.backoff("hpc"), s.next_due(["hpc"])
(120.0, 120.0)
>>> s.kick("hpc", now=50.0); s.due("hpc", 60.0), s.due("hpc", 120.0)
(False, True)
>>> s.polled("hpc", now=240.0, changed=False, call_seconds=70.0, timed_out=True)
>>> s.backoff("hpc"), s.report()["hpc"]["timed_out"]
(240.0, True)
>>> for n in range(5): s.polled("hpc", now=1000.0 + n, changed=True, call_seconds=7.0)
>>> s.backoff("hpc")
600.0
>>> for n in range(10): s.polled("hpc", now=2000.0 + n, changed=True, call_seconds=0.1)
>>> s.backoff("hpc"), s.report()
(0.0, {})
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from hpcflow.config_file import PollBounds
from hpcflow.connectors.plugins import LOCAL

#: A scheduler call this slow (seconds) means its controller is under load.
SLOW_CALL = 5.0
#: The longest wait between two polls of a slow scheduler (seconds).
MAX_BACKOFF = 600.0


class PollSchedule:
    def __init__(self, bounds: Mapping[str, PollBounds] | None = None,
                 cheap: Iterable[str] = (LOCAL,)) -> None:
        self.bounds: dict[str, PollBounds] = dict(bounds or {})
        self.cheap = frozenset(cheap)
        self._interval: dict[str, float] = {}
        self._next: dict[str, float] = {}
        self._polled_at: dict[str, float] = {}
        #: A slow scheduler's back-off: the least wait between two polls, seconds.
        self._backoff: dict[str, float] = {}
        #: Its last poll's slowest call (seconds) and whether a call was killed.
        self._slowness: dict[str, tuple[float, bool]] = {}

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
            self._next[name] = max(now, last + max(b.min, self.backoff(name)))

    def polled(self, name: str, now: float, changed: bool, call_seconds: float | None = None,
               timed_out: bool = False) -> None:
        """A poll ended (``changed``: it found something new); ``call_seconds``: its slowest
        scheduler call, ``timed_out``: a call was killed at the timeout."""
        b = self._bounds(name)
        if call_seconds is not None or timed_out:
            self._slowed(name, b, call_seconds or 0.0, timed_out)
        previous = self._interval.get(name, b.min)
        interval = b.min if changed else min(b.max, previous * 2)
        self._interval[name] = interval
        self._next[name] = now + max(interval, self.backoff(name))
        self._polled_at[name] = now

    def _slowed(self, name: str, b: PollBounds, seconds: float, timed_out: bool) -> None:
        current = self._backoff.get(name, 0.0)
        if timed_out or seconds >= SLOW_CALL:
            self._backoff[name] = min(MAX_BACKOFF, max(2 * current, 2 * seconds, 2 * b.min))
            self._slowness[name] = (seconds, timed_out)
        elif current:
            if current / 2 < b.min:
                del self._backoff[name]
                self._slowness.pop(name, None)
            else:
                self._backoff[name] = current / 2

    def backoff(self, name: str) -> float:
        """The least wait between two polls of ``name`` while its scheduler is slow; 0.0
        when it answers quickly."""
        return self._backoff.get(name, 0.0)

    def report(self) -> dict[str, dict]:
        """The executors whose polls back off (``hpcflow daemon status``): the wait, the
        slow call's seconds and whether it was killed at the timeout."""
        return {name: {"backoff": wait, "call_seconds": round(self._slowness[name][0], 1),
                       "timed_out": self._slowness[name][1]}
                for name, wait in sorted(self._backoff.items())}

    def next_due(self, names: Iterable[str]) -> float | None:
        """The earliest next poll among ``names`` (executors with live jobs); None if none."""
        times = [self._next.get(n, 0.0) for n in names]
        return min(times) if times else None

    def interval(self, name: str) -> float | None:
        return self._interval.get(name)
