"""Packing paths into artifacts and unpacking them, with dflow's path rules.

An artifact reference is plain JSON, kept in the store and in step files::

    {"parts": [{"key": "wf/x/step-3/bar.tgz", "archive": "tar"}],
     "items": "bar.txt"}           # or ["a", "b"], or {"k": "a", ...}

``items`` keeps the shape the producer gave (one path, a list, a dict) with
each path relative to the artifact root; ``parts`` are the stored objects that
together hold the tree (several parts once sliced outputs are merged).
"""

from __future__ import annotations

import gzip
import os
import tarfile
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from hpcflow.errors import HpcflowError
from hpcflow.privacy import current_umask

Items = Any  # str | list[Items] | dict[str, Items] | None


class UnsafeArchiveError(HpcflowError):
    """An archive holds a member that would land outside the extraction directory."""


class OutsideLinkError(HpcflowError):
    """A path to be packed is, or holds, a symlink that points outside the artifact."""


def relative_name(path: Path, base: Path) -> str:
    """dflow's rule: relative to ``base`` when inside it, else the absolute path without '/'."""
    absolute = Path(os.path.abspath(path))
    try:
        rel = absolute.relative_to(Path(os.path.abspath(base)))
        text = rel.as_posix()
    except ValueError:
        text = absolute.as_posix().lstrip("/")
    return text or "."


def _map_items(structure: Any, fn: Any) -> Items:
    if structure is None:
        return None
    if isinstance(structure, (list, tuple)):
        return [_map_items(x, fn) for x in structure]
    if isinstance(structure, (set, frozenset)):  # Artifact(Set[Path]): in a stable order
        return [_map_items(x, fn) for x in sorted(structure, key=str)]
    if isinstance(structure, dict):
        return {str(k): _map_items(v, fn) for k, v in structure.items()}
    return fn(structure)


def flatten_items(items: Items) -> list[str]:
    if items is None:
        return []
    if isinstance(items, list):
        return [n for x in items for n in flatten_items(x)]
    if isinstance(items, dict):
        return [n for x in items.values() for n in flatten_items(x)]
    return [items]


def staging_dir() -> Path:
    """Where archives are staged on their way to or from storage, outside a step:
    ``$HPCFLOW_SCRATCH`` (or ``config["scratch"]``), else ``$HPCFLOW_HOME/tmp``; never the
    system's ``/tmp``, often small and shared on login nodes. A step stages in its own
    directory."""
    from hpcflow import settings
    from hpcflow.privacy import private_umask

    where = os.environ.get("HPCFLOW_SCRATCH") or settings.config.get("scratch")
    folder = Path(os.path.expanduser(str(where))) if where else settings.home() / "tmp"
    with private_umask():  # the folders on the way too: often the home itself, not made yet
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder


def pack(structure: Any, base: Path, storage: Any, key: str, archive: str | None,
         prefix: str = "", staging: Path | None = None, copy_within: Path | None = None
         ) -> dict:
    """Upload the paths in ``structure`` (relative to ``base``, under ``prefix/`` in the
    artifact if given) and return the reference; an archive is made in ``staging`` (by
    default ``staging_dir()``). A symlink leading out of the artifact into ``copy_within``
    (a step's own directory: its inputs, its workdir) is stored as what it points at."""
    sources: dict[str, Path] = {}

    def name_of(p: Any) -> str:
        path = Path(p)
        if not path.is_absolute():
            path = base / path
        if not path.exists():
            raise HpcflowError(f"artifact path {str(p)!r} does not exist (looked in {base})")
        rel = relative_name(path, base)
        if prefix:
            rel = f"{prefix}/{rel}"
        sources[rel] = path
        return rel

    items = _map_items(structure, name_of)
    copied = check_links(sources, copy_within)
    parts: list[dict[str, Any]]
    if archive == "tar":
        with tempfile.TemporaryDirectory(prefix="hpcflow-pack-",
                                         dir=staging or staging_dir()) as tmp:
            tar_path = Path(tmp) / "a.tgz"
            # gzip without a timestamp: the same files give the same bytes, so content
            # addressing (S3) finds an artifact that is already stored
            with open(tar_path, "wb") as raw, \
                    gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=1,
                                  mtime=0) as packed, \
                    tarfile.open(fileobj=packed, mode="w") as tar:
                for rel, src in sources.items():
                    _add_to_tar(tar, src, rel, copied)
            storage.upload(f"{key}.tgz", str(tar_path))
        parts = [{"key": f"{key}.tgz", "archive": "tar"}]
    else:
        for rel, src in sources.items():
            for f, suffix in _files_to_upload(src, rel, copied):
                storage.upload(f"{key}/{suffix}", str(f))
        parts = [{"key": key, "archive": None}]
    return {"parts": parts, "items": items}


