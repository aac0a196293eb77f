"""dflow's OPs and their inputs, as dflow users write them: template names, what an OP
receives for each artifact sign, what ``@OP.exec_sign_check`` completes, optional inputs,
HDF5Datasets signs, and links in output artifacts. Each through the engine, outputs and
phases checked."""

import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Dict, List, NamedTuple, Set, Tuple, TypedDict, Union

import pytest

from hpcflow import (
    ShellOPTemplate,
    Step,
    Workflow,
    argo_range,
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
    Parameter,
    PythonOPTemplate,
)
from hpcflow.python.op import OPSignError


def _kinds(value: object) -> object:
    """The value's shape with each leaf replaced by its type's name."""
    if isinstance(value, dict):
        return {k: _kinds(v) for k, v in value.items()}
    if isinstance(value, (list, set)):
        return [_kinds(v) for v in value]
    return type(value).__name__


class Receive(OP):
    @classmethod
    def get_input_sign(cls) -> OPIOSign:
        return OPIOSign({
            "s": Artifact(str), "ls": Artifact(List[str]), "p": Artifact(Path),
            "lp": Artifact(List[Path]), "ds": Artifact(Dict[str, str]),
            "nd": Artifact(NestedDict[Path]), "ss": Artifact(Set[str]),
            "h": Artifact(Union[List[Path], HDF5Datasets]),  # noqa: UP007 (as dflow writes it)
        })

    @classmethod
    def get_output_sign(cls) -> OPIOSign:
        return OPIOSign({"kinds": dict, "h": Artifact(Union[List[Path], HDF5Datasets]),  # noqa: UP007
                         "only": Artifact(HDF5Datasets)})

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        return OPIO({"kinds": {k: _kinds(v) for k, v in op_in.items()},
                     "h": op_in["h"], "only": [Path(op_in["s"])],
                     })


def test_what_an_op_receives_for_each_artifact_sign(hpc_home: Path) -> None:
    for name in ("a.txt", "b.txt", "c.txt"):
        Path(name).write_text(name)
    wf = Workflow("artifact-signs")
    three = upload_artifact(["a.txt", "b.txt", "c.txt"])
    one = upload_artifact("a.txt")
    step = Step("receive", PythonOPTemplate(Receive), artifacts={
        "s": one, "ls": three, "p": one, "lp": three, "ds": upload_artifact(
            {"x": "a.txt", "y": "b.txt"}), "nd": three, "ss": three, "h": three})
    wf.add(step)
    wf.submit()
    assert wf.wait(timeout=120) == "Succeeded"
    done = wf.query_step(name="receive")[0]
    kinds = done.outputs.parameters["kinds"].value
    assert kinds == {
        "s": "str", "ls": ["str", "str", "str"], "p": "PosixPath",
        "lp": ["PosixPath"] * 3, "ds": {"x": "str", "y": "str"},
        # a list given to NestedDict stays a list (was re-keyed {"0": ...})
        "nd": ["PosixPath"] * 3, "ss": ["str"] * 3, "h": ["PosixPath"] * 3}
    got = download_artifact(done.outputs.artifacts["h"], path="h")
    assert sorted(Path(p).read_text() for p in got) == ["a.txt", "b.txt", "c.txt"]
    # an output declared HDF5Datasets is one .h5 file, as dflow writes it (with h5py)
    only = download_artifact(done.outputs.artifacts["only"], path="only")
    assert len(only) == 1 and only[0].endswith(".h5")
    h5py = pytest.importorskip("h5py")
    with h5py.File(only[0], "r") as f:
        assert f["0"][()].decode() == "a.txt" and f["0"].attrs["type"] == "file"


class Defaults(OP):
    @classmethod
    def get_input_sign(cls) -> OPIOSign:
        return OPIOSign({"x": int, "n": Parameter(int, default=3),
                         "a": Artifact(Path, optional=True), "b": Artifact(Path)})

    @classmethod
    def get_output_sign(cls) -> OPIOSign:
        return OPIOSign({"seen": dict, "y": Parameter(int, default=7)})

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        # every declared input is there: op_in["a"] is no KeyError
        return OPIO({"seen": {k: op_in[k] if k in ("x", "n") else op_in[k] is None
                              for k in ("x", "n", "a", "b")}})


