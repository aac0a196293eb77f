"""dflow's ``dflow.utils`` and types as ``hpcflow.utils``: written as dflow's own examples
(``examples/test_utils.py``) and users write them, against the configured storage (the local
directory here; ``tests/integration/test_dflow_utils_s3.py`` does the same against S3)."""

import os
import shutil
import sys
from pathlib import Path
from typing import List

import pytest

from hpcflow import (
    LocalArtifact,
    S3Artifact,
    Step,
    Workflow,
    config,
    copy_artifact,
    download_artifact,
    path_list_of_artifact,
    query_workflows,
    s3_config,
    set_config,
    set_s3_config,
    upload_artifact,
)
from hpcflow.python import OP, Artifact, HDF5Datasets, PythonOPTemplate
from hpcflow.utils import (
    catalog_of_artifact,
    copy_s3,
    download_s3,
    flatten,
    path_object_of_artifact,
    randstr,
    run_command,
    set_directory,
    upload_s3,
)


# -- dflow's examples/test_utils.py, with the import renamed ---------------------------------
def test_set_directory(hpc_home) -> None:
    pwd = Path.cwd()
    with set_directory("test_dir", mkdir=True) as wdir:
        assert str(wdir) == str(pwd / "test_dir")
        assert os.getcwd() == str(wdir)
    assert Path.cwd() == pwd
    shutil.rmtree(wdir)


def test_run_command() -> None:
    code, out, _ = run_command("echo test")
    assert (code, out) == (0, "test\n")
    with pytest.raises(AssertionError, match="error"):
        run_command([sys.executable, "-c", "raise ValueError('error')"])
    code, out, _ = run_command(["sh"], input="echo test\nexit")
    assert (code, out) == (0, "test\n")
    assert run_command("exit 3", shell=True, raise_error=False)[0] == 3
    assert run_command("echo $0", try_bash=True)[1] == "bash\n"


def test_copy_artifact_appends_the_path_list(hpc_home) -> None:
    Path("foo.txt").write_text("foo")
    Path("bar.txt").write_text("bar")
    art_1 = upload_artifact(["foo.txt"], archive=None)
    art_2 = upload_artifact(["bar.txt"], archive=None)
    copy_artifact(art_1, art_2, sort=True)
    catalog = catalog_of_artifact(art_2)
    catalog.sort(key=lambda x: x["order"])
    assert catalog == [{"dflow_list_item": "bar.txt", "order": 0},
                       {"dflow_list_item": "foo.txt", "order": 1}]

    art_1 = upload_artifact(["foo.txt"], archive=None)
    art_2 = upload_artifact(["bar.txt"], archive=None)
    copy_artifact(art_2, art_1, sort=True)
    catalog = catalog_of_artifact(art_1)
    catalog.sort(key=lambda x: x["order"])
    assert catalog == [{"dflow_list_item": "foo.txt", "order": 0},
                       {"dflow_list_item": "bar.txt", "order": 1}]
    # the files are in storage under the destination's key, not only in the object
    out = download_artifact(S3Artifact(key=art_1.key), path="got")
    assert sorted(out) == ["got/bar.txt", "got/foo.txt"]
    assert Path("got/bar.txt").read_text() == "bar"


def test_copy_artifact_into_an_archive(hpc_home) -> None:
    Path("a.txt").write_text("a")
    Path("d").mkdir()
    Path("d/b.txt").write_text("b")
    dst = upload_artifact(["a.txt"])
    copy_artifact(upload_artifact("d", archive=None), dst)
    assert path_list_of_artifact(dst) == ["a.txt", "d"]
    download_artifact(S3Artifact(key=dst.key), path="out")
    assert Path("out/a.txt").read_text() == "a" and Path("out/d/b.txt").read_text() == "b"


# -- paths of artifacts ---------------------------------------------------------------------
def test_path_list_and_path_object_of_artifact(hpc_home) -> None:
    for name in ("x", "y", "z"):
        Path(name).write_text(name)
    listed = upload_artifact(["y", "x", "z"])
    assert path_list_of_artifact(listed) == ["y", "x", "z"]
    assert path_object_of_artifact(listed) == ["y", "x", "z"]
    keyed = upload_artifact({"first": "x", "more": {"b": "y"}})
    assert path_object_of_artifact(keyed) == {"first": "x", "more": {"b": "y"}}
    assert sorted(i["order"] for i in catalog_of_artifact(keyed)) == ["first", "more.b"]
    assert path_list_of_artifact(upload_artifact("x")) == ["x"]


def test_flatten_and_randstr() -> None:
    assert flatten({"a": [1, {"b": 2}], "c": 3}) == {"a.0": 1, "a.1.b": 2, "c": 3}
    assert flatten([["p", "q"], "r"]) == {"0.0": "p", "0.1": "q", "1": "r"}
    names = {randstr() for _ in range(50)}
    assert len(names) > 45 and all(len(n) == 5 and n.isalnum() and n == n.lower()
                                   for n in names)
    assert len(randstr(12)) == 12