def check_links(sources: dict[str, Path], copy_within: Path | None = None) -> set[Path]:
    """Refuse a symlink among ``sources`` (artifact name -> path) that leads out of them,
    unless it leads into ``copy_within``: those are returned, to be stored as what they
    point at (as dflow copies an output that links to the step's own input).

    Both archive modes refuse the same links, before anything is uploaded: a tar archive
    would carry the link and its consumer would refuse to extract it, and ``archive=None``
    would upload whatever the link points at. A link is kept only when it is relative and
    leads, both as written and once resolved on this host, into one of the sources.
    """
    roots = [os.path.abspath(p) for p in sources.values()]
    real_roots = [os.path.join(os.path.realpath(os.path.dirname(r)), os.path.basename(r))
                  for r in roots]
    copied: set[Path] = set()
    for rel, src in sources.items():
        for link in _links_in(src):
            text = os.readlink(link)
            written = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(link)),
                                                    text))
            if os.path.isabs(text) or not any(_inside(written, r) for r in roots) or \
                    not any(_inside(os.path.realpath(link), r) for r in real_roots):
                if _copyable(link, copy_within):
                    copied.add(link)
                    continue
                name = rel if link == src else f"{rel}/{link.relative_to(src).as_posix()}"
                raise OutsideLinkError(
                    f"artifact path {name!r} is a symlink to {text!r}, outside the artifact: "
                    "copy what it points at into the artifact, or make the link relative "
                    "to a file inside it")
    return copied


def _copyable(link: Path, copy_within: Path | None) -> bool:
    """A link whose target exists inside ``copy_within`` and is a file, or a folder with no
    links of its own (a folder's links could lead anywhere)."""
    if copy_within is None:
        return False
    target = os.path.realpath(link)
    if not _inside(target, os.path.realpath(copy_within)) or not os.path.exists(target):
        return False
    return os.path.isfile(target) or not _links_in(Path(target))


def _add_to_tar(tar: tarfile.TarFile, src: Path, rel: str, copied: set[Path]) -> None:
    """``tar.add``, with each link in ``copied`` stored as what it points at."""
    if src in copied:
        tar.dereference = True
        try:
            tar.add(src, arcname=rel)
        finally:
            tar.dereference = False
        return
    inner = {f"{rel}/{link.relative_to(src).as_posix()}": link for link in copied
             if _inside(link, src) and link != src}
    tar.add(src, arcname=rel, filter=lambda info: None if info.name in inner else info)
    for name, link in inner.items():
        _add_to_tar(tar, link, name, copied)


def _files_to_upload(src: Path, rel: str, copied: set[Path]) -> list[tuple[Path, str]]:
    """The files under ``src`` with their names in the artifact (``archive=None``), a
    folder in ``copied`` read through its link."""
    if src.is_file():
        return [(src, rel)]
    if src in copied:
        real = Path(os.path.realpath(src))
        return [(f, f"{rel}/{f.relative_to(real).as_posix()}") for f in real.rglob("*")
                if f.is_file()]
    found: list[tuple[Path, str]] = []
    for folder, dirs, files in os.walk(src):
        for name in files:
            path = Path(folder, name)
            found.append((path, f"{rel}/{path.relative_to(src).as_posix()}"))
        for name in dirs:
            path = Path(folder, name)
            if path in copied:
                found += _files_to_upload(path, f"{rel}/{path.relative_to(src).as_posix()}",
                                          copied)
    return [(f, name) for f, name in found if f.is_file()]


def _links_in(src: Path) -> list[Path]:
    """``src`` if it is a symlink, else every symlink under it (not following any)."""
    if src.is_symlink():
        return [src]
    links: list[Path] = []
    if src.is_dir():
        for folder, dirs, files in os.walk(src):
            links += [Path(folder, n) for n in dirs + files if Path(folder, n).is_symlink()]
    return links