def test_exec_sign_check_completes_inputs_and_outputs_as_dflow() -> None:
    """dflow users test OPs by calling execute: the OPIO is completed in place."""
    op_in = OPIO({"x": None, "b": "b.txt"})
    out = Defaults().execute(op_in)
    assert dict(op_in) == {"x": None, "b": "b.txt", "n": 3, "a": None}
    assert dict(out) == {"seen": {"x": None, "n": 3, "a": True, "b": False}, "y": 7}


def test_none_inputs_and_output_defaults_through_the_engine(hpc_home: Path) -> None:
    """``Step(artifacts={"b": None})`` makes the input optional, a ``None`` parameter is
    not type-checked, an output parameter the OP does not return takes its default."""
    wf = Workflow("op-defaults")
    wf.add(Step("defaults", PythonOPTemplate(Defaults), parameters={"x": None},
                artifacts={"b": None}))
    wf.submit()
    assert wf.wait(timeout=120) == "Succeeded"
    done = wf.query_step(name="defaults")[0]
    assert done.outputs.parameters["seen"].value == {"x": None, "n": 3, "a": True, "b": True}
    assert done.outputs.parameters["y"].value == 7


def test_template_names_are_lower_cased_as_in_dflow(hpc_home: Path) -> None:
    hello = ShellOPTemplate(name="Hello", image="alpine", script="echo hi")
    assert hello.name == "hello"
    assert PythonOPTemplate(Defaults, name="My-Defaults").name == "my-defaults"
    wf = Workflow("upper-names")
    wf.add(Step("hello", hello))
    wf.submit()
    assert wf.wait(timeout=120) == "Succeeded"


class LinkInput(OP):
    @classmethod
    def get_input_sign(cls) -> OPIOSign:
        return OPIOSign({"x": Artifact(Path), "outside": Parameter(str | None, default=None)})

    @classmethod
    def get_output_sign(cls) -> OPIOSign:
        return OPIOSign({"out": Artifact(Path)})

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        os.makedirs("out")
        os.symlink(op_in["x"].absolute(), "out/x.txt")  # an absolute link to the input
        if op_in["outside"]:
            os.symlink(op_in["outside"], "out/elsewhere.txt")
        return OPIO({"out": Path("out")})


class ReadBack(OP):
    @classmethod
    def get_input_sign(cls) -> OPIOSign:
        return OPIOSign({"d": Artifact(Path)})

    @classmethod
    def get_output_sign(cls) -> OPIOSign:
        return OPIOSign({"text": str, "link": bool})

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        f = op_in["d"] / "x.txt"
        return OPIO({"text": f.read_text(), "link": f.is_symlink()})


def test_an_output_linking_to_the_steps_input_holds_the_file(hpc_home: Path) -> None:
    """dflow copies such an output (its copy follows the link): the consumer reads the
    file. A link out of the step's own directory is still refused, in one line."""
    Path("x.txt").write_text("given")
    Path("secret.txt").write_text("not the step's")
    wf = Workflow("link-to-input")
    link = Step("link", PythonOPTemplate(LinkInput), artifacts={"x": upload_artifact("x.txt")})
    read = Step("read", PythonOPTemplate(ReadBack), artifacts={"d": link.outputs.artifacts["out"]})
    outside = Step("outside", PythonOPTemplate(LinkInput), artifacts={
        "x": upload_artifact("x.txt")}, parameters={"outside": str(Path("secret.txt").absolute())},
        continue_on_failed=True)
    wf.add(link)
    wf.add([read, outside])
    wf.submit()
    assert wf.wait(timeout=120) == "Succeeded"
    done = wf.query_step(name="read")[0]
    assert done.outputs.parameters["text"].value == "given"
    assert done.outputs.parameters["link"].value is False
    failed = wf.query_step(name="outside")[0]
    assert failed.phase == "Failed"
    assert "output artifact 'out': artifact path 'out/elsewhere.txt' is a symlink to" in \
        failed.reason
    assert "\n" not in failed.reason


