"""A part of an artifact, as dflow's ``art[0]`` and ``art.sub_path("dir/file")`` give one.

``art[key]`` picks one of the artifact's paths: an index of its list (a loop's list of
lists read flat, as dflow's catalog lists it; one path counts as a list of one), a key of
its dict, ``"a.b"`` or ``art["a"]["b"]`` for nested ones. The consumer receives the whole
artifact, handed as that path (dflow downloads it whole too).

``art.sub_path(p)`` hands the consumer what lies at ``p`` inside the artifact: its input
is that file or folder itself, as Argo's ``subPath`` places it. A ``{{...}}`` reference
(a parameter, ``{{item}}``) in a key or a sub path is resolved when the consumer is planned.

Both travel in the artifact's reference next to ``parts`` and ``items``: ``items`` are
narrowed by the selection, ``sub_path`` says what the consumer gets.
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from hpcflow.errors import HpcflowError, WorkflowDefinitionError

_P = TypeVar("_P", bound="ArtifactPart")


class ArtifactPartError(HpcflowError):
    """A selected item or a sub path that the artifact does not have."""


class ArtifactPart:
    """dflow's ``__getitem__`` and ``sub_path`` on artifact references and stored artifacts:
    each gives a copy of the reference that names a part of the artifact."""

    _select: tuple[Any, ...] = ()
    _sub: str | None = None

    def __getitem__(self: _P, key: Any) -> _P:
        if isinstance(key, bool) or not isinstance(key, (int, str)):
            if "{{" not in str(key):
                raise WorkflowDefinitionError(
                    f"{self}[{key!r}]: an artifact is indexed by an int, a str key (\"a.b\" "
                    "for nested ones) or a parameter reference")
            key = str(key)
        if self._sub is not None:
            raise WorkflowDefinitionError(
                f"{self}: index the artifact before .sub_path(...), not after")
        part = copy.copy(self)
        part._select = (*self._select, key)
        return part

    def sub_path(self: _P, path: Any) -> _P:
        text = str(path).strip("/")
        if "{{" not in text:
            check_sub_path(text, str(self))
        part = copy.copy(self)
        part._sub = text if self._sub is None else f"{self._sub}/{text}"
        return part

    def part_spec(self) -> dict[str, Any]:
        """What the spec keeps of the part: ``select`` and ``sub_path`` when given."""
        spec: dict[str, Any] = {}
        if self._select:
            spec["select"] = list(self._select)
        if self._sub is not None:
            spec["sub_path"] = self._sub
        return spec


def check_sub_path(text: str, where: str) -> None:
    parts = PurePosixPath(text).parts
    if not text or text == "." or ".." in parts or PurePosixPath(text).is_absolute():
        raise WorkflowDefinitionError(
            f"{where}.sub_path({text!r}): give a path inside the artifact (relative, "
            "without '..')")


def narrow(ref: dict, select: list | tuple = (), sub_path: str | None = None,
           resolve: Callable[[str], Any] = str) -> dict:
    """``ref`` narrowed to the part: ``items`` picked by ``select``, ``sub_path`` joined to
    any it had. ``resolve`` renders a ``{{...}}`` key or sub path (the planner's scope)."""
    if not select and not sub_path:
        return ref
    out = {k: v for k, v in ref.items() if k != "slice_parts"}
    if select:
        if ref.get("sub_path"):
            raise ArtifactPartError(f"sub path {ref['sub_path']!r} of the artifact holds no "
                                    "list or dict to index")
        items = ref.get("items")
        for key in select:
            if isinstance(key, str) and "{{" in key:
                key = resolve(key)
            items = pick(items, key)
        out["items"] = items
    if sub_path:
        text = str(resolve(sub_path)) if "{{" in sub_path else sub_path
        text = text.strip("/")
        try:
            check_sub_path(text, "artifact")
        except WorkflowDefinitionError as exc:
            raise ArtifactPartError(str(exc)) from None
        joined = f"{ref['sub_path']}/{text}" if ref.get("sub_path") else text
        out["sub_path"] = joined
        # objects stored one by one: fetch only those under the sub path
        out["parts"] = [dict(p, sub=joined) if p.get("archive") is None and not p.get("sub")
                        else p for p in ref.get("parts", [])]
    return out


def pick(items: Any, key: Any) -> Any:
    """dflow's ``get_slices`` on the artifact's paths: ``key`` an int, a dict key, or a
    dotted path (``"a.0"``)."""
    if isinstance(key, str) and "." in key:
        for field in key.split("."):
            items = pick(items, field)
        return items
    if isinstance(items, str):
        items = [items]  # one path: dflow's catalog lists it as a list of one
    if isinstance(items, list) and any(x is None or isinstance(x, list) for x in items):
        from hpcflow.artifact_files import flatten_items

        items = flatten_items(items)  # a loop's lists: one flat list, as dflow's catalog
    if isinstance(items, list):
        index = key if isinstance(key, int) else int(key) if str(key).lstrip("-").isdigit() \
            else None
        if index is not None and -len(items) <= index < len(items):
            return items[index]
        raise ArtifactPartError(f"the artifact has no item {key!r} (it holds a list of "
                                f"{len(items)})")
    if isinstance(items, dict) and str(key) in items:
        return items[str(key)]
    held = f"keys {', '.join(map(repr, items))}" if isinstance(items, dict) else "no paths"
    raise ArtifactPartError(f"the artifact has no item {key!r} (it holds {held})")


def fetch_sub_path(ref: dict, dest: Path, storage: Any, staging: Path | None = None) -> Path:
    """Put what lies at ``ref["sub_path"]`` inside the artifact at ``dest`` (a file or a
    folder, as it is stored); an empty folder at ``dest`` is replaced."""
    from hpcflow.artifact_files import staging_dir, unpack

    sub = ref["sub_path"]
    with tempfile.TemporaryDirectory(prefix=".hpcflow-sub-",
                                     dir=staging or staging_dir()) as tmp:
        whole = Path(tmp) / "whole"
        unpack(ref, whole, storage, staging=Path(tmp))
        found = whole / sub
        if not (found.exists() or found.is_symlink()):
            held = sorted(p.name for p in whole.iterdir()) if whole.is_dir() else []
            raise ArtifactPartError(f"sub path {sub!r} is not in the artifact (its top "
                                    f"level holds: {', '.join(held) or 'nothing'})")
        if dest.is_dir() and not dest.is_symlink() and not any(dest.iterdir()):
            dest.rmdir()
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(os.fspath(found), os.fspath(dest))
    return dest


def present_sub_path(kind: str, root: Path) -> Any:
    """What an OP receives for a sub path staged at ``root``: the path for a ``Path`` sign,
    else a list of that one path (dflow hands ``[]``: the sub path carries no catalog)."""
    shape, as_str = kind.removesuffix(":str"), kind.endswith(":str")
    value: Any = str(root) if as_str else root
    if shape == "path":
        return value
    return {value} if shape == "set" else [value]
