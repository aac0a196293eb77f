"""Which executor a leaf step goes to (the executor kind it names says how: the plugin
registry, ``connectors/plugins.py``), and how ready steps share scheduler jobs (pure).

>>> placement({"executor": {"kind": "batch", "scheduler": "slurm", "machine": "hpc",
...                         "resources": {"time": "1:00:00"}}})
('hpc', {'time': '1:00:00'})
>>> placement({"executor": None}), placement(None)
(('local', {}), ('local', {}))
"""

from __future__ import annotations

from typing import Any

from hpcflow.connectors.plugins import LOCAL, placement

__all__ = ["LOCAL", "pack_units", "placement"]


def pack_units(steps: list[tuple[Any, dict[str, Any]]], slots: int,
               can_pack: bool) -> list[list[tuple[Any, dict[str, Any]]]]:
    """Ready steps (row, resources) as at most ``slots`` scheduler jobs: steps whose
    executor asks for ``group_size=N`` share a job with up to N-1 others asking for the same
    resources; the others get one job each. ``group_size`` is taken out of the resources.

    >>> rows = [(i, {"group_size": 3, "time": "1"}) for i in range(7)] + [(7, {})]
    >>> [[r for r, _ in unit] for unit in pack_units(rows, 10, can_pack=True)]
    [[0, 1, 2], [3, 4, 5], [6], [7]]
    >>> [len(u) for u in pack_units(rows, 2, can_pack=True)], pack_units(rows, 9, False)[0]
    ([3, 3], [(0, {'time': '1'})])
    """
    units: list[list[tuple[Any, dict[str, Any]]]] = []
    open_packs: dict[str, tuple[int, int]] = {}  # resources -> (unit index, group size)
    for row, resources in steps:
        resources = dict(resources)
        size = int(resources.pop("group_size", 1) or 1) if can_pack else 1
        resources.pop("group_size", None)
        # Only steps of one template share a job: they then share its image too.
        template = row["template"] if hasattr(row, "keys") else None
        key = repr((template, sorted(resources.items())))
        if size > 1 and key in open_packs:
            index, _ = open_packs[key]
            units[index].append((row, resources))
            if len(units[index]) >= size:
                del open_packs[key]
            continue
        if len(units) >= slots:
            continue  # no queue slot for a new job; packs already open may still fill up
        units.append([(row, resources)])
        if size > 1:
            open_packs[key] = (len(units) - 1, size)
    return units
