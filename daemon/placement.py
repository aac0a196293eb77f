"""Which executor a leaf step goes to, from its step spec (pure).

>>> placement({"executor": {"kind": "batch", "scheduler": "slurm", "machine": "hpc",
...                         "resources": {"time": "1:00:00"}}})
('hpc', {'time': '1:00:00'})
>>> name, res = placement({"executor": {"kind": "dispatcher", "machine": "dp", "task": {},
...     "python": None, "container": None, "resources": {"group_size": 4, "queue_name": "q"}}})
>>> name, res["group_size"], res["dispatcher"]
('dp', 4, {'queue_name': 'q'})
>>> placement({"executor": {"kind": "step_machine", "machine": "ssh-slurm-ab12",
...                         "resources": {"extra_directives": ["-N 1"]}}})
('ssh-slurm-ab12', {'extra_directives': ['-N 1']})
>>> placement({"executor": None}), placement(None)
(('local', {}), ('local', {}))
"""

from __future__ import annotations

from typing import Any

LOCAL = "local"


def placement(spec: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """(executor name, resources): a machine of the config file, or ``local``."""
    wanted = (spec or {}).get("executor") or {}
    if wanted.get("kind") == "batch":
        return str(wanted.get("machine") or wanted["scheduler"]), dict(wanted.get("resources")
                                                                       or {})
    if wanted.get("kind") == "step_machine":  # a machine the workflow describes
        return str(wanted["machine"]), dict(wanted.get("resources") or {})
    if wanted.get("kind") == "dispatcher":
        # dpdispatcher's group_size (steps per job) is hpcflow's: steps that agree on all the
        # rest share one Submission and its one job.
        resources = dict(wanted.get("resources") or {})
        group_size = resources.pop("group_size", 1)
        return str(wanted["machine"]), {"group_size": group_size, "dispatcher": resources,
                                        "task": wanted.get("task") or {},
                                        "python": wanted.get("python"),
                                        "container": wanted.get("container")}
    return LOCAL, {}


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
