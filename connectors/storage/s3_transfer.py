"""Moving one file to or from S3: parallel parts, checksums on the way, downloads that resume.

Uploads. A file that fits in one part (``part_size``) is one PUT with its ``Content-MD5``.
A larger one goes in parts of ``part_size``, in parallel, each with its CRC32
(``x-amz-checksum-crc32``); over plain http SigV4 also signs each part's SHA-256, which every
S3 server checks. Which integrity a server enforces differs (Ceph RGW 16 checks the MD5 and
the SHA-256, AWS also the CRC32), but a damaged part is refused and sent again everywhere.
CRC32 rather than an MD5 per part: it is five times cheaper, and on a login node that shares
its cores with other users (or an S3 server on the same machine) the hashing shows in the
throughput.

Each multipart object's part CRC32s are kept beside it (``sums``, written by the client under
the object's ETag) so that a download can check every range it receives, cheaply. Objects of
one part are checked against their ETag, which is their MD5. Objects written by other tools
are checked where their ETag allows (the MD5 composite ``md5(md5(p1)+...)-N``), otherwise not.

Content addressing (``reuse``) looks up the file's fingerprint: its size and the MD5 of its
first part, known after hashing that one part. Only when content with that fingerprint is
already stored is the whole composite MD5 computed (the S3 ETag the object would get) and
compared with the stored object's ETag, before anything is sent.

Downloads fetch ``part_size`` ranges in parallel into ``FILE.hpcflow-partial`` and note each
checked range in a journal beside it; a download that was cut off resumes with the ranges
still missing, as long as the object's ETag is the one the journal names.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import threading
import zlib
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
    """The bytes received do not match the object's checksums."""


@dataclass(frozen=True)
class Uploaded:
    """What an upload left in the bucket."""

    etag: str
    #: Size and MD5 of the first part (the content-addressing key).
    fingerprint: str
    #: The content was already stored and was copied on the server: nothing was sent.
    reused: bool
    #: The CRC32 of each part (None for a one-part object: its ETag is its MD5).
    crc32s: list[int] | None = None


def composite_digest(md5s: list[bytes]) -> str:
    """The ETag S3 gives an object made of parts with these MD5s."""
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


def etag_of(answer: dict | None) -> str:
    """The ETag of a HEAD, GET or completion answer, without its quotes ("" if none)."""
    return str((answer or {}).get("ETag") or "").strip('"')


