"""dflow's artifacts, as dflow users write them: ``art[0]`` and ``art.sub_path(...)`` handed
to a consumer, ``download_artifact``'s return value, ``HDF5Datasets`` signs, a
``Dict[str, Path]`` sign given a list, and an OP's storage-key methods. Each through the
engine, outputs and phases checked."""

from pathlib import Path
from typing import Dict, List, Union

import pytest

from hpcflow import (
    InputArtifact,
    InputParameter,
    OutputArtifact,
    OutputParameter,
    ShellOPTemplate,
    Step,
    Steps,
    Workflow,
    download_artifact,
    upload_artifact,
)
from hpcflow.errors import WorkflowDefinitionError
from hpcflow.python import (
    OP,
    OPIO,
    Artifact,
    HDF5Datasets,
    NestedDict,
    OPIOSign,
    PythonOPTemplate,
)
from hpcflow.python.opio import HDF5Dataset  # where dflow has it (dflow.python.opio)


class Make(OP):
    """Three files in a list, a folder, and a dict of two files."""

    @classmethod
    def get_input_sign(cls) -> OPIOSign:
        return OPIOSign()

    @classmethod
    def get_output_sign(cls) -> OPIOSign:
        return OPIOSign({"files": Artifact(List[Path]), "tree": Artifact(Path),
                         "named": Artifact(Dict[str, Path])})

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        files = []
        for name in ("a", "b", "c"):
            Path(f"{name}.txt").write_text(f"file {name}")
            files.append(Path(f"{name}.txt"))
        Path("tree/inner").mkdir(parents=True)
        Path("tree/top.txt").write_text("top")
        Path("tree/inner/deep.txt").write_text("deep")
        return OPIO({"files": files, "tree": Path("tree"),
                     "named": {"x": files[0], "y": files[1]}})


class Read(OP):
    """What it was handed: the path's name relative to its input folder, and the text."""

    @classmethod
    def get_input_sign(cls) -> OPIOSign:
        return OPIOSign({"art": Artifact(Path)})

    @classmethod
    def get_output_sign(cls) -> OPIOSign:
        return OPIOSign({"name": str, "text": str})

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        path = op_in["art"]
        text = path.read_text() if path.is_file() else ",".join(
            sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()))
        return OPIO({"name": path.name, "text": text})


class ReadList(OP):
    @classmethod
    def get_input_sign(cls) -> OPIOSign:
        return OPIOSign({"art": Artifact(List[Path])})

    @classmethod
    def get_output_sign(cls) -> OPIOSign:
        return OPIOSign({"texts": list})

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        return OPIO({"texts": [p.read_text() if p.is_file() else p.name
                               for p in op_in["art"]]})


def _inner_steps() -> Steps:
    """A Steps whose input artifact is indexed and sub-pathed inside it."""
    inner = Steps("inner")
    inner.inputs.artifacts = {"files": InputArtifact(), "tree": InputArtifact()}
    second = Step("second", PythonOPTemplate(Read),
                  artifacts={"art": inner.inputs.artifacts["files"][1]})
    deep = Step("deep", PythonOPTemplate(Read),
                artifacts={"art": inner.inputs.artifacts["tree"].sub_path("tree")
                           .sub_path("inner")})
    inner.add([second, deep])
    inner.outputs.parameters = {
        "second": OutputParameter(value_from_parameter=second.outputs.parameters["text"]),
        "deep": OutputParameter(value_from_parameter=deep.outputs.parameters["text"])}
    return inner


