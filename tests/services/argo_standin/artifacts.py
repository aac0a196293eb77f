"""Input and output artifacts of a pod, moved against a real S3 (the tests' Ceph RGW).

Rules replayed from Argo v3.7.18's executor (workflow/executor/executor.go):

* input: the object is downloaded; with ``archive: {none: {}}`` it is placed as is, with
  ``archive: {tar: {}}`` it is untarred, otherwise it is untarred only when it is a gzipped
  tar (isTarball). Unpacking: one top-level entry is renamed to the path, several entries
  make the path a directory holding them (unpack).
* output: default (and ``tar``) archives the path as a gzipped tar whose single top-level
  entry is the path's base name, stored as ``NAME.tgz``; ``none`` uploads the file as is
  (a directory: each file under the key as a prefix). With no key, the key is
  ``KEYFORMAT/FILENAME`` where KEYFORMAT defaults to ``{{workflow.name}}/{{pod.name}}``.
* S3 endpoints are ``host:port`` (no scheme; ``insecure: true`` means plain HTTP), as minio-go
  demands; a scheme in the endpoint fails like minio-go does.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Looks up a Kubernetes Secret's key: (secret name, key) -> value, KeyError when absent.
SecretLookup = Callable[[str, str], str]


class ArtifactError(Exception):
    pass


def s3_location(art: dict[str, Any], repository: dict[str, Any]) -> dict[str, Any]:
    """The artifact's S3 settings completed from the default artifact repository."""
    s3 = dict(art.get("s3") or {})
    repo = dict(repository.get("s3") or {})
    if not s3.get("bucket") and not s3.get("endpoint"):
        merged = {k: v for k, v in repo.items() if k != "keyFormat"}
        merged.update({k: v for k, v in s3.items() if v not in (None, "")})
        return merged
    return s3


def _client(loc: dict[str, Any], secrets: SecretLookup) -> Any:
    import boto3
    from botocore.config import Config

    endpoint = str(loc.get("endpoint") or "")
    if not endpoint:
        raise ArtifactError("You need to configure artifact storage. More information on how to "
                            "do this can be found in the docs: "
                            "https://argo-workflows.readthedocs.io/en/latest/configure-artifact-repository/")
    if "://" in endpoint or "/" in endpoint:
        raise ArtifactError("Endpoint url cannot have fully qualified paths.")
    scheme = "http" if loc.get("insecure") else "https"
    keys = {}
    for field, name in (("accessKeySecret", "aws_access_key_id"),
                        ("secretKeySecret", "aws_secret_access_key")):
        ref = loc.get(field) or {}
        if ref.get("name"):
            try:
                keys[name] = secrets(ref["name"], ref.get("key", ""))
            except KeyError as exc:
                raise ArtifactError(str(exc.args[0]) if exc.args else str(exc)) from None
    return boto3.client("s3", endpoint_url=f"{scheme}://{endpoint}",
                        region_name=loc.get("region") or "us-east-1",
                        config=Config(s3={"addressing_style": "path"}), **keys)


def _is_tarball(path: Path) -> bool:
    try:
        with gzip.open(path, "rb") as gz, tarfile.open(fileobj=gz, mode="r|") as tar:
            return tar.next() is not None
    except (OSError, tarfile.TarError, EOFError):
        return False


def _untar(src: Path, dest: Path) -> None:
    tmp = dest.with_name(dest.name + ".tmpdir")
    tmp.mkdir(parents=True, exist_ok=True)
    with tarfile.open(src, "r:gz") as tar:
        tar.extractall(tmp, filter="data")
    entries = list(tmp.iterdir())
    if len(entries) == 1:
        entries[0].rename(dest)
        tmp.rmdir()
    else:
        tmp.rename(dest)


def load_input(art: dict[str, Any], dest: Path, repository: dict[str, Any],
               secrets: SecretLookup) -> None:
    """Place one input artifact at ``dest`` (ROOT + its path)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if "raw" in art:
        dest.write_text((art.get("raw") or {}).get("data", ""))
        return
    loc = s3_location(art, repository)
    if not loc.get("key"):
        if art.get("optional"):
            return
        raise ArtifactError(f"required artifact '{art.get('name')}' not supplied")
    client = _client(loc, secrets)
    tmp = dest.with_name(dest.name + ".tmp")
    try:
        client.download_file(loc["bucket"], loc["key"], str(tmp))
    except Exception as exc:
        if art.get("optional"):
            return
        raise ArtifactError(f"artifact {art.get('name')} failed to load: {exc}") from None
    archive = art.get("archive") or {}
    if "none" in archive:
        is_tar = False
    elif "tar" in archive:
        is_tar = True
    else:
        is_tar = _is_tarball(tmp)
    if is_tar:
        _untar(tmp, dest)
        tmp.unlink()
    else:
        tmp.rename(dest)


def _targz(path: Path, level: int) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=level) as gz, \
            tarfile.open(fileobj=gz, mode="w") as tar:
        tar.add(path, arcname=path.name)
    return buf.getvalue()


def save_output(art: dict[str, Any], src: Path, repository: dict[str, Any],
                secrets: SecretLookup, default_prefix: str) -> dict[str, Any] | None:
    """Upload one output artifact from ``src``; the artifact as Argo reports it, or None
    when an optional one is missing. ``default_prefix``: the key format already resolved."""
    if not src.exists():
        if art.get("optional"):
            return None
        raise ArtifactError(f"{art.get('path')} no such file or directory")
    archive = art.get("archive") or {"tar": {}}
    loc = s3_location(art, repository)
    client = _client(loc, secrets)
    reported = dict(art)
    s3_out = dict(art.get("s3") or {})
    if "none" in archive:
        key = loc.get("key") or f"{default_prefix}/{src.name}"
        if src.is_dir():
            for file in sorted(p for p in src.rglob("*") if p.is_file()):
                client.upload_file(str(file), loc["bucket"], f"{key}/{file.relative_to(src)}")
        else:
            client.upload_file(str(src), loc["bucket"], key)
    else:
        level = int((archive.get("tar") or {}).get("compressionLevel", 6))
        key = loc.get("key") or f"{default_prefix}/{art['name']}.tgz"
        with tempfile.NamedTemporaryFile(suffix=".tgz", delete=False) as fh:
            fh.write(_targz(src, level))
        try:
            client.upload_file(fh.name, loc["bucket"], key)
        finally:
            os.unlink(fh.name)
    s3_out["key"] = key
    reported["s3"] = s3_out
    return reported


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
