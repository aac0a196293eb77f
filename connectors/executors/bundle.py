"""hpcflow's in-job runner as one zip, shipped to machines that do not have hpcflow installed.

The runner needs only the standard library, hpcflow itself and cloudpickle (to load the
step's OP), all pure Python; Python imports straight from a zip on ``PYTHONPATH``. The
zip's name carries a hash of its contents, so it is uploaded once per version and a
changed hpcflow never runs with an old runner.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import zipfile
from functools import lru_cache
from pathlib import Path

#: Import name -> name inside the zip (hpcflow's three folders are one package there).
PACKAGES = {
    "hpcflow": "hpcflow",
    "hpcflow.daemon": "hpcflow/daemon",
    "hpcflow.connectors": "hpcflow/connectors",
    "cloudpickle": "cloudpickle",
}


def _sources() -> list[tuple[str, Path]]:
    files: list[tuple[str, Path]] = []
    for module, target in PACKAGES.items():
        root = Path(importlib.import_module(module).__path__[0])
        for path in sorted(root.rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            if module == "hpcflow" and rel.split("/")[0] in ("daemon", "connectors"):
                continue  # mapped from their own folders (editable installs link them here)
            files.append((f"{target}/{rel}", path))
    return files


@lru_cache(maxsize=1)
def runner_bundle() -> tuple[str, bytes]:
    """(file name, zip bytes) of the runner bundle of this hpcflow."""
    buffer = io.BytesIO()
    digest = hashlib.sha256()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, path in _sources():
            data = path.read_bytes()
            digest.update(name.encode() + b"\0" + data)
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    from hpcflow import __version__

    return f"hpcflow-{__version__}-{digest.hexdigest()[:16]}.zip", buffer.getvalue()