def test_an_index_or_a_sub_path_of_an_artifact_reaches_the_consumer(hpc_home: Path) -> None:
    Path("up/sub").mkdir(parents=True)
    Path("up/sub/u.txt").write_text("uploaded")
    Path("up/v.txt").write_text("v")
    up = upload_artifact(["up/v.txt", "up/sub"])
    wf = Workflow("artifact-parts")
    make = Step("make", PythonOPTemplate(Make))
    wf.add(make)
    files, tree = make.outputs.artifacts["files"], make.outputs.artifacts["tree"]
    cat = ShellOPTemplate(name="cat", image="alpine",
                          script="cat /tmp/in > /tmp/out.txt")
    cat.inputs.artifacts = {"in": InputArtifact(path="/tmp/in")}
    cat.outputs.artifacts = {"out": OutputArtifact(path="/tmp/out.txt")}
    wf.add([
        Step("first", PythonOPTemplate(Read), artifacts={"art": files[0]}),
        Step("last", PythonOPTemplate(Read), artifacts={"art": files[-1]}),
        Step("named", PythonOPTemplate(Read),
             artifacts={"art": make.outputs.artifacts["named"]["y"]}),
        Step("one-file", PythonOPTemplate(Read),
             artifacts={"art": tree.sub_path("tree/top.txt")}),
        Step("folder", PythonOPTemplate(Read), artifacts={"art": tree.sub_path("tree")}),
        Step("as-list", PythonOPTemplate(ReadList), artifacts={"art": files[2]}),
        Step("up-index", PythonOPTemplate(Read), artifacts={"art": up[0]}),
        Step("up-sub", PythonOPTemplate(Read), artifacts={"art": up.sub_path("up/sub/u.txt")}),
        Step("plain-sub", PythonOPTemplate(Read), artifacts={"art": upload_artifact(
            ["up/v.txt", "up/sub"], archive=None).sub_path("up/sub")}),
        Step("script", cat, artifacts={"in": tree.sub_path("tree/inner/deep.txt")}),
        Step("inner", _inner_steps(), artifacts={"files": files, "tree": tree}),
    ])
    wf.submit()
    assert wf.wait(timeout=180) == "Succeeded"

    def out(name: str) -> dict:
        step = wf.query_step(name=name)[0]
        return {k: p.value for k, p in step.outputs.parameters.items()}

    assert out("first") == {"name": "a.txt", "text": "file a"}
    assert out("last") == {"name": "c.txt", "text": "file c"}
    assert out("named") == {"name": "b.txt", "text": "file b"}
    # a sub path is the consumer's input itself, as Argo's subPath places it
    assert out("one-file") == {"name": "art", "text": "top"}
    assert out("folder") == {"name": "art", "text": "inner/deep.txt,top.txt"}
    assert out("as-list")["texts"] == ["file c"]
    assert out("up-index") == {"name": "v.txt", "text": "v"}
    assert out("up-sub") == {"name": "art", "text": "uploaded"}
    assert out("plain-sub") == {"name": "art", "text": "u.txt"}  # objects under it only
    assert out("inner") == {"second": "file b", "deep": "deep.txt"}
    got = download_artifact(wf.query_step(name="script")[0].outputs.artifacts["out"],
                            path="script")
    assert Path(got[0]).read_text() == "deep"


def test_a_part_the_artifact_lacks_fails_the_consumer_in_one_line(hpc_home: Path) -> None:
    wf = Workflow("artifact-missing-parts")
    make = Step("make", PythonOPTemplate(Make))
    wf.add(make)
    wf.add([Step("no-item", PythonOPTemplate(Read),
                 artifacts={"art": make.outputs.artifacts["files"][5]}),
            Step("no-path", PythonOPTemplate(Read),
                 artifacts={"art": make.outputs.artifacts["tree"].sub_path("tree/nope")})])
    wf.submit()
    assert wf.wait(timeout=120) in ("Failed", "Error")
    item = wf.query_step(name="no-item")[0]
    assert item.phase == "Error"
    assert "has no item 5 (it holds a list of 3)" in item.reason, item.reason
    path = wf.query_step(name="no-path")[0]
    assert path.phase == "Error"
    assert "sub path 'tree/nope' is not in the artifact" in path.reason, path.reason
    assert "\n" not in item.reason + path.reason
    with pytest.raises(WorkflowDefinitionError, match=r"relative, without '\.\.'"):
        make.outputs.artifacts["tree"].sub_path("../etc")