class WhoAmI(OP):
    @classmethod
    def get_input_sign(cls) -> OPIOSign:
        return OPIOSign()

    @classmethod
    def get_output_sign(cls) -> OPIOSign:
        return OPIOSign({"key": Parameter(str | None), "workflow": str})

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        return OPIO({"key": self.key, "workflow": self.workflow_name})


def test_an_op_knows_its_step_key_and_workflow(hpc_home: Path) -> None:
    """dflow sets ``op.key`` (the step's key, None without one) and ``op.workflow_name``
    (the workflow's id) before ``execute``."""
    assert WhoAmI().key is None and WhoAmI().workflow_name is None
    wf = Workflow("who-am-i")
    wf.add([Step("keyed", PythonOPTemplate(WhoAmI), key="who-1"),
            Step("plain", PythonOPTemplate(WhoAmI))])
    wf.submit()
    assert wf.wait(timeout=120) == "Succeeded"
    keyed = wf.query_step(name="keyed")[0].outputs.parameters
    plain = wf.query_step(name="plain")[0].outputs.parameters
    assert (keyed["key"].value, keyed["workflow"].value) == ("who-1", wf.id)
    assert (plain["key"].value, plain["workflow"].value) == (None, wf.id)


def test_signs_as_dflow_builds_them() -> None:
    assert not hasattr(Parameter(int), "default")
    assert Parameter(int, default=None).default is None
    assert Artifact(Path, "tar").archive == "tar"  # dflow's order: type, archive, save, ...
    assert Artifact(Path, None, None, True).optional
    assert Artifact(Path, description="kept").description == "kept"  # type: ignore[attr-defined]
    with pytest.raises(WorkflowDefinitionError, match=r"Artifact\(save=...\) is not supported"):
        Artifact(Path, save=["somewhere"])
    with pytest.raises(WorkflowDefinitionError, match="output_artifact_save= is not supported"):
        PythonOPTemplate(LinkInput, output_artifact_save={"out": ["somewhere"]})
    templ = PythonOPTemplate(WhoAmI, output_parameter_global_name={"key": "the-key"})
    assert templ.outputs.parameters["key"].global_name == "the-key"


class FailTimes(OP):
    """Fails the first ``times`` attempts (counted in a file), then succeeds."""

    @classmethod
    def get_input_sign(cls) -> OPIOSign:
        return OPIOSign({"counter": str, "times": int})

    @classmethod
    def get_output_sign(cls) -> OPIOSign:
        return OPIOSign({"attempts": int})

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        counter = Path(op_in["counter"])
        attempts = int(counter.read_text()) + 1 if counter.exists() else 1
        counter.write_text(str(attempts))
        if attempts <= op_in["times"]:
            raise RuntimeError(f"attempt {attempts} fails")
        return OPIO({"attempts": attempts})


def test_retry_on_failure_error_and_both(hpc_home: Path) -> None:
    """dflow's retry_on_failure (Argo's OnFailure), retry_on_error (OnError: not an OP's
    exception) and retry_on_failure_and_error (Always)."""
    wf = Workflow("retry-policies")
    here = Path.cwd()
    wf.add([
        Step("on-failure", PythonOPTemplate(FailTimes, retry_on_failure=1),
             parameters={"counter": str(here / "a"), "times": 1}),
        Step("always", PythonOPTemplate(FailTimes, retry_on_failure_and_error=2),
             parameters={"counter": str(here / "b"), "times": 2}),
        Step("on-error", PythonOPTemplate(FailTimes, retry_on_error=3),
             parameters={"counter": str(here / "c"), "times": 1}, continue_on_failed=True),
    ])
    wf.submit()
    assert wf.wait(timeout=180) == "Succeeded"
    outs = {n: wf.query_step(name=n)[0] for n in ("on-failure", "always", "on-error")}
    assert outs["on-failure"].outputs.parameters["attempts"].value == 2
    assert outs["always"].outputs.parameters["attempts"].value == 3
    assert outs["on-error"].phase == "Failed"
    assert (here / "c").read_text() == "1"  # an OP's exception is a failure, not an error


