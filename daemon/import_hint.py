"""A tip for local steps that spend their time importing: ``executors.local.preload``.

An OP that imports numpy pays for it in every step forked for it (75 ms, against ~10 ms for
the rest of a step on the machines this project is measured on); the config file's
``executors.local.preload`` has the fork server pay it once (6x faster a step,
benchmarks/README.md). Users who do not know the key see only slow steps, so the engine
looks at the first steps of each template on the local executor (what each imported, and
for how long: ``hpcflow.import_timing``) and, where imports are a large part of them, says
which modules to preload: once per workflow and template, in ``hpcflow status``.

No I/O here: the service gives each finished step's figures and records the tip it gets.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

#: Steps of a template looked at before deciding (then no more).
SAMPLE = 3
#: A tip when a step spends at least this long importing, on average...
LEAST_SECONDS = 0.02
#: ...and at least this share of its time.
LEAST_SHARE = 0.25
#: A module is named when it takes at least this share of the steps' import time.
NAMED_SHARE = 0.1
#: Templates remembered at once (the oldest decided are forgotten first).
REMEMBERED = 10_000


@dataclass
class _Tally:
    steps: int = 0
    step_seconds: float = 0.0
    imports: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class PreloadTip:
    """What to tell the user about a template's steps."""

    template: str
    #: Modules to preload, slowest first.
    modules: tuple[str, ...]
    #: Mean seconds a step spent importing, and the mean seconds of a step.
    import_seconds: float
    step_seconds: float

    def text(self, config_path: str) -> str:
        names = ", ".join(self.modules)
        listed = ", ".join(f'"{m}"' for m in self.modules)
        share = 100 * self.import_seconds / self.step_seconds if self.step_seconds else 100
        it = "it" if len(self.modules) == 1 else "them"
        return (f"steps of {self.template!r} spend {self.import_seconds * 1000:.0f} ms each "
                f"({share:.0f}% of their time) importing {names}: preload = [{listed}] under "
                f"[executors.local] in {config_path} has the fork server import {it} once for "
                "every step (executors.local.preload in hpcflow's config/README.md)")


class PreloadAdvisor:
    """Tallies the first ``SAMPLE`` steps of each (workflow, template) run by the local
    executor's fork server; ``observe`` returns a tip once, when they were mostly imports."""

    def __init__(self) -> None:
        self._tallies: OrderedDict[tuple[str, str], _Tally | None] = OrderedDict()

    def observe(self, workflow_id: str, template: str, imports: dict[str, float],
                step_seconds: float, preloaded: tuple[str, ...] = ()) -> PreloadTip | None:
        """One finished step: what it imported (seconds per module) and how long it ran.
        Modules already in ``preloaded`` are never named (their preload failed, which the
        daemon's log says)."""
        key = (workflow_id, template)
        if key not in self._tallies:
            self._tallies[key] = _Tally()
            while len(self._tallies) > REMEMBERED:
                self._tallies.popitem(last=False)
        tally = self._tallies[key]
        if tally is None:  # decided
            return None
        tally.steps += 1
        tally.step_seconds += max(0.0, step_seconds)
        for name, seconds in imports.items():
            if name not in preloaded:
                tally.imports[name] = tally.imports.get(name, 0.0) + seconds
        if tally.steps < SAMPLE:
            return None
        self._tallies[key] = None
        return decide(template, tally)


def decide(template: str, tally: _Tally) -> PreloadTip | None:
    """The tip for a template's tallied steps, if imports were a large part of them."""
    total = sum(tally.imports.values())
    per_step, step = total / tally.steps, tally.step_seconds / tally.steps
    if per_step < LEAST_SECONDS or (step > 0 and per_step < LEAST_SHARE * step):
        return None
    named = tuple(name for name, seconds in sorted(tally.imports.items(), key=lambda i: -i[1])
                  if seconds >= NAMED_SHARE * total)[:5]
    if not named:  # many small imports, none worth a line of its own: nothing to preload
        return None
    return PreloadTip(template, named, per_step, max(step, per_step))