class Keyed(OP):
    @classmethod
    def get_input_sign(cls) -> OPIOSign:
        return OPIOSign({"d": Artifact(Dict[str, Path])})

    @classmethod
    def get_output_sign(cls) -> OPIOSign:
        return OPIOSign({"keys": list})

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        return OPIO({"keys": sorted(op_in["d"])})


class Nested(OP):
    @classmethod
    def get_input_sign(cls) -> OPIOSign:
        return OPIOSign({"n": Artifact(NestedDict[Path])})

    @classmethod
    def get_output_sign(cls) -> OPIOSign:
        return OPIOSign({"shape": str})

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        return OPIO({"shape": type(op_in["n"]).__name__})


def test_a_dict_sign_given_a_list_is_handed_the_list_and_refuses_it(hpc_home: Path) -> None:
    """dflow hands ``Artifact(Dict[str, Path])`` what the artifact holds; its sign check
    refuses a list (hpcflow re-keyed it ``{"0": ...}`` before)."""
    for name in ("a.txt", "b.txt"):
        Path(name).write_text(name)
    wf = Workflow("dict-given-list")
    wf.add([Step("keyed", PythonOPTemplate(Keyed),
                 artifacts={"d": upload_artifact(["a.txt", "b.txt"])}),
            Step("keyed-dict", PythonOPTemplate(Keyed),
                 artifacts={"d": upload_artifact({"p": "a.txt", "q": "b.txt"})}),
            Step("nested-one", PythonOPTemplate(Nested),
                 artifacts={"n": upload_artifact("a.txt")})])
    wf.submit()
    assert wf.wait(timeout=120) == "Failed"
    keyed = wf.query_step(name="keyed")[0]
    assert keyed.phase == "Failed"
    assert "'d'" in keyed.reason and "list" in keyed.reason, keyed.reason
    assert wf.query_step(name="keyed-dict")[0].outputs.parameters["keys"].value == ["p", "q"]
    # one path: dflow's catalog lists it, a list of one
    assert wf.query_step(name="nested-one")[0].outputs.parameters["shape"].value == "list"


class Loop(OP):
    @classmethod
    def get_input_sign(cls) -> OPIOSign:
        return OPIOSign({"i": int})

    @classmethod
    def get_output_sign(cls) -> OPIOSign:
        return OPIOSign({"out": Artifact(List[Path])})

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        made = []
        for j in range(2):
            path = Path(f"out-{op_in['i']}-{j}.txt")
            path.write_text(f"{op_in['i']}.{j}")
            made.append(path)
        return OPIO({"out": made})


def test_download_artifact_returns_what_dflows_returns(hpc_home: Path) -> None:
    wf = Workflow("download-shapes")
    make = Step("make", PythonOPTemplate(Make))
    loop = Step("loop", PythonOPTemplate(Loop), parameters={"i": "{{item}}"},
                with_param=[0, 1])
    wf.add([make, loop])
    wf.submit()
    assert wf.wait(timeout=120) == "Succeeded"
    arts = wf.query_step(name="make")[0].outputs.artifacts
    files = download_artifact(arts["files"], path="files")
    assert files == ["files/a.txt", "files/b.txt", "files/c.txt"]  # str, in order
    assert download_artifact(arts["tree"], path="tree") == ["tree/tree"]  # one path: a list
    assert download_artifact(arts["named"], path="named") == {"x": "named/a.txt",
                                                              "y": "named/b.txt"}
    merged = wf.query_step(name="loop", type="StepGroup")[0].outputs.artifacts["out"]
    looped = download_artifact(merged, path="loop")
    assert looped == [f"loop/out-{i}-{j}.txt" for i in (0, 1) for j in (0, 1)]  # flat
    assert [Path(p).read_text() for p in looped] == ["0.0", "0.1", "1.0", "1.1"]
    # dflow's sub_path= and slice= give the one path, fetched alone
    one = download_artifact(arts["tree"], sub_path="tree/inner/deep.txt", path="sub")
    assert one == "sub/tree/inner/deep.txt" and Path(one).read_text() == "deep"
    assert not Path("sub/tree/top.txt").exists()
    second = download_artifact(arts["files"], slice=1, path="slice")
    assert second == "slice/b.txt" and Path(second).read_text() == "file b"
    packed = download_artifact(arts["files"], extract=False, path="packed")
    assert len(packed) == 1 and packed[0].endswith(".tgz") and Path(packed[0]).is_file()
    with pytest.raises(TypeError, match="path="):
        download_artifact(arts["files"], "somewhere")  # type: ignore[arg-type]


