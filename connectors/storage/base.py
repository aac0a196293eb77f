"""The ``StorageClient`` protocol (dflow's five methods) and the registry of clients."""

from __future__ import annotations

import abc
import re
from collections.abc import Sequence
from typing import Any

from hpcflow.errors import HpcflowError

_KEY = re.compile(r"^[A-Za-z0-9._/=+-]+$")


def check_key(key: str) -> str:
    """Keys are relative, normalised and free of shell- or path-hostile characters."""
    parts = key.split("/")
    if (not key or not _KEY.match(key) or key.startswith("/")
            or any(p in ("", ".", "..") for p in parts)):
        raise HpcflowError(f"storage key {key!r} is not allowed: use relative a/b/c keys of "
                           "letters, digits and ._=+-")
    return key


class StorageClient(abc.ABC):
    """Where artifacts are kept. Keys are ``/``-separated relative names."""

    @abc.abstractmethod
    def upload(self, key: str, path: str) -> None:
        """Store the file at ``path`` under ``key``."""

    @abc.abstractmethod
    def download(self, key: str, path: str) -> None:
        """Write the object ``key`` to the file ``path`` (parents are created)."""

    @abc.abstractmethod
    def list(self, prefix: str, recursive: bool = False) -> list[str]:
        """Keys under ``prefix``; with ``recursive=False`` only its direct children."""

    @abc.abstractmethod
    def copy(self, src: str, dst: str) -> None:
        """Copy one object to another key on the storage side."""

    def get_md5(self, key: str) -> str:
        raise NotImplementedError

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix`` (``hpcflow gc``); how many there were."""
        raise NotImplementedError

    def delete_keys(self, keys: Sequence[str]) -> int:
        """Delete these objects (``hpcflow gc`` sparing objects still referenced); how many."""
        return sum(self.delete_prefix(key) for key in keys)

    def to_spec(self) -> dict[str, Any]:
        """How a step process rebuilds this client (never holds secrets)."""
        raise NotImplementedError


def storage_from_spec(spec: dict[str, Any]) -> StorageClient:
    kind = spec.get("kind")
    if kind == "local":
        from hpcflow.connectors.storage.local import LocalStorageClient

        return LocalStorageClient(spec["root"])
    if kind == "s3":
        from hpcflow.connectors.storage.s3 import S3StorageClient

        return S3StorageClient.from_spec(spec)
    if kind == "pickle":
        import base64
        import pickle

        client = pickle.loads(base64.b64decode(spec["data"]))
        if not isinstance(client, StorageClient):
            raise HpcflowError("s3_config['storage_client'] must be a StorageClient")
        return client
    raise HpcflowError(f"unknown storage client kind {kind!r}")
