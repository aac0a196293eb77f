"""``S3StorageClient``: artifacts in any S3-compatible object store (AWS, Ceph RGW, MinIO, OSS).

Keys are the artifact keys under an optional ``prefix`` in one bucket. Credentials are found,
in this order: given to the constructor (dflow's ``s3_config['access_key']``), the job's
``HPCFLOW_S3_*`` variables (how the daemon hands them to a batch job), a reference into
``$HPCFLOW_HOME/secrets`` (how a script's keys reach the daemon without entering the store),
an AWS profile, boto3's default chain (``AWS_*`` variables, ``~/.aws``, instance roles).
``to_spec()`` never holds a key.

Content addressing: a zero-byte index object ``PREFIX.hpcflow/cas/FINGERPRINT`` names the key
of the last object stored with that fingerprint (size and first part's MD5, see
``s3_transfer``). An upload whose fingerprint is indexed, and whose indexed object still
exists with the file's whole digest as its ETag, becomes a server-side copy: the bytes do not
cross the network again. Beside it, ``PREFIX.hpcflow/sums/ETAG`` keeps the part CRC32s of
each multipart object, which downloads check every range against.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from hpcflow.connectors.storage.base import StorageClient, check_key
from hpcflow.connectors.storage.s3_retry import (
    MISSING_CODES,
    error_code,
    missing_bucket,
    with_retries,
)
from hpcflow.connectors.storage.s3_transfer import (
    PART_SIZE_META,
    IntegrityError,
    Transfer,
    etag_of,
)
from hpcflow.errors import HpcflowError, NotFoundError
from hpcflow.secrets import held_credentials

T = TypeVar("T")
log = logging.getLogger("hpcflow.storage")

#: The variables that carry credentials into a batch job (the runner takes them out of its
#: environment before any user code runs).
ENV_ACCESS_KEY = "HPCFLOW_S3_ACCESS_KEY"
ENV_SECRET_KEY = "HPCFLOW_S3_SECRET_KEY"
ENV_SESSION_TOKEN = "HPCFLOW_S3_SESSION_TOKEN"
CREDENTIAL_VARIABLES = (ENV_ACCESS_KEY, ENV_SECRET_KEY, ENV_SESSION_TOKEN)
INDEX_DIR = ".hpcflow/cas"
#: Part CRC32s of multipart objects, by ETag (see ``s3_transfer``).
SUMS_DIR = ".hpcflow/sums"
MIB = 1 << 20
#: S3's limits for parts: at least 5 MiB (but the last), at most 10000 of them.
MIN_PART_SIZE = 5 * MIB

_taken_from_env: dict[str, str] | None = None
_env_lock = threading.Lock()


def credentials_from_env() -> dict[str, str]:
    """The ``HPCFLOW_S3_*`` credentials of this process, removed from its environment the
    first time (so that a step's own programs do not inherit them)."""
    global _taken_from_env
    with _env_lock:
        if _taken_from_env is None:
            _taken_from_env = {name: os.environ.pop(name) for name in CREDENTIAL_VARIABLES
                               if name in os.environ}
        return dict(_taken_from_env)


def import_boto3() -> Any:
    """boto3, or a one-line error that says how to get it (a job's Python may lack it)."""
    try:
        import boto3
    except ImportError:
        import sys

        raise HpcflowError(
            f"S3 storage needs boto3, which {sys.executable} cannot import: install it there "
            "(pip install boto3), or, for a machine whose jobs run this Python, set "
            "storage_access = \"relay\" so that the daemon carries the artifacts") from None
    return boto3


def endpoint_url(endpoint: str | None, secure: bool = True) -> str | None:
    """dflow writes endpoints as ``host:port`` with ``secure`` for the scheme.

    >>> endpoint_url("minio:9000", secure=False), endpoint_url("https://s3.example.org")
    ('http://minio:9000', 'https://s3.example.org')
    """
    if not endpoint:
        return None
    if "://" in endpoint:
        return endpoint.rstrip("/")
    return f"{'https' if secure else 'http'}://{endpoint.rstrip('/')}"


def normal_prefix(prefix: str | None) -> str:
    """``"a/b"`` and ``"/a/b/"`` both become ``"a/b/"``; empty stays empty."""
    text = (prefix or "").strip("/")
    if text:
        check_key(text)
        return text + "/"
    return ""


class S3StorageClient(StorageClient):
    """Artifacts in an S3 bucket (see the module docstring)."""

    def __init__(self, bucket: str, endpoint: str | None = None, prefix: str = "",
                 region: str | None = None, access_key: str | None = None,
                 secret_key: str | None = None, session_token: str | None = None,
                 profile: str | None = None, secure: bool = True,
                 addressing_style: str = "path", verify: bool | str = True,
                 part_size: int = 16 * MIB, max_concurrency: int = 8,
                 retry_seconds: float = 300.0, content_addressing: bool = True,
                 secret_ref: str | None = None) -> None:
        if not bucket or not isinstance(bucket, str):
            raise HpcflowError("S3 storage needs a bucket name (s3_config['bucket_name'] or "
                               "bucket in the config's [storage])")
        if addressing_style not in ("path", "virtual", "auto"):
            raise HpcflowError(f"addressing_style must be path, virtual or auto, not "
                               f"{addressing_style!r}")
        if int(part_size) < MIN_PART_SIZE:
            raise HpcflowError(f"part_size {part_size} is below S3's minimum of 5 MiB")
        if (access_key is None) != (secret_key is None):
            raise HpcflowError("S3 credentials need both access_key and secret_key")
        self.bucket = bucket
        self.endpoint = endpoint_url(endpoint, secure)
        self.prefix = normal_prefix(prefix)
        self.region = region
        self.profile = profile
        self.addressing_style = addressing_style
        self.verify = verify
        self.part_size = int(part_size)
        self.max_concurrency = max(1, int(max_concurrency))
        self.retry_seconds = float(retry_seconds)
        self.content_addressing = content_addressing
        self.secret_ref = secret_ref
        self._keys = ({"access_key": access_key, "secret_key": secret_key,
                       "session_token": session_token} if access_key else None)
        self._client: Any = None
        self._client_lock = threading.Lock()

    # -- what never leaves this process -------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        """A pickled client (a step's copy) carries no keys and no connections."""
        state = dict(self.__dict__)
        state.update(_keys=None, _client=None, _client_lock=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._client_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"S3StorageClient(s3://{self.bucket}/{self.prefix} at {self.endpoint or 'AWS'})"

    def _credentials(self) -> dict[str, str | None] | None:
        if self._keys:
            return self._keys
        found = credentials_from_env()
        if ENV_ACCESS_KEY in found and ENV_SECRET_KEY in found:
            return {"access_key": found[ENV_ACCESS_KEY], "secret_key": found[ENV_SECRET_KEY],
                    "session_token": found.get(ENV_SESSION_TOKEN)}
        if self.secret_ref:
            from hpcflow import settings
            from hpcflow.secrets import reveal

            values = reveal(settings.home(), self.secret_ref)
            return {"access_key": values["access_key"], "secret_key": values["secret_key"],
                    "session_token": values.get("session_token")}
        # boto3 would read AWS_* from the environment; the daemon took them out of its own
        held = held_credentials()
        if not self.profile and "AWS_ACCESS_KEY_ID" in held and "AWS_SECRET_ACCESS_KEY" in held:
            return {"access_key": held["AWS_ACCESS_KEY_ID"],
                    "secret_key": held["AWS_SECRET_ACCESS_KEY"],
                    "session_token": held.get("AWS_SESSION_TOKEN")}
        return None

    def _session(self) -> Any:
        boto3 = import_boto3()

        keys = self._credentials()
        if keys:
            return boto3.session.Session(aws_access_key_id=keys["access_key"],
                                         aws_secret_access_key=keys["secret_key"],
                                         aws_session_token=keys["session_token"],
                                         region_name=self.region)
        return boto3.session.Session(profile_name=self.profile, region_name=self.region)

    def client(self) -> Any:
        """The boto3 client (made once; boto3 clients are safe to share between threads)."""
        with self._client_lock:
            if self._client is None:
                import_boto3()
                from botocore.config import Config

                config = Config(
                    s3={"addressing_style": self.addressing_style},
                    retries={"max_attempts": 3, "mode": "standard"},
                    max_pool_connections=self.max_concurrency + 4,
                    connect_timeout=10, read_timeout=60,
                    # hpcflow computes and checks its checksums itself (s3_transfer);
                    # boto3's own on every request would hash each byte a second time
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required")
                self._client = self._session().client(
                    "s3", endpoint_url=self.endpoint, config=config, verify=self.verify,
                    region_name=self.region or "us-east-1")
            return self._client

    def credentials_env(self) -> dict[str, str]:
        """The ``HPCFLOW_S3_*`` variables that let a job on another node use this bucket."""
        creds = self._session().get_credentials()
        if creds is None:
            return {}
        frozen = creds.get_frozen_credentials()
        env = {ENV_ACCESS_KEY: frozen.access_key, ENV_SECRET_KEY: frozen.secret_key}
        if frozen.token:
            env[ENV_SESSION_TOKEN] = frozen.token
        return env

    # -- helpers --------------------------------------------------------------------------
    def _full(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _retry(self, call: Callable[[], T], what: str) -> T:
        return with_retries(call, what, self.retry_seconds, self.bucket, self.endpoint)

    def _transfer(self) -> Transfer:
        return Transfer(self.client(), self.bucket, self.part_size, self.max_concurrency,
                        self._retry)

    def _unless_missing(self, call: Callable[[], T], what: str) -> T | None:
        """``call()`` with retries; None when the object it asks for is not there."""

        def attempt() -> T | None:
            try:
                return call()
            except Exception as exc:
                if error_code(exc) in MISSING_CODES:
                    return None
                raise

        return self._retry(attempt, what)

    def _head(self, full_key: str) -> dict | None:
        answer: dict | None = self._unless_missing(
            lambda: self.client().head_object(Bucket=self.bucket, Key=full_key),
            f"look up {full_key}")
        return answer

    def _stored(self, key: str, said: str) -> dict:
        """The HEAD answer of the object ``key``; a NotFoundError "``said`` is not in ..."
        when there is none."""
        head = self._head(self._full(key))
        if head is None:
            raise NotFoundError(f"{said} is not in s3://{self.bucket}/{self.prefix}")
        return head

    def _index_key(self, fingerprint: str) -> str:
        return f"{self.prefix}{INDEX_DIR}/{fingerprint}"

    def _sums_key(self, etag: str) -> str:
        return f"{self.prefix}{SUMS_DIR}/{etag}"

    # -- the StorageClient protocol ------------------------------------------------------
    def upload(self, key: str, path: str) -> None:
        full = self._full(key)

        def reuse(fingerprint: str, etag: str, size: int) -> bool:
            """With no ETag: is there a candidate? With one: copy it if it matches."""
            if not self.content_addressing:
                return False
            index = self._head(self._index_key(fingerprint))
            source = (index or {}).get("Metadata", {}).get("key")
            if not source or not etag:
                return bool(source)
            found = self._head(source)
            if not found or etag_of(found) != etag or \
                    int(found["ContentLength"]) != size:
                return False  # an index entry left by an object that is gone or changed
            if source != full:
                self._copy_object(source, full, size)
            return True

        done = self._transfer().upload(path, full, {}, reuse)
        if done.crc32s is not None:
            body = json.dumps({"part_size": self.part_size, "crc32": done.crc32s}).encode()
            sums_key = self._sums_key(done.etag)
            self._retry(lambda: self.client().put_object(
                Bucket=self.bucket, Key=sums_key, Body=body), f"record the checksums of {key}")
        if self.content_addressing and not done.reused:
            index_key = self._index_key(done.fingerprint)
            self._retry(lambda: self.client().put_object(
                Bucket=self.bucket, Key=index_key, Body=b"", Metadata={"key": full}),
                f"index {key}")

    def _crc32s(self, etag: str, part_size: int) -> list[int] | None:
        """The part CRC32s recorded for objects with this ETag (None if none were)."""
        def get() -> bytes | None:
            try:
                body: bytes = self.client().get_object(
                    Bucket=self.bucket, Key=self._sums_key(etag))["Body"].read()
                return body
            except Exception as exc:
                if error_code(exc) in MISSING_CODES:
                    return None
                raise

        raw = self._retry(get, f"read the checksums of {etag}")
        try:
            sums = json.loads(raw) if raw else None
            if sums and int(sums["part_size"]) == part_size:
                return [int(c) for c in sums["crc32"]]
        except (ValueError, KeyError, TypeError):
            pass
        return None

    def download(self, key: str, path: str) -> None:
        full = self._full(key)
        head = self._stored(key, f"artifact object {key!r}")
        etag = etag_of(head)
        part_size = int((head.get("Metadata") or {}).get(PART_SIZE_META) or self.part_size)
        crc32s = self._crc32s(etag, part_size) if "-" in etag else None
        try:
            self._transfer().download(full, path, head, crc32s)
        except IntegrityError as exc:
            # bytes damaged on the way (the stored object is checked by the server on
            # upload): fetch it once more, from scratch
            log.warning("%s; downloading %s again", exc, key)
            self._transfer().download(full, path, head, crc32s)

    def put_bytes(self, key: str, data: bytes) -> None:
        """A small object (a job's files, a result) in one PUT, checked by Content-MD5:
        none of ``upload``'s content addressing, which costs requests a small object never
        pays back."""
        import base64
        import hashlib

        full = self._full(key)
        digest = base64.b64encode(hashlib.md5(data).digest()).decode()
        self._retry(lambda: self.client().put_object(Bucket=self.bucket, Key=full, Body=data,
                                                     ContentMD5=digest), f"upload {key}")

    def get_bytes(self, key: str) -> bytes | None:
        """A small object's bytes in one GET; None when there is no such object."""
        full = self._full(key)
        body: bytes | None = self._unless_missing(
            lambda: self.client().get_object(Bucket=self.bucket, Key=full)["Body"].read(),
            f"download {key}")
        return body

    def list(self, prefix: str, recursive: bool = False) -> list[str]:
        """Keys under the "directory" ``prefix`` (a key that names one object: itself);
        without ``recursive``, its direct children (objects and sub-directories)."""
        base = self._full(prefix.rstrip("/")) if prefix.strip("/") else self.prefix.rstrip("/")
        if prefix.strip("/") and self._head(base) is not None:
            return [prefix.rstrip("/")]
        search = f"{base}/" if base else ""
        found: list[str] = []
        paginator = self.client().get_paginator("list_objects_v2")
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": search}
        if not recursive:
            kwargs["Delimiter"] = "/"

        def pages() -> list[dict]:
            return list(paginator.paginate(**kwargs))

        for page in self._retry(pages, f"list {prefix or '/'}"):
            found += [obj["Key"] for obj in page.get("Contents", [])]
            found += [p["Prefix"].rstrip("/") for p in page.get("CommonPrefixes", [])]
        keys = [k[len(self.prefix):] for k in found]
        return sorted(k for k in keys if k and not k.startswith(".hpcflow/")
                      and k != ".hpcflow")

    def copy(self, src: str, dst: str) -> None:
        head = self._stored(src, f"cannot copy {src!r}: it")
        self._copy_object(self._full(src), self._full(dst), int(head["ContentLength"]))

    def _copy_object(self, source: str, target: str, size: int) -> None:
        """A server-side copy (one CopyObject up to 5 GiB; UploadPartCopy beyond)."""
        client = self.client()
        if size <= 5 * 1024 * MIB:
            self._retry(lambda: client.copy_object(
                Bucket=self.bucket, Key=target,
                CopySource={"Bucket": self.bucket, "Key": source}), f"copy {source}")
            return
        part = max(self.part_size, -(-size // 10000))
        upload_id = self._retry(lambda: client.create_multipart_upload(
            Bucket=self.bucket, Key=target)["UploadId"], f"start copying {source}")
        etags = []
        for number, start in enumerate(range(0, size, part), 1):
            end = min(size, start + part) - 1
            answer = self._retry(functools.partial(
                client.upload_part_copy, Bucket=self.bucket, Key=target, UploadId=upload_id,
                PartNumber=number, CopySource={"Bucket": self.bucket, "Key": source},
                CopySourceRange=f"bytes={start}-{end}"), f"copy part {number} of {source}")
            etags.append({"PartNumber": number, "ETag": answer["CopyPartResult"]["ETag"]})
        self._retry(lambda: client.complete_multipart_upload(
            Bucket=self.bucket, Key=target, UploadId=upload_id,
            MultipartUpload={"Parts": etags}), f"finish copying {source}")

    def get_md5(self, key: str) -> str:
        """The object's ETag, as dflow's clients return it: the MD5 of an object stored in
        one part, ``md5-of-part-md5s-N`` for one stored in N parts."""
        return etag_of(self._stored(key, f"artifact object {key!r}"))

    def delete_prefix(self, prefix: str) -> int:
        return self.delete_keys(self.list(prefix, recursive=True))

    def delete_keys(self, keys: Sequence[str]) -> int:
        full = [self._full(k) for k in keys]
        client = self.client()
        for start in range(0, len(full), 1000):
            batch = {"Objects": [{"Key": k} for k in full[start:start + 1000]], "Quiet": True}
            self._retry(functools.partial(client.delete_objects, Bucket=self.bucket,
                                          Delete=batch), f"delete {keys[start]}")
        return len(full)

    def check_bucket(self) -> None:
        """Raise a one-line error unless the bucket exists and these credentials reach it."""
        try:
            self._retry(lambda: self.client().head_bucket(Bucket=self.bucket),
                        "reach the bucket")
        except NotFoundError:  # a HEAD's 404 carries no error code: here it is the bucket
            raise missing_bucket(self.bucket, self.endpoint) from None

    def clock_skew(self) -> float:
        """Seconds this machine's clock is ahead of the server's (from the Date header of a
        bucket request; S3 refuses requests signed more than 15 minutes off)."""
        import email.utils
        import time

        answer = self._retry(lambda: self.client().head_bucket(Bucket=self.bucket),
                             "reach the bucket")
        sent = answer["ResponseMetadata"]["HTTPHeaders"].get("date")
        if not sent:
            return 0.0
        return time.time() - email.utils.parsedate_to_datetime(sent).timestamp()

    def to_spec(self) -> dict[str, Any]:
        """How a step rebuilds this client. Keys given to the constructor are kept in
        ``$HPCFLOW_HOME/secrets`` and only a reference to them goes into the spec."""
        ref = self.secret_ref
        if self._keys and ref is None:
            from hpcflow import settings
            from hpcflow.secrets import stash

            ref = stash(settings.home(), {k: v for k, v in self._keys.items() if v})
        return {"kind": "s3", "bucket": self.bucket, "endpoint": self.endpoint,
                "prefix": self.prefix, "region": self.region, "profile": self.profile,
                "addressing_style": self.addressing_style, "verify": self.verify,
                "part_size": self.part_size, "max_concurrency": self.max_concurrency,
                "retry_seconds": self.retry_seconds,
                "content_addressing": self.content_addressing, "secret_ref": ref}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> S3StorageClient:
        fields = {k: v for k, v in spec.items() if k != "kind"}
        return cls(**fields)
