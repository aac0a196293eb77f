"""Storage clients: where artifacts live (a local directory by default, S3 in production)."""

from hpcflow.connectors.storage.base import StorageClient, storage_from_spec
from hpcflow.connectors.storage.local import LocalStorageClient

__all__ = ["LocalStorageClient", "StorageClient", "storage_from_spec"]