# -- storage keys ---------------------------------------------------------------------------
def test_upload_download_copy_s3_against_the_configured_storage(hpc_home) -> None:
    Path("tree/sub").mkdir(parents=True)
    Path("tree/a.txt").write_text("A")
    Path("tree/sub/b.txt").write_text("B")
    key = upload_s3("tree")
    assert key.startswith("upload/") and key.endswith("/tree")
    assert (hpc_home / "artifacts" / key / "sub" / "b.txt").read_text() == "B"
    assert download_s3(key, path="back") == "back"
    assert Path("back/sub/b.txt").read_text() == "B"
    download_s3(key, path="kept", keep_dir=True)
    assert Path("kept/tree/a.txt").read_text() == "A"
    copy_s3(key, "copies/tree2")
    download_s3("copies/tree2", path="copied")
    assert Path("copied/a.txt").read_text() == "A"
    one = upload_s3("tree/a.txt", key="single/a.txt")
    assert one == "single/a.txt"
    assert Path(download_s3(one, path="f", recursive=False)).read_text() == "A"
    assert upload_s3("tree/a.txt", prefix="pre") == "pre/a.txt"


class CountingStorage:
    """The local storage, counting downloads (``s3_config["storage_client"]``)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.downloads: list[str] = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def download(self, key: str, path: str) -> None:
        self.downloads.append(key)
        self.inner.download(key, path)


def test_download_artifact_skip_exists(hpc_home, monkeypatch) -> None:
    from hpcflow.connectors.storage.local import LocalStorageClient

    counting = CountingStorage(LocalStorageClient(hpc_home / "artifacts"))
    monkeypatch.setitem(s3_config, "storage_client", counting)
    Path("d").mkdir()
    for name in ("a", "b", "c"):
        Path("d", name).write_text(name * 100)
    art = upload_artifact("d", archive=None)
    download_artifact(art, path="out")
    assert len(counting.downloads) == 3
    Path("out/d/b").write_text("changed")
    download_artifact(art, path="out", skip_exists=True)
    assert len(counting.downloads) == 4 and counting.downloads[-1].endswith("/d/b")
    assert Path("out/d/b").read_text() == "b" * 100
    download_artifact(art, path="out", skip_exists=True)
    assert len(counting.downloads) == 4
    download_artifact(art, path="out")  # without it, everything again
    assert len(counting.downloads) == 7


# -- types and settings ---------------------------------------------------------------------
def test_artifact_types(hpc_home) -> None:
    Path("f.txt").write_text("x")
    art = upload_artifact("f.txt")
    assert isinstance(art, S3Artifact) and isinstance(art, LocalArtifact)
    assert art.local_path == str(hpc_home / "artifacts" / art.key)
    assert Path(art.local_path).is_file()
    by_key = S3Artifact(key=art.key)
    assert by_key.key == art.key and path_list_of_artifact(by_key) == ["f.txt"]
    with pytest.raises(Exception, match="nothing is stored"):
        _ = S3Artifact(key="upload/nothing-here").ref
    with pytest.raises(Exception, match="key="):
        S3Artifact()
    assert HDF5Datasets.__name__ == "HDF5Datasets"


def test_set_config_and_set_s3_config(monkeypatch) -> None:
    import hpcflow.config

    monkeypatch.setitem(config, "archive_mode", "tar")
    monkeypatch.setitem(s3_config, "prefix", "")
    set_config(archive_mode=None)
    set_s3_config(prefix="alice/")
    assert config["archive_mode"] is None and s3_config["prefix"] == "alice/"
    assert hpcflow.config["archive_mode"] is None  # the package's name is the dict
    from hpcflow.config import config as same

    assert same is config


# -- through the engine ---------------------------------------------------------------------
@OP.function
def count_files(files: Artifact(List[Path])) -> {"n": int, "text": str}:
    return {"n": len(files), "text": "".join(sorted(Path(f).read_text() for f in files))}


def test_an_artifact_built_from_a_key_is_a_step_input(hpc_home) -> None:
    Path("one").write_text("1")
    Path("two").write_text("2")
    first = upload_artifact(["one", "two"])
    key = upload_s3("one", key="by-hand/one")  # an object written without upload_artifact
    wf = Workflow("from-key", labels={"campaign": "keys"})
    wf.add([Step("archived", PythonOPTemplate(count_files),
                 artifacts={"files": S3Artifact(key=first.key)}),
            Step("by-hand", PythonOPTemplate(count_files),
                 artifacts={"files": S3Artifact(key=key.rsplit("/", 1)[0])})])
    wf.submit()
    assert wf.wait(timeout=120) == "Succeeded"
    got = {s.name: (s.outputs.parameters["n"].value, s.outputs.parameters["text"].value)
           for s in wf.query_step(name=["archived", "by-hand"])}
    assert got == {"archived": (2, "12"), "by-hand": (1, "1")}

    other = Workflow("unlabelled")
    other.add(Step("none", PythonOPTemplate(count_files),
                   artifacts={"files": upload_artifact(["one"])}))
    other.submit()
    assert other.wait(timeout=120) == "Succeeded"
    found = query_workflows(labels={"campaign": "keys"})
    assert [w.id for w in found] == [wf.id]
    assert found[0].metadata.name == wf.id and found[0].status.phase == "Succeeded"
    assert found[0]["status"]["phase"] == "Succeeded"
    assert [s.name for s in found[0].get_step(name="by-hand")] == ["by-hand"]
    assert {w.id for w in query_workflows()} == {wf.id, other.id}