def _check_member(member: tarfile.TarInfo, target: Path) -> None:
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts:
        raise UnsafeArchiveError(
            f"refusing to extract {member.name!r}: absolute paths and '..' are not allowed"
        )
    if member.issym() or member.islnk():
        link = PurePosixPath(member.linkname)
        dest = (target / name.parent / link) if member.issym() else (target / link)
        if link.is_absolute() or not _inside(dest, target):
            raise UnsafeArchiveError(
                f"refusing to extract link {member.name!r} -> {member.linkname!r}: it leaves "
                "the artifact directory"
            )
    if member.isdev():
        raise UnsafeArchiveError(f"refusing to extract device file {member.name!r}")


def _inside(path: str | Path, root: str | Path) -> bool:
    resolved = os.path.normpath(os.path.abspath(path))
    base = os.path.normpath(os.path.abspath(root))
    return resolved == base or resolved.startswith(base + os.sep)


def safe_extract(tar_path: str | Path, target: Path) -> None:
    """Extract a tar archive, refusing members that would escape ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    # as tar does for ordinary users: the archive's modes under this process's umask (a
    # runner's is 077, so nothing extracted for a step is readable by others)
    umask = current_umask()
    with tarfile.open(tar_path, "r:*") as tar:
        members = tar.getmembers()
        for member in members:
            _check_member(member, target)
            member.mode &= ~umask
        if hasattr(tarfile, "data_filter"):
            tar.extractall(target, members=members, filter="data")
        else:  # pragma: no cover - Python < 3.10.12
            tar.extractall(target, members=members)


def unpack(ref: dict, target: Path, storage: Any, staging: Path | None = None) -> None:
    """Fetch every part of an artifact into ``target`` (a downloaded archive is staged in
    ``staging``, by default ``staging_dir()``)."""
    target.mkdir(parents=True, exist_ok=True)
    for part in ref.get("parts", []):
        key = part["key"]
        if part.get("archive") == "tar":
            local = getattr(storage, "open_local", None)
            if local is not None:
                safe_extract(local(key), target)
                continue
            with tempfile.TemporaryDirectory(prefix="hpcflow-unpack-",
                                             dir=staging or staging_dir()) as tmp:
                tmp_tar = Path(tmp) / "a.tgz"
                storage.download(key, str(tmp_tar))
                safe_extract(tmp_tar, target)
        else:
            # ``sub`` narrows the part to one slice's files (Slices(sub_path=True)).
            listed = f"{key}/{part['sub']}" if part.get("sub") else key
            for obj in storage.list(listed, recursive=True):
                rel = obj[len(key):].lstrip("/")
                dest = target / rel
                if not _inside(dest, target):
                    raise UnsafeArchiveError(f"refusing to write {obj!r} outside {target}")
                storage.download(obj, str(dest))


def materialise(items: Items, root: Path) -> Any:
    """The items of an artifact as paths under ``root``, keeping their shape."""
    return _map_items(items, lambda rel: root / rel)


def present(items: Items, kind: str, root: Path) -> Any:
    """What an OP with sign kind ``kind`` receives for an artifact unpacked at ``root``:
    ``Path``s, or ``str``s where the sign's leaves are ``str`` (``"list:str"``), as dflow."""
    shape, as_str = kind.removesuffix(":str"), kind.endswith(":str")
    value = _shaped(items, shape, root)
    if as_str:
        value = _map_items(value, str) if not isinstance(value, set) else {str(p) for p in value}
    return value


def _shaped(items: Items, kind: str, root: Path) -> Any:
    paths = materialise(items, root)
    if kind == "path":
        if isinstance(paths, Path):
            return paths
        flat = flatten_items(items)
        return root / flat[0] if len(flat) == 1 else root
    if kind in ("list", "set"):
        if isinstance(paths, list):
            if any(p is None or isinstance(p, list) for p in paths):
                # a loop's items, some lists, some missing: one flat list of what is there,
                # as dflow's catalog of the merged artifact lists it
                paths = [root / rel for rel in flatten_items(items)]
        elif isinstance(paths, dict):
            paths = list(paths.values())
        else:
            paths = [paths]
        return set(paths) if kind == "set" else paths
    if kind in ("dict", "nested"):
        # dflow hands a Dict/NestedDict sign what was given: a dict, a list as a list (a
        # Dict sign's check then refuses it), one path as a list of one (its catalog's)
        if isinstance(paths, (dict, list)):
            return paths
        return [paths]
    return paths
