"""Which executor a leaf step goes to (the executor kind it names says how: the plugin
registry, ``connectors/plugins.py``), and how ready steps share scheduler jobs (pure).

>>> placement({"executor": {"kind": "batch", "scheduler": "slurm", "machine": "hpc",
...                         "resources": {"time": "1:00:00"}}})
('hpc', {'time': '1:00:00'})
>>> placement({"executor": None}), placement(None)
(('local', {}), ('local', {}))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hpcflow.connectors.plugins import LOCAL, placement

__all__ = ["ARRAY", "GROUPING", "LOCAL", "PACK", "SINGLE", "Unit", "pack_units", "placement"]


#: How a Unit's steps go out: one job each, one job running them in turn (``group_size``),
#: or one array job with an element per step (``array_size``).
SINGLE, PACK, ARRAY = "single", "pack", "array"
#: The resources that say how steps share submissions (taken out of the job's resources).
GROUPING = ("group_size", "array_size", "array_throttle")


@dataclass
class Unit:
    """Ready steps (row, resources) that go out as one submission."""

    members: list[tuple[Any, dict[str, Any]]]
    kind: str = SINGLE
    #: At most this many of an array's elements run at once.
    throttle: int | None = None
    #: How many steps it may take.
    size: int = 1


def _grouping(resources: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """The step's own choice (any grouping key it gives), else its machine's; the machine's
    ``array_throttle`` caps arrays the step asks for without one."""
    own = {k: resources.pop(k) for k in GROUPING if k in resources}
    if not own:
        return {k: defaults[k] for k in GROUPING if defaults.get(k) is not None}
    if "array_throttle" not in own and defaults.get("array_throttle") is not None:
        own["array_throttle"] = defaults["array_throttle"]
    return own


def pack_units(steps: list[tuple[Any, dict[str, Any]]], slots: int, can_pack: bool,
               can_array: bool = False, defaults: dict[str, Any] | None = None) -> list[Unit]:
    """Ready steps (row, resources) as submissions within ``slots`` queue entries: steps of
    one template asking for the same resources share an array job (``array_size=N``: up to
    N elements, each a queue entry, at most ``array_throttle`` running at once) or a pack
    (``group_size=N``: up to N steps in one job, one queue entry); the others get one job
    each. A step's grouping keys win over its machine's (``defaults``); they are taken out
    of the resources. A group of one is a plain job.

    >>> rows = [(i, {"group_size": 3, "time": "1"}) for i in range(7)] + [(7, {})]
    >>> [[r for r, _ in u.members] for u in pack_units(rows, 10, can_pack=True)]
    [[0, 1, 2], [3, 4, 5], [6], [7]]
    >>> [len(u.members) for u in pack_units(rows, 2, can_pack=True)]
    [3, 3]
    >>> pack_units(rows, 9, False)[0].members
    [(0, {'time': '1'})]
    >>> arrays = pack_units([(i, {}) for i in range(5)], 4, True, True, {"array_size": 3,
    ...                                                                 "array_throttle": 2})
    >>> [([r for r, _ in u.members], u.kind, u.throttle) for u in arrays]
    [([0, 1, 2], 'array', 2), ([3], 'single', None)]
    """
    units: list[Unit] = []
    open_units: dict[str, Unit] = {}
    used = 0  # queue entries: one per job or pack, one per array element
    for row, asked in steps:
        resources = dict(asked)
        grouping = _grouping(resources, defaults or {})
        kind, size = SINGLE, 1
        if can_array and int(grouping.get("array_size") or 1) > 1:
            kind, size = ARRAY, int(grouping["array_size"])
        elif can_pack and int(grouping.get("group_size") or 1) > 1:
            kind, size = PACK, int(grouping["group_size"])
        throttle = grouping.get("array_throttle") if kind == ARRAY else None
        # Only steps of one template share a submission: they then share its image too.
        template = row["template"] if hasattr(row, "keys") else None
        key = repr((kind, throttle, template, sorted(resources.items())))
        unit = open_units.get(key)
        if unit is not None:
            if kind == ARRAY:
                if used >= slots:
                    continue
                used += 1
            unit.members.append((row, resources))
            if len(unit.members) >= unit.size:
                del open_units[key]
            continue
        if used >= slots:
            continue  # no queue entry for a new job; open packs may still fill up
        unit = Unit([(row, resources)], kind, throttle, size)
        units.append(unit)
        used += 1
        if kind != SINGLE:
            open_units[key] = unit
    for unit in units:
        if len(unit.members) == 1:
            unit.kind, unit.throttle = SINGLE, None
    return units
