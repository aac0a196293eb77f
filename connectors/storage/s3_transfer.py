"""Moving one file to or from S3: parallel parts, MD5s checked, downloads that resume.

Every object hpcflow writes is cut into parts of a fixed size ``part_size`` (one plain PUT
when the file fits in one part) and each part is sent with its ``Content-MD5``, which the
server checks. The object's digest is then what S3 makes its ETag from: the MD5 of a
one-part object, or ``md5(md5(part 1) + ... + md5(part N))-N``. Content addressing
(``reuse``) looks up the file's fingerprint, its size and the MD5 of its first part, which is
known after hashing one part; only when content with that fingerprint is already stored is
the whole digest computed before sending, and compared. Otherwise the part MD5s come from a
pool that runs ahead of the senders, so hashing overlaps the transfer instead of adding a
pass over the file before it.

Downloads fetch ``part_size`` ranges in parallel into ``FILE.hpcflow-partial`` and note each
finished range in a journal beside it; a download that was cut off resumes with the ranges
still missing, as long as the object's ETag is the one the journal names. The part MD5s give
the digest again, which is compared with the ETag whenever its form allows.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from hpcflow.errors import HpcflowError

T = TypeVar("T")

PARTIAL_SUFFIX = ".hpcflow-partial"
PART_SIZE_META = "hpcflow-part-size"
_PLAIN_MD5 = re.compile(r"^[0-9a-f]{32}$")
_MULTIPART = re.compile(r"^([0-9a-f]{32})-(\d+)$")


class IntegrityError(HpcflowError):
    """The bytes received do not match the object's digest."""


def composite_digest(md5s: list[bytes]) -> str:
    """The digest S3 gives an object made of parts with these MD5s (its ETag)."""
    if len(md5s) == 1:
        return md5s[0].hex()
    return f"{hashlib.md5(b''.join(md5s)).hexdigest()}-{len(md5s)}"


def verifiable(etag: str, parts: int) -> bool:
    """Whether an ETag can be checked from ``parts`` part MD5s: the MD5 of a one-part object,
    or the composite of exactly that many parts. (Objects copied or written by other tools,
    or encrypted with KMS, have ETags of other forms: those are not checked.)"""
    found = _MULTIPART.match(etag)
    return bool(found and int(found.group(2)) == parts) or \
        (parts == 1 and bool(_PLAIN_MD5.match(etag)))


