import io
import tarfile
from pathlib import Path

import pytest

from hpcflow.artifact_files import (
    OutsideLinkError,
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


@pytest.mark.parametrize("archive", ["tar", None])
@pytest.mark.parametrize("item,link,target", [
    ("d", "d/ln", "SECRET"),                 # absolute, out of the tree
    ("d", "d/ln", "../secret.txt"),          # relative, climbs out of the artifact
    ("d", "d/ln", "DIR"),                    # absolute, even to a folder
    ("d/ln", "d/ln", "SECRET"),              # the named path itself is the link
])
def test_a_symlink_out_of_the_artifact_is_refused_in_both_archive_modes(tmp_path, archive,
                                                                        item, link, target):
    """archive=None used to upload what the link points at; tar kept the link for the
    consumer to refuse. Both refuse it now, before anything is uploaded, naming it."""
    (tmp_path / "secret.txt").write_text("not yours")
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "kept.txt").write_text("K")
    (src / "secret.txt").write_text("beside the artifact, not in it")
    text = {"SECRET": str(tmp_path / "secret.txt"), "DIR": str(tmp_path)}.get(target, target)
    (src / link).symlink_to(text)
    storage = LocalStorageClient(tmp_path / "store")
    with pytest.raises(OutsideLinkError, match=rf"'{link}' is a symlink to '{text}', "
                                               "outside the artifact"):
        pack(item, src, storage, "k/x", archive)
    assert not [p for p in (tmp_path / "store").rglob("*") if p.is_file()]  # nothing sent


@pytest.mark.parametrize("archive", ["tar", None])
def test_a_relative_symlink_inside_the_artifact_is_kept(tmp_path, archive):
    src = tmp_path / "src"
    (src / "d" / "sub").mkdir(parents=True)
    (src / "d" / "a.txt").write_text("A")
    (src / "d" / "sub" / "ln").symlink_to("../a.txt")
    (src / "top.txt").symlink_to("d/a.txt")  # a named link to another named path
    storage = LocalStorageClient(tmp_path / "store")
    ref = pack(["d", "top.txt"], src, storage, "k/x", archive)
    out = tmp_path / "out"
    unpack(ref, out, storage)
    assert (out / "d" / "sub" / "ln").read_text() == "A"
    assert (out / "top.txt").read_text() == "A"


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


@pytest.mark.parametrize("archive", ["tar", None])
def test_a_link_into_the_steps_own_directory_is_stored_as_what_it_points_at(tmp_path, archive):
    """dflow copies an output that links to the step's input (its copy follows the link);
    hpcflow stores what the link points at when that is inside the step's own directory,
    and still refuses a link that leaves it."""
    step = tmp_path / "step"
    given = step / "inputs" / "artifacts" / "x"
    (given / "d").mkdir(parents=True)
    (given / "a.txt").write_text("A")
    (given / "d" / "b.txt").write_text("B")
    work = step / "workdir"
    (work / "out").mkdir(parents=True)
    (work / "out" / "a.txt").symlink_to(given / "a.txt")
    (work / "out" / "d").symlink_to(given / "d")
    (work / "top.txt").symlink_to(given / "a.txt")
    storage = LocalStorageClient(tmp_path / "store")
    ref = pack(["out", "top.txt"], work, storage, "k/x", archive, copy_within=step)
    out = tmp_path / "unpacked"
    unpack(ref, out, storage)
    assert not any(p.is_symlink() for p in out.rglob("*"))
    assert (out / "out" / "a.txt").read_text() == "A"
    assert (out / "out" / "d" / "b.txt").read_text() == "B"
    assert (out / "top.txt").read_text() == "A"
    (tmp_path / "secret.txt").write_text("not the step's")
    (work / "out" / "s.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(OutsideLinkError, match=r"'out/s\.txt' is a symlink to"):
        pack("out", work, storage, "k/y", archive, copy_within=step)
