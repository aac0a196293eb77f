"""An output artifact as one file for the browser, fetched through the workflow's own
storage client (local or S3) into a private temporary directory.

An artifact stored as one archive is sent as it is (``NAME.tgz``); one stored as plain
objects is fetched, then packed into a ``.tgz`` of its regular files only (a symlink among
them is left out, never followed).
"""

from __future__ import annotations

import contextlib
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def artifact_file(ref: dict, storage_spec: dict, name: str) -> Iterator[tuple[Path, str]]:
    """(a local file holding the artifact, the file name to offer); removed afterwards."""
    from hpcflow.artifact_files import staging_dir, unpack
    from hpcflow.connectors.storage.base import check_key, storage_from_spec

    storage = storage_from_spec(storage_spec)
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name) or "artifact"
    with tempfile.TemporaryDirectory(prefix="hpcflow-ui-", dir=staging_dir()) as tmp:
        parts = ref.get("parts") or []
        if len(parts) == 1 and parts[0].get("archive") == "tar" and not ref.get("sub_path"):
            local = Path(tmp) / "a.tgz"
            storage.download(check_key(parts[0]["key"]), str(local))
            yield local, f"{safe}.tgz"
            return
        files = Path(tmp) / "files"
        unpack(ref, files, storage, staging=Path(tmp))
        packed = Path(tmp) / "a.tgz"
        with tarfile.open(packed, "w:gz") as tar:
            for path in sorted(files.rglob("*")):
                if path.is_file() and not path.is_symlink():
                    tar.add(path, arcname=str(path.relative_to(files)), recursive=False)
        yield packed, f"{safe}.tgz"