@OP.function
def double(x: int) -> {"y": int}:
    return {"y": 2 * x}


def test_slices_given_as_dflows_per_name_dicts(hpc_home: Path) -> None:
    """``input_parameter_slices=``/``output_parameter_slices=`` (what ``Slices`` stands
    for in dflow) slice the step as ``Slices`` does (they were ignored)."""
    wf = Workflow("slices-dicts")
    templ = PythonOPTemplate(double, input_parameter_slices={"x": "{{item}}"},
                             output_parameter_slices={"y": "{{item}}"})
    wf.add(Step("double", templ, parameters={"x": [1, 2, 3]}, with_param=argo_range(3)))
    wf.submit()
    assert wf.wait(timeout=120) == "Succeeded"
    assert wf.query_step(name="double")[0].outputs.parameters["y"].value == [2, 4, 6]
    with pytest.raises(WorkflowDefinitionError, match="different slice expressions"):
        PythonOPTemplate(double, input_parameter_slices={"x": "{{item}}"},
                         output_parameter_slices={"y": "{{item.order}}"})


class Pair(NamedTuple):
    total: int
    label: str


class Out(TypedDict):
    y: int


@OP.function
def split(x: int, extra: Artifact(Path) = None) -> Pair:
    return Pair(x + 1, f"n{x}-{extra is None}")


@OP.function
def inc(x: int) -> int:
    return x + 1


@OP.function
def both(x: int) -> Tuple[int, str]:
    return x * 10, str(x)


@OP.function
def typed(x: int, label: str) -> Out:
    return {"y": x + len(label)}


def test_function_op_return_forms_as_dflow(hpc_home: Path) -> None:
    """``-> NamedTuple``, ``-> int`` (output ``dflow_output``), ``-> Tuple[...]``
    (``dflow_output_0``...), ``-> TypedDict``; a call in a block returns the same form; an
    artifact argument defaulting to None is optional."""
    assert split.get_input_sign()["extra"].optional
    assert list(both.get_output_sign()) == ["dflow_output_0", "dflow_output_1"]
    assert dict(inc(x=1)) == {"dflow_output": 2}  # outside a block: the OPIO, as dflow
    with Workflow("function-forms") as wf:
        total, _label = split(x=1)
        y = inc(x=total)
        a, b = both(x=y)
        typed(x=a, label=b)
    assert wf.wait(timeout=180) == "Succeeded"
    outputs = {name: p.value for s in wf.query_step() if s.phase == "Succeeded"
               for name, p in s.outputs.parameters.items()}
    assert outputs == {"total": 2, "label": "n1-True", "dflow_output": 3,
                       "dflow_output_0": 30, "dflow_output_1": "3", "y": 31}


def test_constants_read_as_dflow_reads_its_text_parameters(hpc_home: Path) -> None:
    """dflow's parameters travel as text: a ``str`` sign given 3 gets ``"3"``, an ``int``
    sign given ``"3"`` gets 3 (both were refused at submission); ``"one"`` for an ``int``
    is still refused there (dflow would fail the step decoding it)."""
    wf = Workflow("text-constants")
    wf.add(Step("typed", PythonOPTemplate(typed), parameters={"x": "3", "label": 10}))
    wf.submit()
    assert wf.wait(timeout=120) == "Succeeded"
    assert wf.query_step(name="typed")[0].outputs.parameters["y"].value == 5
    bad = Workflow("text-constants-bad")
    bad.add(Step("typed", PythonOPTemplate(typed), parameters={"x": "one", "label": "a"}))
    with pytest.raises(WorkflowDefinitionError, match="expects int, got str 'one'"):
        bad.submit()


class Extra(OP):
    @classmethod
    def get_input_sign(cls) -> OPIOSign:
        return OPIOSign({"x": int})

    @classmethod
    def get_output_sign(cls) -> OPIOSign:
        return OPIOSign({"y": int})

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        return OPIO({"y": op_in["x"], "z": 1})