def part_count(size: int, part_size: int) -> int:
    return max(1, -(-size // part_size))


def _read_part(path: str, index: int, part_size: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(index * part_size)
        return f.read(part_size)


def _md5_of_part(path: str, index: int, part_size: int) -> bytes:
    return hashlib.md5(_read_part(path, index, part_size)).digest()


def _b64(md5: bytes) -> str:
    return base64.b64encode(md5).decode()


@dataclass
class Transfer:
    """One bucket's transfers. ``retry(call, what)`` runs an S3 call with hpcflow's retries."""

    client: Any
    bucket: str
    part_size: int
    workers: int
    retry: Callable[[Callable[[], Any], str], Any]

    # -- upload ------------------------------------------------------------------------
    def upload(self, path: str, key: str, metadata: dict[str, str],
               reuse: Callable[[str, str, int], bool]) -> tuple[str, str, bool]:
        """Store the file under ``key``. Returns its digest, its fingerprint (size and MD5 of
        the first part: cheap to know before sending anything) and whether ``reuse(
        fingerprint, digest, size)`` found the content already stored (then this call sent
        no content). ``reuse`` is asked only once the whole digest is known."""
        size = os.path.getsize(path)
        metadata = {**metadata, PART_SIZE_META: str(self.part_size)}
        if size <= self.part_size:
            data = Path(path).read_bytes()
            md5 = hashlib.md5(data).digest()
            fingerprint = f"{size}-{md5.hex()}"
            if reuse(fingerprint, md5.hex(), size):
                return md5.hex(), fingerprint, True
            self.retry(lambda: self.client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentMD5=_b64(md5),
                Metadata=metadata), f"upload {key}")
            return md5.hex(), fingerprint, False
        return self._upload_parts(path, key, size, metadata, reuse)

    def _upload_parts(self, path: str, key: str, size: int, metadata: dict[str, str],
                      reuse: Callable[[str, str, int], bool]) -> tuple[str, str, bool]:
        parts = part_count(size, self.part_size)
        hashers = ThreadPoolExecutor(min(2, os.cpu_count() or 1), "hpcflow-s3-md5")
        senders = ThreadPoolExecutor(self.workers, "hpcflow-s3-put")
        try:
            hashed = [hashers.submit(_md5_of_part, path, i, self.part_size)
                      for i in range(parts)]
            fingerprint = f"{size}-{hashed[0].result().hex()}"
            # Content with this size and this first part was seen: compare whole digests
            # before sending anything. (New content, the usual case, does not wait for the
            # hashing: the parts go out while the pool hashes ahead of them.)
            if reuse(fingerprint, "", size):
                digest = composite_digest([h.result() for h in hashed])
                if reuse(fingerprint, digest, size):
                    return digest, fingerprint, True
            upload_id = self.retry(lambda: self.client.create_multipart_upload(
                Bucket=self.bucket, Key=key, Metadata=metadata)["UploadId"],
                f"start the upload of {key}")

            def send(index: int) -> str:
                md5 = hashed[index].result()
                data = _read_part(path, index, self.part_size)
                answer = self.retry(lambda: self.client.upload_part(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=index + 1,
                    Body=data, ContentMD5=_b64(md5)), f"upload part {index + 1} of {key}")
                return str(answer["ETag"])

            try:
                etags = list(senders.map(send, range(parts)))
            except BaseException:
                self._abort(key, upload_id)
                raise
            digest = composite_digest([h.result() for h in hashed])
            self._complete(key, upload_id, etags, digest)
            return digest, fingerprint, False
        finally:
            hashers.shutdown(wait=True, cancel_futures=True)
            senders.shutdown(wait=True, cancel_futures=True)

    def _complete(self, key: str, upload_id: str, etags: list[str], digest: str) -> None:
        listing = {"Parts": [{"PartNumber": i + 1, "ETag": e} for i, e in enumerate(etags)]}

        def complete() -> None:
            try:
                self.client.complete_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload=listing)
            except Exception as exc:
                # A retry after an answer that was lost on the way: the upload is complete.
                from hpcflow.connectors.storage.s3_retry import error_code

                if error_code(exc) != "NoSuchUpload" or self.etag(key) != digest:
                    raise

        self.retry(complete, f"complete the upload of {key}")

    def _abort(self, key: str, upload_id: str) -> None:
        # best effort: a bucket lifecycle rule cleans up what an abort leaves
        with contextlib.suppress(Exception):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    def etag(self, key: str) -> str | None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except Exception:
            return None
        return str(head["ETag"]).strip('"')

    # -- download ----------------------------------------------------------------------
    def download(self, key: str, path: str, head: dict) -> None:
        """Write the object (described by ``head``, a HeadObject answer) to ``path``."""
        size = int(head["ContentLength"])
        etag = str(head["ETag"]).strip('"')
        part_size = int((head.get("Metadata") or {}).get(PART_SIZE_META) or self.part_size)
        parts = part_count(size, part_size)
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + PARTIAL_SUFFIX)
        journal = target.with_name(target.name + PARTIAL_SUFFIX + ".json")
        header = {"etag": etag, "size": size, "part_size": part_size}
        done = _resumable(partial, journal, header)
        if done is None:
            done = {}
            with open(partial, "wb") as f:
                f.truncate(size)
            journal.write_text(json.dumps(header) + "\n")
        lock = threading.Lock()
        fd = os.open(partial, os.O_WRONLY)
        try:
            with open(journal, "a") as notes, \
                    ThreadPoolExecutor(self.workers, "hpcflow-s3-get") as pool:

                def fetch(index: int) -> bytes:
                    start = index * part_size
                    length = min(size, start + part_size) - start
                    data = self._get_range(key, etag, start, length, whole=parts == 1)
                    os.pwrite(fd, data, start)
                    md5 = hashlib.md5(data).digest()
                    with lock:
                        notes.write(f"{index} {md5.hex()}\n")
                        notes.flush()
                    return md5

                missing = [i for i in range(parts) if i not in done]
                futures: dict[int, Future[bytes]] = {i: pool.submit(fetch, i) for i in missing}
                md5s = [done[i] if i in done else futures[i].result() for i in range(parts)]
        finally:
            os.close(fd)
        if verifiable(etag, parts) and composite_digest(md5s) != etag:
            partial.unlink(missing_ok=True)
            journal.unlink(missing_ok=True)
            raise IntegrityError(f"the bytes received for {key} do not match its digest "
                                 f"({composite_digest(md5s)} != {etag}): the transfer or the "
                                 "stored object is corrupt")
        os.replace(partial, target)
        journal.unlink(missing_ok=True)

    def _get_range(self, key: str, etag: str, start: int, length: int, whole: bool) -> bytes:
        def get() -> bytes:
            if length == 0:
                return b""
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "IfMatch": f'"{etag}"'}
            if not whole:
                kwargs["Range"] = f"bytes={start}-{start + length - 1}"
            data: bytes = self.client.get_object(**kwargs)["Body"].read()
            if len(data) != length:
                from botocore.exceptions import IncompleteReadError

                raise IncompleteReadError(actual_bytes=len(data), expected_bytes=length)
            return data

        try:
            result: bytes = self.retry(get, f"download {key}")
            return result
        except HpcflowError as exc:
            if "PreconditionFailed" in str(exc) or "412" in str(exc):
                raise HpcflowError(f"{key} changed while it was being downloaded: download "
                                   "it again") from exc
            raise


def _resumable(partial: Path, journal: Path, header: dict) -> dict[int, bytes] | None:
    """The parts a cut-off download of the same object already holds (None: start anew)."""
    try:
        lines = journal.read_text().splitlines()
        if json.loads(lines[0]) != header or partial.stat().st_size != header["size"]:
            return None
        done: dict[int, bytes] = {}
        for line in lines[1:]:
            index, md5 = line.split()
            done[int(index)] = bytes.fromhex(md5)
        return done
    except (OSError, ValueError, IndexError):
        return None
