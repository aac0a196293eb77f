"""Which machines the engine cannot reach right now, since when and why: kept by the service
(a poll or a submission that raised ``TransportError``), cleared by the next call that gets
through, and written to the status file for ``hpcflow status`` and ``hpcflow daemon status``
(an OpenSSH machine's reason names the command that logs in again)."""

from __future__ import annotations

import logging
import time

log = logging.getLogger("hpcflow.engine")


class Reachability:
    def __init__(self) -> None:
        #: machine -> (since, the last reason)
        self.unreachable: dict[str, tuple[float, str]] = {}

    def lost(self, name: str, reason: object) -> bool:
        """Record ``name`` as unreachable for ``reason``; True if it was reachable before
        (then the caller logs it; a machine down for hours is not logged every poll)."""
        new = name not in self.unreachable
        since = time.time() if new else self.unreachable[name][0]
        self.unreachable[name] = (since, str(reason))
        return new

    def reached(self, name: str) -> None:
        if self.unreachable.pop(name, None) is not None:
            log.info("%s is reachable again", name)

    def report(self) -> dict:
        """``{"unreachable": {machine: {"since", "reason"}}}`` (empty if every machine
        answers)."""
        if not self.unreachable:
            return {}
        return {"unreachable": {name: {"since": since, "reason": reason}
                                for name, (since, reason) in sorted(self.unreachable.items())}}

