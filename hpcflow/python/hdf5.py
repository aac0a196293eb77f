"""dflow's HDF5 artifact types: ``HDF5Datasets`` (a sign) and ``HDF5Dataset`` (one entry).

``HDF5Datasets`` is a type only, as in dflow: signs such as
``Artifact(Union[List[Path], HDF5Datasets])`` name it, and hpcflow passes such artifacts as
lists of files. ``HDF5Dataset`` is one dataset of an HDF5 file, with the attributes dflow's
writer sets (``type`` = ``file``/``dir``/``null``/value, ``path``, ``dtype``): applications
test ``isinstance(x, HDF5Dataset)`` and call ``get_data()``/``recover()`` on what they get.
Reading one needs ``h5py``, imported only then.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class HDF5Datasets:
    """Marker for an artifact given as HDF5 datasets (used in OP signs)."""


class HDF5Dataset:
    """One dataset of an open HDF5 file (``file[key]``), read when asked."""

    def __init__(self, file: Any, key: str) -> None:
        self.file = file
        self.key = key

    @property
    def dataset(self) -> Any:
        return self.file[self.key]

    def __deepcopy__(self, memo: Any = None) -> HDF5Dataset:
        return self  # an open file handle is shared, never copied

    def is_none(self) -> bool:
        return bool(self.dataset.attrs.get("type") == "null")

    def get_data(self) -> Any:
        """The stored value: ``None``, ``str`` (utf-8), ``bytes`` (binary) or as stored."""
        if self.is_none():
            return None
        data = self.dataset[()]
        kind = self.dataset.attrs.get("dtype")
        if kind == "utf-8":
            return data.decode("utf-8")
        if kind == "binary":
            return data.tobytes()
        return data

    def recover(self) -> Any:
        """Write a stored file or directory back under the working directory (an absolute
        stored path is taken relative to ``/``) and return its path; other values as
        ``get_data()``."""
        kind = self.dataset.attrs.get("type")
        if kind not in ("file", "dir"):
            return self.get_data()
        path = Path(str(self.dataset.attrs["path"]))
        if path.is_absolute():
            path = path.relative_to(path.anchor)
        if ".." in path.parts:
            raise ValueError(f"HDF5 dataset {self.key!r}: stored path {path} leaves the "
                             "working directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        data = self.get_data()
        if kind == "file":
            if isinstance(data, str):
                path.write_text(data)
            else:
                path.write_bytes(bytes(data))
            return path
        from hpcflow.artifact_files import safe_extract

        packed = path.parent / f"{path.name}.tgz"
        packed.write_bytes(bytes(data))
        safe_extract(packed, Path("."))
        return path
