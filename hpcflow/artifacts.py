"""``upload_artifact`` and ``download_artifact``: moving files between a user's disk and storage."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from hpcflow import settings as _config
from hpcflow.artifact_files import flatten_items, pack, unpack
from hpcflow.errors import HpcflowError


class StoredArtifact:
    """An artifact in storage (dflow's ``S3Artifact``): a reference any step can take as input."""

    def __init__(self, ref: dict, name: str | None = None) -> None:
        self.ref = ref
        self.name = name

    @property
    def key(self) -> str:
        parts = self.ref.get("parts") or [{}]
        return str(parts[0].get("key", ""))

    def __repr__(self) -> str:
        return f"<StoredArtifact {self.key}>"


S3Artifact = StoredArtifact


def upload_artifact(files: Any, archive: str | None = "default", namespace: str | None = None,
                    **kwargs: Any) -> StoredArtifact:
    """Upload a path, a list of paths or a dict of paths; relative paths are kept."""
    if archive == "default":
        archive = _config.config.get("archive_mode", "tar")
    key = f"upload/{uuid.uuid4().hex}"
    ref = pack(files, Path.cwd(), _config.storage_client(), key, archive)
    return StoredArtifact(ref)


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


def download_artifact(artifact: Any, path: str | Path = ".", **kwargs: Any) -> list[Path]:
    """Download an artifact into ``path``, keeping relative paths; returns the item paths."""
    ref = _ref_of(artifact)
    if not ref.get("parts"):
        return []
    target = Path(path)
    unpack(ref, target, _config.storage_client())
    return [target / rel for rel in flatten_items(ref.get("items"))]
