"""``upload_artifact`` and ``download_artifact``: moving files between a user's disk and storage."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from hpcflow import settings as _config
from hpcflow.artifact_files import flatten_items, pack, unpack
from hpcflow.artifact_part import ArtifactPart, fetch_sub_path, narrow, pick
from hpcflow.errors import HpcflowError


class StoredArtifact(ArtifactPart):
    """An artifact in storage (dflow's ``S3Artifact``): a reference any step can take as input.

    ``S3Artifact(key=...)`` builds one from a storage key (``art.key`` of an earlier
    artifact, or a key written with ``upload_s3``): what it holds is read from the storage
    the first time it is used (a ``.tgz`` key is an archive, any other key the objects under
    it), and its paths are the top-level entries found there. ``art[0]`` and
    ``art.sub_path(p)`` give a part of it, as for a step's output.
    """

    def __init__(self, ref: dict | None = None, name: str | None = None,
                 key: str | None = None, **kwargs: Any) -> None:
        if ref is None and not key:
            raise HpcflowError("S3Artifact needs key= (a storage key) or a reference")
        self._ref = dict(ref) if ref is not None else None
        self._key = key
        self.name = name

    @property
    def base_ref(self) -> dict:
        """The whole artifact's reference (``ref`` is narrowed to ``art[...]``/``sub_path``)."""
        if self._ref is None:
            assert self._key is not None
            self._ref = ref_from_key(self._key, _config.storage_client())
        return self._ref

    @property
    def ref(self) -> dict:
        if self._ref is None:
            assert self._key is not None
            self._ref = ref_from_key(self._key, _config.storage_client())
        return narrow(self._ref, self._select, self._sub)

    @ref.setter
    def ref(self, value: dict) -> None:
        self._ref = value

    @property
    def key(self) -> str:
        if self._ref is None and self._key is not None:
            return self._key
        parts = self.ref.get("parts") or [{}]
        return str(parts[0].get("key", ""))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.key}>"


S3Artifact = StoredArtifact


class LocalArtifact(StoredArtifact):
    """An artifact in the local storage directory (dflow's debug-mode ``LocalArtifact``);
    ``local_path`` is where its first part is kept."""

    @property
    def local_path(self) -> str | None:
        root = getattr(_config.storage_client(), "root", None)
        return str(Path(root) / self.key) if root is not None and self.key else None


def ref_from_key(key: str, storage: Any) -> dict:
    """The reference of what storage holds at ``key``: a ``.tgz`` archive (its top-level
    members are the paths), else the objects under ``key/`` (their first path components)."""
    key = key.rstrip("/")
    if key.endswith(".tgz"):
        import tarfile
        import tempfile

        from hpcflow.artifact_files import staging_dir

        local = getattr(storage, "open_local", None)
        with tempfile.TemporaryDirectory(prefix="hpcflow-key-", dir=staging_dir()) as tmp:
            path = local(key) if local is not None else Path(tmp) / "a.tgz"
            if local is None:
                storage.download(key, str(path))
            with tarfile.open(path, "r:*") as tar:
                names = [m.name for m in tar.getmembers()]
        part: dict[str, Any] = {"key": key, "archive": "tar"}
    else:
        names = [obj[len(key):].lstrip("/") for obj in storage.list(key, recursive=True)]
        part = {"key": key, "archive": None}
    tops = sorted({n.split("/")[0] for n in names if n and n.split("/")[0] not in ("", ".")})
    if not tops:
        raise HpcflowError(f"S3Artifact(key={key!r}): nothing is stored at that key")
    return {"parts": [part], "items": tops[0] if len(tops) == 1 else tops}


def upload_artifact(files: Any, archive: str | None = "default", namespace: str | None = None,
                    **kwargs: Any) -> StoredArtifact:
    """Upload a path, a list of paths or a dict of paths; relative paths are kept."""
    if archive == "default":
        archive = _config.config.get("archive_mode", "tar")
    key = f"upload/{uuid.uuid4().hex}"
    storage = _config.storage_client()
    ref = pack(files, Path.cwd(), storage, key, archive)
    from hpcflow.connectors.storage.local import LocalStorageClient

    return LocalArtifact(ref) if isinstance(storage, LocalStorageClient) else S3Artifact(ref)


