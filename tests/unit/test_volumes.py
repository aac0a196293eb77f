"""dflow's shared volumes (``step.outputs.artifacts[NAME].pvc()``): what the spec keeps, what
it refuses at submission in one line, and how a step's output is copied into its volume
(``daemon/volumes.py``). The run itself: ``tests/e2e/test_dflow_volumes.py``."""

from pathlib import Path

import pytest

from hpcflow import (
    ArgoExecutor,
    DispatcherExecutor,
    InputArtifact,
    OutputArtifact,
    ShellOPTemplate,
    SlurmExecutor,
    Step,
    Workflow,
)
from hpcflow.daemon.volumes import save_to_volumes, volume_path
from hpcflow.errors import WorkflowDefinitionError
from hpcflow.io import PVC
from hpcflow.python import OP, Artifact, PythonOPTemplate
from hpcflow.spec import build_spec


def _producer() -> ShellOPTemplate:
    hello = ShellOPTemplate(name="hello", image="alpine", script="echo Hello > /tmp/bar.txt")
    hello.outputs.artifacts = {"bar": OutputArtifact(path="/tmp/bar.txt")}
    return hello


def _consumer(path: str | None = "/tmp/foo.txt") -> ShellOPTemplate:
    echo = ShellOPTemplate(name="echo", image="alpine", script="cat /tmp/foo.txt")
    echo.inputs.artifacts = {"foo": InputArtifact(path=path)}
    return echo


def _spec(wf: Workflow) -> dict:
    assert wf.entry is not None
    return build_spec(wf.name, wf.entry)[0]


def test_a_volume_input_names_the_volume_and_adds_no_dependency():
    """dflow's async example: the reading step runs beside the writing one."""
    wf = Workflow("async")
    hello = Step("hello", _producer())
    claim = hello.outputs.artifacts["bar"].pvc()
    echo = Step("echo", _consumer(), artifacts={"foo": claim})
    wf.add([hello, echo])
    steps = _spec(wf)["templates"][wf.entry.name]["steps"][0]
    by_name = {s["name"]: s for s in steps}
    assert isinstance(claim, PVC) and claim.name == "public"
    assert by_name["hello"]["volume_saves"] == {
        "bar": [{"name": "public", "subpath": claim.subpath}]}
    assert by_name["echo"]["artifacts"]["foo"] == {
        "volume": {"name": "public", "subpath": claim.subpath}}
    assert by_name["echo"]["dependencies"] == []
    assert "volume_saves" not in by_name["echo"]  # a step without .pvc() keeps its spec


@OP.function
def writes() -> {"bar": Artifact(Path)}:
    Path("bar.txt").write_text("x")
    return {"bar": Path("bar.txt")}


@OP.function
def reads(foo: Artifact(Path)) -> {"n": int}:
    return {"n": len(Path(foo).read_text())}


def _refused(wf: Workflow, words: str) -> None:
    with pytest.raises(WorkflowDefinitionError) as caught:
        _spec(wf)
    assert words in str(caught.value) and "\n" not in str(caught.value), caught.value


def test_a_python_op_is_refused_on_either_side_as_dflow_refuses_it():
    wf = Workflow("py-save")
    op = Step("op", PythonOPTemplate(writes))
    claim = op.outputs.artifacts["bar"].pvc()
    wf.add([op, Step("echo", _consumer(), artifacts={"foo": claim})])
    _refused(wf, "step 'op': output artifact 'bar' goes through a volume (.pvc()), which only "
             "a script template")

    wf = Workflow("py-read")
    hello = Step("hello", _producer())
    claim = hello.outputs.artifacts["bar"].pvc()
    wf.add([hello, Step("op", PythonOPTemplate(reads), artifacts={"foo": claim})])
    _refused(wf, "step 'op': input artifact 'foo' goes through a volume")


def test_an_input_without_a_path_is_refused():
    wf = Workflow("no-path")
    hello = Step("hello", _producer())
    claim = hello.outputs.artifacts["bar"].pvc()
    wf.add([hello, Step("echo", _consumer(path=None), artifacts={"foo": claim})])
    _refused(wf, "input artifact 'foo' comes from a volume (.pvc()) and needs a path")



@pytest.mark.parametrize("executor, kind", [
    (lambda: ArgoExecutor(cluster="k8s"), "argo"),
    (lambda: DispatcherExecutor(machine_dict={"batch_type": "Slurm", "context_type": "Local",
                                              "local_root": "/tmp", "remote_root": "/tmp"}),
     "dispatcher"),
])
def test_a_step_offloaded_or_dispatched_cannot_share_a_volume(executor, kind):
    """Argo runs it in a pod, dpdispatcher in a directory of each submission's own."""
    wf = Workflow("offloaded")
    hello = Step("hello", _producer(), executor=executor())
    claim = hello.outputs.artifacts["bar"].pvc()
    wf.add([hello, Step("echo", _consumer(), artifacts={"foo": claim})])
    _refused(wf, f"step 'hello': a volume (.pvc()) is a directory its steps share on one "
             f"machine, and this step runs through {kind!r} executor")


