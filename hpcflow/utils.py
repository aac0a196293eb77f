"""dflow's ``dflow.utils`` for hpcflow: artifacts and storage keys, and small helpers.

Artifacts here are hpcflow's references (``{"parts": [...], "items": ...}``, see
``hpcflow.artifact_files``): an artifact's *catalog* (dflow's ``.dflow`` path list) is read
from the reference's ``items`` instead of from catalog files in the bucket. Storage calls go
through the configured storage client (``$HPCFLOW_HOME/artifacts`` by default, S3 when
configured, or ``s3_config["storage_client"]``), or the ``storage_client=`` given.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import string
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hpcflow import settings
from hpcflow.artifact_files import flatten_items, pack, staging_dir, unpack
from hpcflow.artifacts import (
    LocalArtifact,
    S3Artifact,
    StoredArtifact,
    download_artifact,
    upload_artifact,
)
from hpcflow.errors import HpcflowError

__all__ = ["LocalArtifact", "S3Artifact", "catalog_of_artifact", "copy_artifact", "copy_s3",
           "download_artifact", "download_s3", "flatten", "path_list_of_artifact",
           "path_object_of_artifact", "randstr", "run_command", "set_directory",
           "upload_artifact", "upload_s3"]


def _client(storage_client: Any = None) -> Any:
    return storage_client if storage_client is not None else settings.storage_client()


def _artifact(art: Any) -> StoredArtifact:
    if isinstance(art, StoredArtifact):
        return art
    if isinstance(art, dict) and "parts" in art:
        return StoredArtifact(art)
    raise HpcflowError(f"expected an artifact from upload_artifact or a step's outputs, got "
                       f"{art!r}")


# -- artifacts ------------------------------------------------------------------------------
def catalog_of_artifact(art: Any, **kwargs: Any) -> list[dict]:
    """The artifact's paths as dflow's catalog: ``[{"dflow_list_item": path, "order": i}]``
    (``order`` is the position in a list, or the flattened key of a dict)."""
    items = _artifact(art).ref.get("items")
    if items is None:
        return []
    if isinstance(items, dict):
        return [{"dflow_list_item": p, "order": k} for k, p in flatten(items).items()]
    if isinstance(items, list):
        return [{"dflow_list_item": p, "order": i}
                for i, p in enumerate(flatten_items(items))]
    return [{"dflow_list_item": items, "order": 0}]


def path_list_of_artifact(art: Any, **kwargs: Any) -> list[str]:
    """The artifact's paths (relative to its root) in catalog order."""
    return [str(item["dflow_list_item"]) for item in
            sorted(catalog_of_artifact(art), key=lambda item: str(item["order"]).zfill(12))]


def path_object_of_artifact(art: Any, **kwargs: Any) -> Any:
    """The artifact's paths in the shape they were given: one path, a list or a dict."""
    return _artifact(art).ref.get("items")


def copy_artifact(src: Any, dst: Any, sort: bool = False, **kwargs: Any) -> S3Artifact:
    """Add the files of ``src`` to ``dst`` in storage (dflow's server-side copy).

    ``dst`` keeps its key: later uses of ``dst``, or of ``S3Artifact(key=dst.key)``, see both
    sets of files. Its path list is ``dst``'s paths followed by ``src``'s (``sort`` only
    chooses that order in dflow; hpcflow always keeps it). Files ``src`` holds under the same
    path as ``dst`` replace them, as a copy onto the same key does in dflow.
    """
    source, target = _artifact(src), _artifact(dst)
    client = _client(kwargs.get("storage_client"))
    parts = target.ref.get("parts") or []
    if len(parts) != 1:
        raise HpcflowError(f"copy_artifact: the destination {target.key!r} is made of "
                           f"{len(parts)} stored parts; copy into an artifact from "
                           "upload_artifact or a step's (unsliced) output")
    part = parts[0]
    if part.get("archive") is None and all(p.get("archive") is None and not p.get("sub")
                                           for p in source.ref.get("parts") or []):
        for src_part in source.ref.get("parts") or []:
            copy_s3(src_part["key"], part["key"], storage_client=client)
    else:
        with tempfile.TemporaryDirectory(prefix="hpcflow-copy-", dir=staging_dir()) as tmp:
            root = Path(tmp)
            unpack(target.ref, root, client)
            unpack(source.ref, root, client)
            tops = sorted({rel.split("/")[0] for rel in
                           flatten_items(target.ref.get("items"))
                           + flatten_items(source.ref.get("items"))})
            if part.get("archive") == "tar":
                key = part["key"][:-len(".tgz")] if part["key"].endswith(".tgz") else part["key"]
                pack(tops, root, client, key, "tar", staging=root.parent)
            else:
                pack(tops, root, client, part["key"], None)
    target.ref = {"parts": parts, "items": _merged_items(target.ref.get("items"),
                                                         source.ref.get("items"))}
    return target


def _merged_items(first: Any, second: Any) -> Any:
    """``first``'s paths then ``second``'s, as a list (or a dict when both are dicts)."""
    if isinstance(first, dict) and isinstance(second, dict):
        return {**first, **second}
    as_list = [p for items in (first, second) for p in flatten_items(items)]
    return list(dict.fromkeys(as_list))