def _write_as_dflow(path: Path) -> None:
    """An .h5 file as dflow's handle_output_artifact writes one for [file, 42, None]."""
    import h5py

    with h5py.File(path, "w") as f:
        d = f.create_dataset("0", data="made by dflow")
        d.attrs.update(type="file", path="/tmp/dflow/made.txt", dtype="utf-8")
        d = f.create_dataset("1", data=42)
        d.attrs["type"] = "data"
        d = f.create_dataset("2", data="")
        d.attrs["type"] = "null"


class Datasets(OP):
    @classmethod
    def get_input_sign(cls) -> OPIOSign:
        return OPIOSign({"h": Artifact(HDF5Datasets)})

    @classmethod
    def get_output_sign(cls) -> OPIOSign:
        return OPIOSign({"seen": list, "out": Artifact(HDF5Datasets)})

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        got = op_in["h"]
        seen = [None if d is None else [isinstance(d, HDF5Dataset), str(d.recover())
                                        if d.dataset.attrs["type"] == "file"
                                        else int(d.get_data())] for d in got]
        Path("made/dir").mkdir(parents=True)
        Path("made/dir/in-dir.txt").write_text("in a folder")
        Path("made/note.txt").write_text("a note")
        return OPIO({"seen": seen, "out": [Path("made/note.txt"), Path("made/dir"), 7,
                                           "text", None, got[1]]})


class Union_(OP):
    @classmethod
    def get_input_sign(cls) -> OPIOSign:
        return OPIOSign({"h": Artifact(Union[List[Path], HDF5Datasets])})  # noqa: UP007

    @classmethod
    def get_output_sign(cls) -> OPIOSign:
        return OPIOSign({"seen": list})

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        seen = []
        for d in op_in["h"]:
            if d is None:
                seen.append(None)
            elif d.dataset.attrs["type"] in ("file", "dir"):
                path = d.recover()
                seen.append(path.read_text() if path.is_file()
                            else sorted(p.name for p in path.iterdir()))
            else:
                value = d.get_data()
                seen.append(value if isinstance(value, str) else int(value))
        return OPIO({"seen": seen})


def test_hdf5_datasets_in_and_out_as_dflow(hpc_home: Path) -> None:
    h5py = pytest.importorskip("h5py")  # installed by the hdf5 extra ('.[dev]')
    _write_as_dflow(Path("from-dflow.h5"))
    wf = Workflow("hdf5-datasets")
    first = Step("datasets", PythonOPTemplate(Datasets),
                 artifacts={"h": upload_artifact("from-dflow.h5")})
    wf.add(first)
    wf.add(Step("union", PythonOPTemplate(Union_),
                artifacts={"h": first.outputs.artifacts["out"]}))
    wf.submit()
    assert wf.wait(timeout=120) == "Succeeded"
    done = wf.query_step(name="datasets")[0]
    # HDF5Dataset objects, None for a stored None; recover() writes the file under the cwd
    assert done.outputs.parameters["seen"].value == [[True, "tmp/dflow/made.txt"], [True, 42],
                                                      None]
    assert wf.query_step(name="union")[0].outputs.parameters["seen"].value == [
        "a note", ["in-dir.txt"], 7, "text", None, 42]
    # the output is one .h5 file written as dflow writes it
    got = download_artifact(done.outputs.artifacts["out"], path="out")
    assert len(got) == 1 and got[0].endswith(".h5")
    with h5py.File(got[0], "r") as f:
        assert sorted(f.keys()) == ["0", "1", "2", "3", "4", "5"]
        assert dict(f["0"].attrs)["type"] == "file" and f["0"].attrs["dtype"] == "utf-8"
        assert f["0"].attrs["path"].endswith("/workdir/made/note.txt")
        assert f["1"].attrs["type"] == "dir" and f["2"].attrs["type"] == "data"
        assert f["4"].attrs["type"] == "null" and f["5"][()] == 42


