"""dflow's HDF5 artifact types: ``HDF5Datasets`` (a sign) and ``HDF5Dataset`` (one entry).

``HDF5Datasets`` is a type for signs, as in dflow. An OP whose input sign is
``Artifact(HDF5Datasets)`` (or ``Union[X, HDF5Datasets]`` given only ``.h5`` files) receives
the datasets of the artifact's ``.h5`` files (``read_datasets``): a list of ``HDF5Dataset``
when every file holds datasets ``"0"``, ``"1"``..., else a dict (dotted keys nested), ``None``
for a stored ``None``. An output declared ``Artifact(HDF5Datasets)`` is written as one ``.h5``
file (``write_datasets``): each path a dataset holding the file's text or bytes (a folder, its
``.tgz``), each other value as data, with dflow's attributes (``type`` = ``file``/``dir``/
``null``/``data``, ``path``, ``dtype``). ``HDF5Dataset`` is one dataset: applications test
``isinstance(x, HDF5Dataset)`` and call ``get_data()``/``recover()``. All of it needs
``h5py`` (``pip install 'hpcflow[hdf5]'``), imported only then.
"""

from __future__ import annotations

import io
import os
import tarfile
import types
import uuid
from pathlib import Path
from typing import Any, Union, get_args, get_origin

from hpcflow.errors import HpcflowError


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


def h5py_module() -> Any:
    """``h5py``, or one line saying how to get it."""
    try:
        import h5py
    except ImportError:
        raise HpcflowError("HDF5Datasets artifacts need h5py where the step runs: pip install "
                           "'hpcflow[hdf5]' (or h5py)") from None
    return h5py


def accepts_hdf5(type_: Any) -> bool:
    """``HDF5Datasets``, or a ``Union`` naming it."""
    if type_ is HDF5Datasets:
        return True
    return get_origin(type_) in (Union, types.UnionType) and HDF5Datasets in get_args(type_)


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in _leaves(v)]
    if isinstance(value, (list, tuple, set, frozenset)):
        return [x for v in value for x in _leaves(v)]
    return [value]


def written_as_hdf5(type_: Any, value: Any) -> bool:
    """An output stored as an ``.h5`` file: always for ``HDF5Datasets``; for a ``Union``
    with it, when the value holds more than paths (datasets, data, ``None``)."""
    if type_ is HDF5Datasets:
        return True
    if not accepts_hdf5(type_):
        return False
    from hpcflow.python.typecheck import path_like

    return not all(path_like(x) for x in _leaves(value))


def as_dflow_hands(type_: Any, value: Any) -> Any:
    """An input for an ``HDF5Datasets``-accepting sign, as dflow hands it: the datasets of
    its files when the sign is ``HDF5Datasets``, or a ``Union`` given only ``.h5`` files;
    else ``value`` (the paths) unchanged."""
    paths = [p for p in _leaves(value) if p is not None]
    if value is None or not paths:
        return value
    if type_ is not HDF5Datasets and not all(str(p).endswith(".h5") for p in paths):
        return value
    return read_datasets([Path(p) for p in paths])


def read_datasets(paths: list[Path]) -> Any:
    """The datasets of the ``.h5`` files, in dflow's shape: their lists one after the other
    while every file holds ``"0"``..``"n-1"``, else one dict (dotted keys nested)."""
    h5py = h5py_module()
    found: list[Any] | dict[str, Any] = []
    for path in paths:
        handle = h5py.File(path, "r")  # left open: the datasets are read when used
        datasets: dict[str, HDF5Dataset | None] = {}
        for key in handle:
            dataset = HDF5Dataset(handle, key)
            datasets[key] = None if dataset.is_none() else dataset
        if isinstance(found, list) and set(datasets) == {str(i) for i in range(len(datasets))}:
            found += [datasets[str(i)] for i in range(len(datasets))]
            continue
        if isinstance(found, list):
            found = {str(i): d for i, d in enumerate(found)}
        found.update(datasets)
    return _expand(found) if isinstance(found, dict) else found


def _expand(flat: dict[str, Any]) -> Any:
    """``{"a.b": x, "a.c": y}`` -> ``{"a": {"b": x, "c": y}}``; a dict keyed ``0..n`` a list."""
    tree: dict[str, Any] = {}
    for key, value in flat.items():
        *path, last = str(key).split(".")
        node = tree
        for field in path:
            node = node.setdefault(field, {})
        node[last] = value
    return _listed(tree)


def _listed(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    node = {k: _listed(v) for k, v in node.items()}
    if node and all(k.isdigit() for k in node):
        size = max(int(k) for k in node) + 1
        return [node.get(str(i)) for i in range(size)]
    return node


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """dflow's dotted keys of a list or dict (``{"a": [x]}`` -> ``{"a.0": x}``)."""
    if isinstance(value, dict):
        pairs = [(str(k), v) for k, v in value.items()]
    elif isinstance(value, (list, tuple)):
        pairs = [(str(i), v) for i, v in enumerate(value)]
    else:
        return {prefix or "0": value}
    flat: dict[str, Any] = {}
    for key, item in pairs:
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(item, (dict, list, tuple)):
            flat.update(_flatten(item, name))
        else:
            flat[name] = item
    return flat


def write_datasets(value: Any, folder: Path) -> Path:
    """``value`` (paths, datasets, data, ``None``, in a list or dict) as one new ``.h5`` file
    in ``folder``, as dflow writes an ``HDF5Datasets`` output; relative paths are taken from
    the working directory and stored absolute, as dflow stores them."""
    h5py = h5py_module()
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{uuid.uuid4()}.h5"
    with h5py.File(target, "w") as out:
        for key, item in _flatten(value).items():
            if isinstance(item, HDF5Dataset):
                made = out.create_dataset(key, data=item.dataset[()])
                made.attrs.update(item.dataset.attrs)
            elif item is None:
                made = out.create_dataset(key, data="")
                made.attrs["type"] = "null"
            elif isinstance(item, Path):
                path = item.absolute()
                if path.is_dir():
                    packed = io.BytesIO()
                    with tarfile.open(fileobj=packed, mode="w:gz", dereference=True) as tar:
                        tar.add(path, arcname=os.path.relpath(path, path.anchor))
                    made = out.create_dataset(key, data=np.void(packed.getvalue()))
                    made.attrs.update(type="dir", path=str(path), dtype="binary")
                elif path.is_file():
                    raw = path.read_bytes()
                    try:
                        made = out.create_dataset(key, data=raw.decode("utf-8"))
                        made.attrs.update(type="file", path=str(path), dtype="utf-8")
                    except UnicodeDecodeError:
                        made = out.create_dataset(key, data=np.void(raw))
                        made.attrs.update(type="file", path=str(path), dtype="binary")
                else:
                    raise HpcflowError(f"HDF5Datasets output: {item} does not exist")
            else:
                made = out.create_dataset(key, data=item)
                made.attrs["type"] = "data"
                if isinstance(item, str):
                    made.attrs["dtype"] = "utf-8"
    return target
