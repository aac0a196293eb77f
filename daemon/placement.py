"""Which executor a leaf step goes to, from its step spec (pure).

>>> placement({"executor": {"kind": "batch", "scheduler": "slurm", "machine": "hpc",
...                         "resources": {"time": "1:00:00"}}})
('hpc', {'time': '1:00:00'})
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
    return LOCAL, {}
