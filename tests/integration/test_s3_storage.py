"""``S3StorageClient`` against the real Ceph RADOS Gateway of tests/services (a server that
checks SigV4 signatures and Content-MD5s): trees in and out (archived and not), a 200 MB
file in parts, list, server-side copy, get_md5, content addressing, a download resumed after
the way to the server was cut, and the one-line errors for a missing bucket and wrong keys."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import zlib
from pathlib import Path

import pytest

from hpcflow.artifact_files import flatten_items, pack, unpack
from hpcflow.connectors.storage.s3 import S3StorageClient
from hpcflow.connectors.storage.s3_retry import StorageUnavailableError
from hpcflow.connectors.storage.s3_transfer import PARTIAL_SUFFIX, composite_digest
from hpcflow.errors import HpcflowError
from tests.integration.conftest import s3_boto
from tests.integration.tcp_proxy import TcpProxy

MIB = 1 << 20


def _client(s3_env: dict[str, str], bucket: str, endpoint: str | None = None,
            **kwargs) -> S3StorageClient:
    return S3StorageClient(bucket, endpoint=endpoint or s3_env["HPCFLOW_TEST_S3_ENDPOINT"],
                           access_key=s3_env["HPCFLOW_TEST_S3_ACCESS_KEY"],
                           secret_key=s3_env["HPCFLOW_TEST_S3_SECRET_KEY"], **kwargs)


def _random_file(path: Path, size: int) -> str:
    """Write ``size`` random bytes; their SHA-256."""
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(left, 8 * MIB))
            digest.update(chunk)
            f.write(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(8 * MIB), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _tree(root: Path) -> dict[str, bytes]:
    files = {"data/a.txt": b"alpha\n", "data/sub/b.bin": os.urandom(3000),
             "data/sub/deeper/c.txt": b"gamma\n", "data/empty.txt": b"",
             "notes.md": b"# notes\n"}
    for rel, content in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(content)
    return files


def _read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("archive", ["tar", None])
def test_a_tree_goes_up_and_comes_back(s3_env, bucket, tmp_path: Path, archive) -> None:
    src = tmp_path / "src"
    files = _tree(src)
    storage = _client(s3_env, bucket, prefix="runs/r1")
    ref = pack(["data", "notes.md"], src, storage, "wf/w1/step-1/out", archive)
    assert flatten_items(ref["items"]) == ["data", "notes.md"]
    unpack(ref, tmp_path / "back", storage)
    assert _read_tree(tmp_path / "back") == files
    # what is in the bucket: under the prefix, relative paths kept when not archived
    listed = storage.list("wf/w1/step-1", recursive=True)
    if archive is None:
        assert listed == sorted(f"wf/w1/step-1/out/{rel}" for rel in files)
    else:
        assert listed == ["wf/w1/step-1/out.tgz"]
    keys = [o["Key"] for o in s3_boto(s3_env).list_objects_v2(Bucket=bucket)["Contents"]]
    assert all(k.startswith("runs/r1/") for k in keys)


def test_list_copy_and_get_md5(s3_env, bucket, tmp_path: Path) -> None:
    storage = _client(s3_env, bucket)
    one = tmp_path / "one.txt"
    one.write_text("one\n")
    for key in ("d/x/1.txt", "d/x/2.txt", "d/y/3.txt", "d/top.txt"):
        storage.upload(key, str(one))
    assert storage.list("d") == ["d/top.txt", "d/x", "d/y"]
    assert storage.list("d", recursive=True) == ["d/top.txt", "d/x/1.txt", "d/x/2.txt",
                                                 "d/y/3.txt"]
    assert storage.list("d/x/1.txt") == ["d/x/1.txt"]
    assert storage.list("nothing/here") == []
    storage.copy("d/top.txt", "e/copied.txt")
    storage.download("e/copied.txt", str(tmp_path / "copied.txt"))
    assert (tmp_path / "copied.txt").read_text() == "one\n"
    assert storage.get_md5("e/copied.txt") == hashlib.md5(b"one\n").hexdigest()
    assert storage.delete_prefix("d") == 4
    assert storage.list("", recursive=True) == ["e/copied.txt"]


def test_a_200_mb_file_goes_in_parts(s3_env, bucket, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    sha = _random_file(big, 200 * MIB)
    storage = _client(s3_env, bucket, part_size=16 * MIB)
    storage.upload("big/big.bin", str(big))
    part_md5s = []
    with open(big, "rb") as f:
        for chunk in iter(lambda: f.read(16 * MIB), b""):
            part_md5s.append(hashlib.md5(chunk).digest())
    # 13 parts of 16 MiB (the last 8): the ETag RGW computed from the parts it received
    assert len(part_md5s) == 13
    assert storage.get_md5("big/big.bin") == composite_digest(part_md5s)
    assert storage.get_md5("big/big.bin").endswith("-13")
    # its part CRC32s are kept under its ETag, for downloads to check each range cheaply
    sums = s3_boto(s3_env).get_object(Bucket=bucket,
                                      Key=f".hpcflow/sums/{storage.get_md5('big/big.bin')}")
    crcs = json.loads(sums["Body"].read())["crc32"]
    with open(big, "rb") as f:
        assert crcs == [zlib.crc32(chunk) for chunk in iter(lambda: f.read(16 * MIB), b"")]
    storage.download("big/big.bin", str(tmp_path / "back.bin"))
    assert _sha256(tmp_path / "back.bin") == sha
    assert not list(tmp_path.glob(f"*{PARTIAL_SUFFIX}*"))
    storage.copy("big/big.bin", "big/copy.bin")
    storage.download("big/copy.bin", str(tmp_path / "copy.bin"))
    assert _sha256(tmp_path / "copy.bin") == sha
    assert storage.list("big") == ["big/big.bin", "big/copy.bin"]


def test_content_already_stored_is_not_sent_again(s3_env, bucket, tmp_path: Path) -> None:
    host, port = s3_env["HPCFLOW_TEST_S3_ENDPOINT"].rsplit("/", 1)[1].split(":")
    proxy = TcpProxy(host, int(port))
    try:
        storage = _client(s3_env, bucket, endpoint=proxy.url, part_size=8 * MIB)
        data = tmp_path / "data.bin"
        sha = _random_file(data, 40 * MIB)
        small = tmp_path / "small.txt"
        small.write_text("same small content\n")
        storage.upload("first/data.bin", str(data))
        storage.upload("first/small.txt", str(small))
        first = proxy.bytes_up
        assert first > 40 * MIB
        storage.upload("second/data.bin", str(data))
        storage.upload("second/small.txt", str(small))
        # the second time only requests went out (HEADs and a server-side copy), no content
        assert proxy.bytes_up - first < 1 * MIB, proxy.bytes_up - first
        storage.download("second/data.bin", str(tmp_path / "back.bin"))
        assert _sha256(tmp_path / "back.bin") == sha
        assert storage.get_md5("second/data.bin") == storage.get_md5("first/data.bin")
        # an index entry whose object is gone is not trusted: the content is sent again
        storage.delete_prefix("first")
        storage.delete_prefix("second")
        before = proxy.bytes_up
        storage.upload("third/data.bin", str(data))
        assert proxy.bytes_up - before > 40 * MIB
        storage.download("third/data.bin", str(tmp_path / "third.bin"))
        assert _sha256(tmp_path / "third.bin") == sha
    finally:
        proxy.close()


def test_a_cut_off_download_resumes(s3_env, bucket, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    sha = _random_file(big, 96 * MIB)
    _client(s3_env, bucket, part_size=8 * MIB).upload("big.bin", str(big))
    host, port = s3_env["HPCFLOW_TEST_S3_ENDPOINT"].rsplit("/", 1)[1].split(":")
    proxy = TcpProxy(host, int(port))
    target = tmp_path / "out" / "big.bin"
    try:
        # few workers, short retry deadline: the cut outlasts it and the download fails
        storage = _client(s3_env, bucket, endpoint=proxy.url, max_concurrency=2,
                          retry_seconds=2)
        failure: list[BaseException] = []

        def download() -> None:
            try:
                storage.download("big.bin", str(target))
            except BaseException as exc:  # handed to the test's thread
                failure.append(exc)

        worker = threading.Thread(target=download)
        worker.start()
        deadline = time.time() + 60
        while proxy.bytes_down < 40 * MIB:
            assert time.time() < deadline and worker.is_alive(), "download did not start"
            time.sleep(0.01)
        proxy.cut()
        worker.join(60)
        assert failure and isinstance(failure[0], StorageUnavailableError), failure
        assert "could not download big.bin" in str(failure[0])
        assert not target.exists()
        journal = target.with_name(target.name + PARTIAL_SUFFIX + ".json")
        done_parts = len(journal.read_text().splitlines()) - 1
        assert done_parts >= 3
        proxy.restore()
        got_before = proxy.bytes_down
        _client(s3_env, bucket, endpoint=proxy.url).download("big.bin", str(target))
        fetched = proxy.bytes_down - got_before
        # only the missing parts came again
        assert fetched < (96 - done_parts * 8 + 4) * MIB, (fetched, done_parts)
        assert _sha256(target) == sha
        assert not journal.exists()
    finally:
        proxy.close()


def test_errors_a_user_can_fix_are_one_line(s3_env, bucket, tmp_path: Path) -> None:
    one = tmp_path / "one.txt"
    one.write_text("1")
    with pytest.raises(HpcflowError, match="does not exist: create it") as missing:
        _client(s3_env, f"{bucket}-missing").upload("k.txt", str(one))
    assert "\n" not in str(missing.value)
    wrong = S3StorageClient(bucket, endpoint=s3_env["HPCFLOW_TEST_S3_ENDPOINT"],
                            access_key=s3_env["HPCFLOW_TEST_S3_ACCESS_KEY"],
                            secret_key="not-the-secret", retry_seconds=5)
    with pytest.raises(HpcflowError, match="refused the credentials") as refused:
        wrong.upload("k.txt", str(one))
    assert "not-the-secret" not in str(refused.value)
    with pytest.raises(HpcflowError, match="not in s3://"):
        _client(s3_env, bucket).download("absent.txt", str(tmp_path / "x"))


def test_no_keys_in_the_spec_nor_in_a_pickled_client(s3_env, bucket, hpc_home) -> None:
    import pickle

    storage = _client(s3_env, bucket)
    spec = storage.to_spec()
    secret = s3_env["HPCFLOW_TEST_S3_SECRET_KEY"]
    assert secret not in repr(spec) and secret not in repr(pickle.dumps(storage))
    assert spec["secret_ref"] and (hpc_home / "secrets" / f"{spec['secret_ref']}.json").stat() \
        .st_mode & 0o077 == 0
    # rebuilt from the spec, the client finds its keys through the reference
    from hpcflow.connectors.storage.base import storage_from_spec

    again = storage_from_spec(spec)
    again.check_bucket()  # type: ignore[attr-defined]


def test_bytes_damaged_on_the_way_are_caught(s3_env, bucket, tmp_path: Path) -> None:
    """A byte flipped in a part going up: RGW refuses the part (its Content-MD5 differs) and
    it is sent again. A byte flipped coming down: the digest check catches it and the file
    is fetched again."""
    host, port = s3_env["HPCFLOW_TEST_S3_ENDPOINT"].rsplit("/", 1)[1].split(":")
    proxy = TcpProxy(host, int(port))
    try:
        storage = _client(s3_env, bucket, endpoint=proxy.url, part_size=8 * MIB,
                          content_addressing=False)
        data = tmp_path / "data.bin"
        sha = _random_file(data, 20 * MIB)
        proxy.corrupt_at["up"] = 1 * MIB
        storage.upload("data.bin", str(data))
        assert proxy.corrupted == 1
        plain = _client(s3_env, bucket)
        plain.download("data.bin", str(tmp_path / "stored.bin"))
        assert _sha256(tmp_path / "stored.bin") == sha  # what was stored is intact

        proxy.corrupt_at["down"] = 1 * MIB
        storage.download("data.bin", str(tmp_path / "once.bin"))
        assert proxy.corrupted == 2
        assert _sha256(tmp_path / "once.bin") == sha
    finally:
        proxy.close()
