"""Whether anything serves a home that has live workflows: the commands that show
workflows say so when nothing does (nothing may look alive that is not).

An engine serves a home when it runs on this host (its lock is held) or leads it from
another host (a leader lease not given up). A home run from cron has no engine between
ticks: each tick leaves its lease given up, stamped with when it ended, and a tick that
has not come for ``CRON_LATE`` seconds is late."""

from __future__ import annotations

import time
from pathlib import Path

from hpcflow.daemon.engine import engine_pid
from hpcflow.daemon.leader import LEADER_DIR, current_lease, this_host

#: A cron tick older than this (seconds) is late: the shipped crontab ticks every minute.
CRON_LATE = 600.0


def ago(seconds: float) -> str:
    """``"3 min ago"``.

    >>> ago(42), ago(600), ago(7300)
    ('42 s ago', '10 min ago', '2.0 h ago')
    """
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def unserved_note(home: Path, live: int, autostart: bool, now: float | None = None
                  ) -> str | None:
    """One line for stderr when ``live`` workflows wait in ``home`` and nothing serves it
    (None when something does, or nothing is live)."""
    if live <= 0 or engine_pid(home) is not None:
        return None
    now = time.time() if now is None else now
    lease = current_lease(home / LEADER_DIR)
    if lease is not None and not lease.released and lease.host != this_host():
        return None  # led from another login node (its engine beats there)
    what = f"{live} live workflow{'s' if live != 1 else ''}"
    if not autostart:  # cron ticks serve it
        if lease is None:
            return (f"hpcflow: no engine serves {home} and no cron tick has run yet ({what}): "
                    "install the crontab (manifests/cron) or run 'hpcflow daemon tick'")
        since = now - lease.at
        if since > CRON_LATE:
            return (f"hpcflow: the cron tick for {home} is late: it last ran "
                    f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(lease.at))} "
                    f"({ago(since)}); {what} wait: check 'crontab -l', or run "
                    "'hpcflow daemon tick'")
        return None
    return (f"hpcflow: no engine serves {home} ({what} wait): start one with "
            "'hpcflow daemon start'")
