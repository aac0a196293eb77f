"""``QueueHold``: a machine's ``max_jobs`` as its scheduler lets it be, once the scheduler
refused a job for a limit (a QOS's or an association's submit limit, a queue's maximum, Grid
Engine's ``max_u_jobs``).

The refusal says the queue held as many of the user's jobs as it may: the machine's limit
drops to the jobs hpcflow had live there when it was refused (the user's other jobs count
against the same limit, and so does whatever an administrator changes meanwhile). Jobs
leaving the queue make room under that limit; the limit itself rises again by one job per
``interval`` without a refusal, so a limit that was lifted is found again without asking
the scheduler more than once an interval. A refusal at a raised limit doubles the interval
(up to ``MAX_INTERVAL``): a long-lasting limit is probed less and less often. A successful
submission above the held limit shows the room is there: the limit follows it, and once it
reaches ``max_jobs`` the hold is over.

Pure: the executor passes the time and its live count.

>>> hold = QueueHold()
>>> hold.allowed(max_jobs=10, now=0.0)
10
>>> hold.refused(live=2, now=100.0, reason="max_u_jobs")
>>> hold.allowed(10, now=100.0), hold.allowed(10, now=100.0 + PROBE_INTERVAL)
(2, 3)
>>> hold.refused(live=2, now=200.0, reason="max_u_jobs")  # the probe was refused too
>>> hold.interval == 2 * PROBE_INTERVAL, hold.allowed(10, now=200.0 + PROBE_INTERVAL)
(True, 2)
>>> hold.accepted(live=3, max_jobs=10, now=400.0)  # room again: the limit follows
>>> hold.limit, hold.interval == PROBE_INTERVAL
(3, True)
>>> hold.report(max_jobs=10, now=400.0)["max_jobs"], hold.report(10, now=400.0 + 3600)
(3, None)
>>> hold.accepted(live=10, max_jobs=10, now=500.0); hold.limit is None
True
"""

from __future__ import annotations

from dataclasses import dataclass

#: After a refusal, the held limit rises by one job per this many seconds without another.
PROBE_INTERVAL = 60.0
#: The longest wait between two probes of a limit that keeps refusing.
MAX_INTERVAL = 900.0


@dataclass
class QueueHold:
    #: Jobs the scheduler takes from us now (None: no refusal seen, ``max_jobs`` holds).
    limit: int | None = None
    #: When the limit was set (a refusal, a submission above it).
    since: float = 0.0
    interval: float = PROBE_INTERVAL
    #: The last refusal, in the scheduler's words.
    reason: str | None = None

    def allowed(self, max_jobs: int, now: float) -> int:
        """How many jobs may be live on the machine at ``now``."""
        if self.limit is None:
            return max_jobs
        raised = self.limit + int(max(0.0, now - self.since) // self.interval)
        return min(max_jobs, raised)

    def refused(self, live: int, now: float, reason: str) -> None:
        """The scheduler refused a job for a limit while ``live`` of ours were in its queue."""
        probing = self.limit is not None and live >= self.limit
        self.interval = min(MAX_INTERVAL, self.interval * 2) if probing else PROBE_INTERVAL
        self.limit, self.since, self.reason = live, now, reason

    def accepted(self, live: int, max_jobs: int, now: float) -> None:
        """A job was taken; ``live`` of ours are in the queue now."""
        if self.limit is None or live <= self.limit:
            return
        if live >= max_jobs:
            self.limit, self.reason, self.interval = None, None, PROBE_INTERVAL
            return
        self.limit, self.since, self.interval = live, now, PROBE_INTERVAL

    def report(self, max_jobs: int, now: float) -> dict | None:
        """For ``hpcflow daemon status``: the limit now, since when it is held and why (None:
        no hold, or one that time has raised back to ``max_jobs``)."""
        allowed = self.allowed(max_jobs, now)
        if self.limit is None or allowed >= max_jobs:
            return None
        return {"max_jobs": allowed, "since": self.since, "reason": self.reason}