def _ref_of(artifact: Any) -> dict:
    ref = getattr(artifact, "ref", None)
    if ref is None and isinstance(artifact, dict) and "parts" in artifact:
        ref = artifact
    if ref is None:
        raise HpcflowError(
            f"download_artifact needs an artifact from upload_artifact or from a step's "
            f"outputs, got {artifact!r}"
        )
    return dict(ref)


def download_artifact(artifact: Any, extract: bool = True, sub_path: str | None = None,
                      slice: int | None = None, path: str | Path = ".",
                      remove_catalog: bool = True, skip_exists: bool = False,
                      **kwargs: Any) -> Any:
    """Download an artifact into ``path``, keeping relative paths; returns what dflow's does:
    the artifact's paths as ``str``s (``os.path.join(path, rel)``) in the shape it was made
    with (a list, one path as a list of one, a dict for ``Dict``/``NestedDict`` outputs, a
    loop's lists as one flat list).

    ``sub_path``/``slice``: only that path inside the artifact (``slice``: its item of that
    index), fetched to ``path/sub_path``, whose path is returned alone. ``extract=False``
    leaves archives packed (their paths are returned). ``skip_exists``: a file already in
    ``path`` with the stored file's MD5 is not fetched again (objects of an
    ``archive=None`` artifact; an archive is one object, always fetched).
    """
    if not isinstance(extract, bool):
        raise TypeError(f"download_artifact(artifact, {extract!r}): the second argument is "
                        "extract= (True/False), as in dflow: give the folder as path=")
    ref = _ref_of(artifact)
    target = Path(path)
    storage = _config.storage_client()
    if slice is not None:
        sub_path = str(pick(ref.get("items"), slice))
    if sub_path is not None or ref.get("sub_path"):
        part = narrow(ref, sub_path=sub_path) if sub_path is not None else ref
        dest = target / part["sub_path"]
        fetch_sub_path(part, dest, storage)
        return os.path.join(str(path), part["sub_path"]) if sub_path is not None \
            else [os.path.join(str(path), part["sub_path"])]
    if not ref.get("parts"):
        return []
    if not extract:
        return _download_packed(ref, target, storage)
    if skip_exists:
        _download_missing(ref, target, storage)
    else:
        unpack(ref, target, storage)
    return _as_dflow_lists(ref, str(path))


def _as_dflow_lists(ref: dict, path: str) -> Any:
    """dflow's path object of a downloaded artifact (``assemble_path_object``)."""
    def join(rel: Any) -> Any:
        if rel is None:
            return None
        if isinstance(rel, list):
            return [join(x) for x in rel]
        if isinstance(rel, dict):
            return {k: join(v) for k, v in rel.items()}
        return os.path.join(path, rel)

    items = ref.get("items")
    if items is None:
        return []
    if isinstance(items, str):
        return [join(items)]
    if isinstance(items, list) and "slice_parts" in ref:
        return [join(rel) for rel in flatten_items(items)]  # a loop's lists: one list
    return join(items)


def _download_packed(ref: dict, target: Path, storage: Any) -> list[str]:
    """``extract=False``: each archive as its ``.tgz`` file, other objects as stored."""
    got: list[str] = []
    plain = [p for p in ref["parts"] if p.get("archive") != "tar"]
    for part in ref["parts"]:
        if part.get("archive") == "tar":
            dest = target / Path(part["key"]).name
            dest.parent.mkdir(parents=True, exist_ok=True)
            storage.download(part["key"], str(dest))
            got.append(str(dest))
    if plain:
        unpack({"parts": plain}, target, storage)
        got += [os.path.join(str(target), rel) for rel in flatten_items(ref.get("items"))]
    return got


def _download_missing(ref: dict, target: Path, storage: Any) -> None:
    from hpcflow.artifact_files import UnsafeArchiveError
    from hpcflow.artifact_files import _inside as is_inside
    from hpcflow.utils import file_md5

    for part in ref["parts"]:
        if part.get("archive") == "tar":
            unpack({"parts": [part]}, target, storage)
            continue
        listed = f"{part['key']}/{part['sub']}" if part.get("sub") else part["key"]
        for obj in storage.list(listed, recursive=True):
            dest = target / obj[len(part["key"]):].lstrip("/")
            if not is_inside(dest, target):
                raise UnsafeArchiveError(f"refusing to write {obj!r} outside {target}")
            if not (dest.is_file() and storage.get_md5(obj) == file_md5(dest)):
                storage.download(obj, str(dest))