def test_the_reader_runs_on_the_writers_machine():
    wf = Workflow("two-machines")
    hello = Step("hello", _producer())
    claim = hello.outputs.artifacts["bar"].pvc()
    wf.add([hello, Step("echo", _consumer(), artifacts={"foo": claim},
                        executor=SlurmExecutor(machine="hpc"))])
    _refused(wf, "step 'echo': input artifact 'foo' comes through a volume (.pvc()) from step "
             "'hello', which runs on another machine (local, not hpc)")
    wf = Workflow("one-machine")
    hello = Step("hello", _producer(), executor=SlurmExecutor(machine="hpc"))
    claim = hello.outputs.artifacts["bar"].pvc()
    wf.add([hello, Step("echo", _consumer(), artifacts={"foo": claim},
                        executor=SlurmExecutor(machine="hpc", partition="debug"))])
    assert _spec(wf)  # the same machine, other resources: fine


@pytest.mark.parametrize("name, subpath", [("public", "../../x"), ("a/b", "x"), ("public", ""),
                                           ("..", "x"), ("public", "-rf")])
def test_a_volume_made_by_hand_must_name_plain_files(name, subpath):
    wf = Workflow("by-hand")
    wf.add(Step("echo", _consumer(), artifacts={"foo": PVC(name, subpath)}))
    _refused(wf, "step 'echo' artifact 'foo': volume ")


def test_pvc_of_an_input_is_refused():
    step = Step("echo", _consumer(), artifacts={"foo": PVC("public", "x")})
    with pytest.raises(WorkflowDefinitionError, match="this is an input"):
        step.inputs.artifacts["foo"].pvc()


def test_an_output_is_copied_into_its_volume_whole_and_a_retry_replaces_it(tmp_path: Path):
    step_dir = tmp_path / "wf" / "hello-2"
    step_dir.mkdir(parents=True)
    produced_file = step_dir / "bar.txt"
    produced_file.write_text("Hello\n")
    produced_dir = step_dir / "out"
    (produced_dir / "sub").mkdir(parents=True)
    (produced_dir / "sub" / "a").write_text("a")
    saves = {"bar": [{"name": "public", "subpath": "bar-1"}],
             "out": [{"name": "public", "subpath": "out-1"}, {"name": "other", "subpath": "o"}]}
    save_to_volumes(saves, {"bar": produced_file, "out": produced_dir}, step_dir)
    volume = tmp_path / "wf" / "volumes"
    assert (volume / "public" / "bar-1").read_text() == "Hello\n"
    assert (volume / "public" / "out-1" / "sub" / "a").read_text() == "a"
    assert (volume / "other" / "o" / "sub" / "a").read_text() == "a"
    assert sorted(p.name for p in (volume / "public").iterdir()) == ["bar-1", "out-1"]  # no tmp
    (produced_dir / "sub" / "a").unlink()
    (produced_dir / "b").write_text("b")
    save_to_volumes(saves, {"bar": produced_file, "out": produced_dir}, step_dir)  # a retry
    assert sorted(p.name for p in (volume / "public" / "out-1").iterdir()) == ["b", "sub"]
    assert not (volume / "public" / "out-1" / "sub" / "a").exists()
    # the reading step's path: in the same volume, made for it if the writer has not run yet
    assert volume_path(tmp_path / "wf" / "echo-3", {"name": "late", "subpath": "x"}) == \
        volume / "late" / "x"
    assert (volume / "late").is_dir()


def test_a_writer_to_a_volume_runs_again_where_it_would_be_reused():
    """Reuse (``resubmit --reuse-succeeded``, ``reuse_step``) gives a step its old outputs
    without running it; a writer to a volume would then leave its readers waiting on an
    empty volume: it runs instead. A step beside it with the same reuse is reused."""
    from hpcflow.daemon.planner import Node, plan_container, root_step

    wf = Workflow("reuse")
    hello = Step("hello", _producer(), key="hello")
    plain = Step("plain", _producer(), key="plain")
    claim = hello.outputs.artifacts["bar"].pvc()
    wf.add([hello, plain, Step("echo", _consumer(), artifacts={"foo": claim})])
    spec = _spec(wf)
    r = root_step(spec)
    root = Node(1, r.slot, r.name, r.template, r.type, r.phase, r.inputs, None, r.spec)
    old = {"from": "reuse-old", "outputs": {"parameters": {}, "artifacts": {}}}
    made = {a.name: a for a in plan_container(root, spec["templates"], [], {
        "reuse": {"hello": old, "plain": old}})}
    assert made["plain"].phase == "Succeeded" and made["plain"].reason == "reused from reuse-old"
    assert made["hello"].phase == "Pending" and made["hello"].reason is None
    assert made["echo"].phase == "Pending"