# -- storage keys ---------------------------------------------------------------------------
def upload_s3(path: str | os.PathLike, key: str | None = None, prefix: str | None = None,
              storage_client: Any = None, **kwargs: Any) -> str:
    """Upload a file, or a directory's files under ``key/``; returns the key.

    Without ``key``: ``prefix/NAME`` when ``prefix`` is given, else ``upload/UUID/NAME``.
    """
    client = _client(storage_client)
    source = Path(path)
    if key is None:
        key = (f"{prefix.rstrip('/')}/{source.name}" if prefix
               else f"upload/{uuid.uuid4().hex}/{source.name}")
    if source.is_file():
        client.upload(key, str(source))
    elif source.is_dir():
        for f in sorted(p for p in source.rglob("*") if p.is_file()):
            client.upload(f"{key.rstrip('/')}/{f.relative_to(source).as_posix()}", str(f))
    else:
        raise HpcflowError(f"upload_s3: no such file or directory: {path}")
    return key


def file_md5(path: Path) -> str:
    """The MD5 of a local file, as hex (compared with the storage's ``get_md5``)."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_s3(key: str, path: str | os.PathLike = ".", recursive: bool = True,
                skip_exists: bool = False, keep_dir: bool = False, storage_client: Any = None,
                **kwargs: Any) -> str:
    """Download ``key`` (an object, or with ``recursive`` every object under it) into
    ``path``; returns ``path`` (or the file's path for a single object).

    An object stored at exactly ``key`` lands as ``path/basename(key)``; objects under
    ``key/`` keep their path below it (below ``path/basename(key)`` with ``keep_dir``).
    ``skip_exists`` leaves a local file alone when its MD5 is the stored object's.
    """
    client = _client(storage_client)
    base = Path(path)
    name = key.rstrip("/").rsplit("/", 1)[-1]
    if not recursive:
        target = base / name
        client.download(key, str(target))
        return str(target)
    found = client.list(key.rstrip("/"), recursive=True)
    for obj in found:
        rel = obj[len(key.rstrip("/")):].lstrip("/")
        below = (base / name) if keep_dir else base
        target = (below / rel) if rel else base / name
        if skip_exists and target.is_file() and client.get_md5(obj) == file_md5(target):
            continue
        client.download(obj, str(target))
    return str(base)


def copy_s3(src_key: str, dst_key: str, recursive: bool = True, storage_client: Any = None,
            **kwargs: Any) -> None:
    """Copy an object, or every object under ``src_key/`` to the same path under
    ``dst_key/``, inside the storage (a server-side copy on S3)."""
    client = _client(storage_client)
    if not recursive:
        client.copy(src_key, dst_key)
        return
    src, dst = src_key.rstrip("/"), dst_key.rstrip("/")
    for obj in client.list(src, recursive=True):
        rel = obj[len(src):].lstrip("/")
        client.copy(obj, f"{dst}/{rel}" if rel else dst)


# -- helpers --------------------------------------------------------------------------------
def flatten(d: Any) -> dict[str, Any]:
    """Nested dicts and lists as one dict with dotted keys: ``{"a": [1, {"b": 2}]}`` is
    ``{"a.0": 1, "a.1.b": 2}``."""
    flat: dict[str, Any] = {}

    def walk(obj: Any, prefix: str) -> None:
        pairs = obj.items() if isinstance(obj, dict) else enumerate(obj)
        for k, v in pairs:
            name = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, (dict, list)):
                walk(v, name)
            else:
                flat[name] = v

    walk(d, "")
    return flat


def randstr(length: int = 5) -> str:
    """A random string of lowercase letters and digits (dflow's step-name suffixes)."""
    return "".join(random.choices(string.ascii_lowercase + string.digits, k=length))


@contextlib.contextmanager
def set_directory(dirname: str | os.PathLike, mkdir: bool = False) -> Iterator[Path]:
    """Work in ``dirname`` (made first with ``mkdir``) inside the block; yields its
    absolute path and goes back to the previous directory afterwards."""
    previous = os.getcwd()
    target = Path(dirname).resolve()
    if mkdir:
        target.mkdir(parents=True, exist_ok=True)
    os.chdir(target)
    try:
        yield target
    finally:
        os.chdir(previous)


def run_command(cmd: str | list, raise_error: bool = True, input: str | None = None,
                try_bash: bool = False, login: bool = True, interactive: bool = True,
                shell: bool = False, print_oe: bool = False, **kwargs: Any
                ) -> tuple[int, str, str]:
    """Run a command; returns ``(return code, stdout, stderr)``.

    A string is split on whitespace unless ``shell``; ``try_bash`` runs it through
    ``bash -lc`` (``-c`` when not ``login``). With ``raise_error`` (the default) a non-zero
    exit raises ``AssertionError`` with the command's stderr, as dflow's does. ``print_oe``
    also echoes the output once the command ends.
    """
    if isinstance(cmd, str):
        args: list[str] | str = cmd if shell else cmd.split()
    else:
        args = [str(c) for c in cmd]
        if shell:
            args = " ".join(args)
    if try_bash:
        text = args if isinstance(args, str) else " ".join(args)
        args = ["bash", "-lc" if (login and interactive) else "-c", text]
        shell = False
    done = subprocess.run(args, input=input, capture_output=True, text=True, shell=shell,
                          **kwargs)
    if print_oe:
        print(done.stdout, end="")
        print(done.stderr, end="")
    if raise_error:
        assert done.returncode == 0, f"command {cmd!r} failed ({done.returncode}):\n{done.stderr}"
    return done.returncode, done.stdout, done.stderr
