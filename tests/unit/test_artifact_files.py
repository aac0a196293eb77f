import io
import tarfile
from pathlib import Path

import pytest

from hpcflow.artifact_files import (
    UnsafeArchiveError,
    pack,
    present,
    relative_name,
    safe_extract,
    unpack,
)
from hpcflow.connectors.storage.local import LocalStorageClient


def _tar_with(path: Path, name: str, link: str | None = None) -> None:
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(name)
        if link is not None:
            info.type = tarfile.SYMTYPE
            info.linkname = link
            tar.addfile(info)
        else:
            data = b"x"
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize("name,link", [("../escape", None), ("/abs/path", None),
                                       ("ok/../../escape", None), ("ln", "/etc/passwd"),
                                       ("ln", "../../outside")])
def test_unsafe_archives_are_refused(tmp_path, name, link):
    tar = tmp_path / "bad.tgz"
    _tar_with(tar, name, link)
    target = tmp_path / "target"
    with pytest.raises(UnsafeArchiveError, match="refusing"):
        safe_extract(tar, target)
    assert not (tmp_path / "escape").exists()


def test_relative_names_follow_dflow(tmp_path):
    assert relative_name(tmp_path / "a" / "b.txt", tmp_path) == "a/b.txt"
    assert relative_name(Path("/etc/hosts"), tmp_path) == "etc/hosts"


@pytest.mark.parametrize("archive", ["tar", None])
def test_pack_unpack_keeps_shape_and_paths(tmp_path, archive):
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "a.txt").write_text("A")
    (src / "d" / "b.txt").write_text("B")
    storage = LocalStorageClient(tmp_path / "store")
    ref = pack({"first": "a.txt", "dir": "d"}, src, storage, "k/x", archive)
    assert ref["items"] == {"first": "a.txt", "dir": "d"}
    out = tmp_path / "out"
    unpack(ref, out, storage)
    assert (out / "a.txt").read_text() == "A" and (out / "d" / "b.txt").read_text() == "B"
    assert present(ref["items"], "dict", out)["dir"] == out / "d"
    assert present(ref["items"], "list", out) == [out / "a.txt", out / "d"]
    assert present(ref["items"], "path", out) == out


def test_local_storage_client_protocol(tmp_path):
    storage = LocalStorageClient(tmp_path / "s")
    f = tmp_path / "f.txt"
    f.write_text("hello")
    storage.upload("a/b/f.txt", str(f))
    storage.copy("a/b/f.txt", "a/c.txt")
    assert storage.list("a", recursive=True) == ["a/b/f.txt", "a/c.txt"]
    assert storage.list("a") == ["a/b", "a/c.txt"]
    assert storage.get_md5("a/c.txt") == "5d41402abc4b2a76b9719d911017c592"
    storage.download("a/c.txt", str(tmp_path / "o" / "c.txt"))
    assert (tmp_path / "o" / "c.txt").read_text() == "hello"
    with pytest.raises(Exception, match="not allowed"):
        storage.upload("../x", str(f))