def test_exec_sign_check_refuses_undeclared_names(hpc_home: Path) -> None:
    """As dflow's ``exec_sign_check``: an undeclared output fails the step, naming it."""
    with pytest.raises(OPSignError, match="input 'w' is not declared in its input sign"):
        Extra().execute(OPIO({"x": 1, "w": 2}))
    wf = Workflow("undeclared")
    wf.add(Step("extra", PythonOPTemplate(Extra), parameters={"x": 1}))
    wf.submit()
    assert wf.wait(timeout=120) == "Failed"
    reason = wf.query_step(name="extra")[0].reason
    assert "output 'z' is not declared in its output sign (it declares: y)" in reason


def test_function_op_func_and_use(hpc_home: Path) -> None:
    """dflow's ``f.func`` (the plain function) and ``f.use(key=...)`` (the Task's own
    arguments for the calls it makes)."""
    assert inc.func(1) == 2
    with Workflow("function-use") as wf:
        y = inc.use(key="inc-first")(x=1)
        inc(x=y)
    assert wf.wait(timeout=120) == "Succeeded"
    first = wf.query_step(key="inc-first")
    assert [s.outputs.parameters["dflow_output"].value for s in first] == [2]
    assert sorted(s.outputs.parameters["dflow_output"].value for s in wf.query_step()
                  if s.phase == "Succeeded" and "dflow_output" in s.outputs.parameters) == [2, 3]


class AbstractBase(OP, ABC):
    """dflow's ``OP`` is an ``ABC``: applications mix ``ABC`` in for their own bases."""

    @abstractmethod
    def factor(self) -> int: ...

    @classmethod
    def get_input_sign(cls) -> OPIOSign:
        return OPIOSign({"x": int})

    @classmethod
    def get_output_sign(cls) -> OPIOSign:
        return OPIOSign({"y": int})

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        return OPIO({"y": op_in["x"] * self.factor()})


class Triple(AbstractBase):
    def factor(self) -> int:
        return 3


def as_template(op: object) -> PythonOPTemplate:
    """How dflow applications tell an OP object (an ``@OP.function`` is one) from a class."""
    if isinstance(op, OP):
        return PythonOPTemplate(op)
    raise TypeError(f"not an OP: {op!r}")


def test_a_function_op_is_an_instance_of_op(hpc_home: Path) -> None:
    """``isinstance(f, OP)`` for an ``@OP.function`` ``f`` (dflow's ``f`` is an OP
    instance); ``PythonOPTemplate(f)``, ``f.get_input_sign()`` and calls work as before."""
    assert isinstance(double, OP) and isinstance(inc.use(key="k"), OP)
    assert not isinstance(Triple, OP) and isinstance(Triple(), OP)
    assert not isinstance(len, OP) and not isinstance(3, OP)
    assert list(double.get_input_sign()) == ["x"] and double(x=2) == {"y": 4}
    with pytest.raises(TypeError):
        AbstractBase()
    wf = Workflow("function-isinstance")
    first = Step("double", as_template(double), parameters={"x": 2})
    wf.add(first)
    wf.add(Step("triple", as_template(Triple()), parameters={"x": first.outputs.parameters["y"]}))
    wf.submit()
    assert wf.wait(timeout=120) == "Succeeded"
    assert wf.query_step(name="triple")[0].outputs.parameters["y"].value == 12


class Root(OP):
    @classmethod
    def get_input_sign(cls) -> OPIOSign:
        return OPIOSign({"whole": Artifact(Path, sub_path=False), "one": Artifact(Path)})

    @classmethod
    def get_output_sign(cls) -> OPIOSign:
        return OPIOSign({"whole": list, "one": str})

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        return OPIO({"whole": sorted(p.name for p in op_in["whole"].iterdir()),
                     "one": op_in["one"].read_text()})


def test_sub_path_false_hands_the_artifacts_folder(hpc_home: Path) -> None:
    Path("a.txt").write_text("A")
    wf = Workflow("sub-path-false")
    art = upload_artifact("a.txt")
    wf.add(Step("root", PythonOPTemplate(Root), artifacts={"whole": art, "one": art}))
    wf.submit()
    assert wf.wait(timeout=120) == "Succeeded"
    out = wf.query_step(name="root")[0].outputs.parameters
    assert (out["whole"].value, out["one"].value) == (["a.txt"], "A")