def test_without_h5py_an_hdf5_sign_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from hpcflow.errors import HpcflowError
    from hpcflow.python.hdf5 import read_datasets

    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(HpcflowError, match=r"need h5py .*pip install 'hpcflow\[hdf5\]'"):
        read_datasets([Path("x.h5")])


class Keys(OP):
    @classmethod
    def get_input_sign(cls) -> OPIOSign:
        return OPIOSign({"art": Artifact(Path)})

    @classmethod
    def get_output_sign(cls) -> OPIOSign:
        return OPIOSign({"in_key": str, "out_key": str, "none_key": str, "link": str,
                         "out": Artifact(Path), "plain": Artifact(Path, archive=None)})

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        self.register_output_artifact("out", "ns", "data")  # no lineage: a warning
        try:
            self.get_output_artifact_link("out")
            link = "none"
        except NotImplementedError as exc:
            link = str(exc)
        Path("o.txt").write_text("o")
        return OPIO({"in_key": self.get_input_artifact_storage_key("art"),
                     "out_key": self.get_output_artifact_storage_key("out"),
                     "none_key": self.get_output_artifact_storage_key("plain"),
                     "link": link, "out": Path("o.txt"), "plain": Path("o.txt")})


def test_an_op_knows_the_storage_keys_of_its_artifacts(hpc_home: Path) -> None:
    Path("in.txt").write_text("in")
    given = upload_artifact("in.txt")
    wf = Workflow("storage-keys")
    wf.add(Step("keys", PythonOPTemplate(Keys), artifacts={"art": given}))
    wf.submit()
    assert wf.wait(timeout=120) == "Succeeded"
    step = wf.query_step(name="keys")[0]
    params = {k: p.value for k, p in step.outputs.parameters.items()}
    assert params["in_key"] == given.key
    assert params["out_key"] == step.outputs.artifacts["out"].key
    assert params["out_key"].endswith("/out.tgz")
    assert params["none_key"] == step.outputs.artifacts["plain"].key
    assert params["link"].startswith("get_output_artifact_link: hpcflow has no S3 console")
    with pytest.raises(RuntimeError, match="only while the OP runs as a step"):
        Keys().get_input_artifact_storage_key("art")


def test_input_parameter_references_index_an_artifact(hpc_home: Path) -> None:
    """``art[p]`` with a parameter (dflow adds it as an input of the step) and
    ``art.sub_path(f"{p}")``: resolved when the consumer runs."""
    inner = Steps("pick")
    inner.inputs.parameters = {"i": InputParameter(), "name": InputParameter()}
    inner.inputs.artifacts = {"files": InputArtifact()}
    files = inner.inputs.artifacts["files"]
    by_index = Step("by-index", PythonOPTemplate(Read),
                    artifacts={"art": files[inner.inputs.parameters["i"]]})
    by_name = Step("by-name", PythonOPTemplate(Read),
                   artifacts={"art": inner.inputs.artifacts["files"].sub_path(
                       inner.inputs.parameters["name"])})
    inner.add([by_index, by_name])
    inner.outputs.parameters = {
        "a": OutputParameter(value_from_parameter=by_index.outputs.parameters["text"]),
        "b": OutputParameter(value_from_parameter=by_name.outputs.parameters["text"])}
    wf = Workflow("artifact-parts-by-parameter")
    make = Step("make", PythonOPTemplate(Make))
    wf.add(make)
    wf.add(Step("pick", inner, parameters={"i": 2, "name": "a.txt"},
                artifacts={"files": make.outputs.artifacts["files"]}))
    wf.submit()
    assert wf.wait(timeout=120) == "Succeeded"
    outs = wf.query_step(name="pick")[0].outputs.parameters
    assert (outs["a"].value, outs["b"].value) == ("file c", "file a")