def part_count(size: int, part_size: int) -> int:
    return max(1, -(-size // part_size))


def _read_part(path: str, index: int, part_size: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(index * part_size)
        return f.read(part_size)


def _md5_of_part(path: str, index: int, part_size: int) -> bytes:
    return hashlib.md5(_read_part(path, index, part_size)).digest()


def _crc32_header(crc: int) -> str:
    return base64.b64encode(crc.to_bytes(4, "big")).decode()


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
               reuse: Callable[[str, str, int], bool]) -> Uploaded:
        """Store the file under ``key``. ``reuse(fingerprint, etag, size)`` says whether
        content with that fingerprint is stored (``etag`` empty) or, given the ETag the
        file would have, copies it on the server and returns True."""
        size = os.path.getsize(path)
        metadata = {**metadata, PART_SIZE_META: str(self.part_size)}
        if size <= self.part_size:
            data = Path(path).read_bytes()
            md5 = hashlib.md5(data).digest()
            fingerprint = f"{size}-{md5.hex()}"
            if reuse(fingerprint, md5.hex(), size):
                return Uploaded(md5.hex(), fingerprint, True)
            self.retry(lambda: self.client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentMD5=_b64(md5),
                Metadata=metadata), f"upload {key}")
            return Uploaded(md5.hex(), fingerprint, False)
        return self._upload_parts(path, key, size, metadata, reuse)

    def _upload_parts(self, path: str, key: str, size: int, metadata: dict[str, str],
                      reuse: Callable[[str, str, int], bool]) -> Uploaded:
        parts = part_count(size, self.part_size)
        fingerprint = f"{size}-{_md5_of_part(path, 0, self.part_size).hex()}"
        if reuse(fingerprint, "", size):
            # content with this size and first part is stored: is it this content?
            with ThreadPoolExecutor(min(2, os.cpu_count() or 1), "hpcflow-s3-md5") as pool:
                md5s = list(pool.map(lambda i: _md5_of_part(path, i, self.part_size),
                                     range(parts)))
            etag = composite_digest(md5s)
            if reuse(fingerprint, etag, size):
                return Uploaded(etag, fingerprint, True)
        upload_id = self.retry(lambda: self.client.create_multipart_upload(
            Bucket=self.bucket, Key=key, Metadata=metadata, ChecksumAlgorithm="CRC32")
            ["UploadId"], f"start the upload of {key}")

        def send(index: int) -> tuple[str, int]:
            data = _read_part(path, index, self.part_size)
            crc = zlib.crc32(data)
            answer = self.retry(lambda: self.client.upload_part(
                Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=index + 1,
                Body=data, ChecksumCRC32=_crc32_header(crc)),
                f"upload part {index + 1} of {key}")
            return str(answer["ETag"]), crc

        try:
            with ThreadPoolExecutor(self.workers, "hpcflow-s3-put") as senders:
                sent = list(senders.map(send, range(parts)))
        except BaseException:
            self._abort(key, upload_id)
            raise
        etag = self._complete(key, upload_id, sent, size)
        return Uploaded(etag, fingerprint, False, [crc for _, crc in sent])

    def _complete(self, key: str, upload_id: str, sent: list[tuple[str, int]],
                  size: int) -> str:
        listing = {"Parts": [{"PartNumber": i + 1, "ETag": etag,
                              "ChecksumCRC32": _crc32_header(crc)}
                             for i, (etag, crc) in enumerate(sent)]}

        def complete() -> str:
            try:
                answer = self.client.complete_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload=listing)
                return etag_of(answer)
            except Exception as exc:
                # A retry after an answer that was lost on the way: the upload is complete.
                from hpcflow.connectors.storage.s3_retry import error_code

                head = self._head(key) if error_code(exc) == "NoSuchUpload" else None
                if head is None or int(head["ContentLength"]) != size or \
                        not etag_of(head).endswith(f"-{len(sent)}"):
                    raise
                return etag_of(head)

        etag: str = self.retry(complete, f"complete the upload of {key}")
        if not etag:  # some servers (Ceph RGW 16) answer without it
            head = self.retry(lambda: self._head(key), f"look up {key}")
            etag = etag_of(head)
        if not etag:
            raise HpcflowError(f"the upload of {key} completed but the object has no ETag")
        return etag

    def _abort(self, key: str, upload_id: str) -> None:
        # best effort: a bucket lifecycle rule cleans up what an abort leaves
        with contextlib.suppress(Exception):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    def _head(self, key: str) -> dict | None:
        try:
            head: dict = self.client.head_object(Bucket=self.bucket, Key=key)
            return head
        except Exception:
            return None

    # -- download ----------------------------------------------------------------------
    def download(self, key: str, path: str, head: dict,
                 crc32s: list[int] | None = None) -> None:
        """Write the object (described by ``head``, a HeadObject answer) to ``path``,
        checking each part against ``crc32s`` (the object's part CRC32s, if known), else the
        whole against the ETag where its form allows."""
        size = int(head["ContentLength"])
        etag = etag_of(head)
        part_size = int((head.get("Metadata") or {}).get(PART_SIZE_META) or self.part_size)
        parts = part_count(size, part_size)
        check = "crc32" if crc32s is not None and len(crc32s) == parts else \
            "md5" if verifiable(etag, parts) else "none"
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + PARTIAL_SUFFIX)
        journal = target.with_name(target.name + PARTIAL_SUFFIX + ".json")
        header = {"etag": etag, "size": size, "part_size": part_size, "check": check}
        done = _resumable(partial, journal, header)
        if done is None:
            done = {}
            with open(partial, "wb") as f:
                f.truncate(size)
            journal.write_text(json.dumps(header) + "\n")
        lock = threading.Lock()
        fd = os.open(partial, os.O_WRONLY)

        def fail(what: str) -> IntegrityError:
            partial.unlink(missing_ok=True)
            journal.unlink(missing_ok=True)
            return IntegrityError(f"the bytes received for {key} do not match its "
                                  f"checksums ({what}): the transfer or the stored object is "
                                  "corrupt")

        try:
            with open(journal, "a") as notes, \
                    ThreadPoolExecutor(self.workers, "hpcflow-s3-get") as pool:

                def fetch(index: int) -> str:
                    start = index * part_size
                    length = min(size, start + part_size) - start
                    data = self._get_range(key, etag, start, length, whole=parts == 1)
                    if check == "crc32":
                        value = str(zlib.crc32(data))
                        if crc32s is not None and int(value) != crc32s[index]:
                            raise fail(f"part {index + 1}: CRC32 {value} != {crc32s[index]}")
                    else:
                        value = hashlib.md5(data).hexdigest() if check == "md5" else "-"
                    os.pwrite(fd, data, start)
                    with lock:
                        notes.write(f"{index} {value}\n")
                        notes.flush()
                    return value

                missing = [i for i in range(parts) if i not in done]
                futures: dict[int, Future[str]] = {i: pool.submit(fetch, i) for i in missing}
                values = [done[i] if i in done else futures[i].result() for i in range(parts)]
        finally:
            os.close(fd)
        if check == "md5":
            got = composite_digest([bytes.fromhex(v) for v in values])
            if got != etag:
                raise fail(f"{got} != ETag {etag}")
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
            from hpcflow.connectors.storage.s3_retry import error_code

            if error_code(exc.__cause__ or exc) in ("PreconditionFailed", "412"):
                raise HpcflowError(f"{key} changed while it was being downloaded: download "
                                   "it again") from exc
            raise


def _resumable(partial: Path, journal: Path, header: dict) -> dict[int, str] | None:
    """The parts a cut-off download of the same object already holds, with their checksum
    values (None: start anew)."""
    try:
        lines = journal.read_text().splitlines()
        if json.loads(lines[0]) != header or partial.stat().st_size != header["size"]:
            return None
        done: dict[int, str] = {}
        for line in lines[1:]:
            index, value = line.split()
            done[int(index)] = value
        return done
    except (OSError, ValueError, IndexError):
        return None
