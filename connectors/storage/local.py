"""``LocalStorageClient``: artifacts as files under one directory (the embedded default)."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hpcflow.connectors.storage.base import StorageClient, check_key
from hpcflow.errors import NotFoundError
from hpcflow.privacy import private_umask


class LocalStorageClient(StorageClient):
    """Keys map to files under ``root``; writes are atomic (temp file, then rename)."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalStorageClient({self.root})"

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def upload(self, key: str, path: str) -> None:
        target = self._path(key)
        with private_umask():  # stored objects are the user's only, whatever the umask
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            shutil.copyfile(path, tmp)
        os.replace(tmp, target)

    def download(self, key: str, path: str) -> None:
        source = self._path(key)
        if not source.is_file():
            raise NotFoundError(f"artifact object {key!r} is not in storage {self.root}")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, path)

    def open_local(self, key: str) -> Path:
        """The file itself, for readers on the same filesystem (saves a copy)."""
        source = self._path(key)
        if not source.is_file():
            raise NotFoundError(f"artifact object {key!r} is not in storage {self.root}")
        return source

    def list(self, prefix: str, recursive: bool = False) -> list[str]:
        base = self.root / prefix if prefix else self.root
        if base.is_file():
            return [prefix]
        if not base.is_dir():
            return []
        found: list[str] = []
        walker = base.rglob("*") if recursive else base.iterdir()
        for entry in walker:
            if entry.is_file() or not recursive:
                found.append(entry.relative_to(self.root).as_posix())
        return sorted(found)

    def copy(self, src: str, dst: str) -> None:
        target = self._path(dst)
        with private_umask():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self._path(src), target)

    def get_md5(self, key: str) -> str:
        digest = hashlib.md5()
        with open(self._path(key), "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()

    def delete_prefix(self, prefix: str) -> int:
        base = self._path(prefix.rstrip("/"))
        if base.is_file():
            base.unlink()
            return 1
        if not base.is_dir():
            return 0
        count = sum(1 for entry in base.rglob("*") if entry.is_file())
        shutil.rmtree(base)
        return count

    def delete_keys(self, keys: Sequence[str]) -> int:
        """Delete these files, and the directories they leave empty."""
        count = 0
        for key in keys:
            path = self._path(key)
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            count += 1
            for parent in path.parents:
                if parent == self.root or self.root not in parent.parents:
                    break
                try:
                    parent.rmdir()
                except OSError:  # not empty
                    break
        return count

    def to_spec(self) -> dict[str, Any]:
        return {"kind": "local", "root": str(self.root)}
