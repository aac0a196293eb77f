"""dflow's semantics of loops, slices, keys and reuse, through the engine, written as dflow
users write them: a loop over a Steps or a DAG, a loop over nothing, tasks that are final
when a DAG makes them, Slices without with_param, keys that resolve to what the key rule would
refuse, and a resubmission that reuses every step query_step() returns."""

from pathlib import Path
from typing import List

import pytest

from hpcflow import (
    DAG,
    InputParameter,
    OutputParameter,
    Step,
    Steps,
    Task,
    Workflow,
    argo_range,
    upload_artifact,
)
from hpcflow.python import OP, Artifact, PythonOPTemplate, Slices


@OP.function
def double(x: int) -> {"y": int}:
    return {"y": 2 * x}


@OP.function
def write(x: int) -> {"y": int, "file": Artifact(Path)}:
    Path(f"out{x}.txt").write_text(f"made {x}")
    return {"y": x, "file": Path(f"out{x}.txt")}


@OP.function
def maybe_write(x: int) -> {"file": Artifact(Path, optional=True)}:
    return {"file": None}


@OP.function
def pair(x: int) -> {"files": Artifact(List[Path])}:
    for suffix in "ab":
        Path(f"{x}{suffix}.txt").write_text(f"{x}{suffix}")
    return {"files": [Path(f"{x}a.txt"), Path(f"{x}b.txt")]}


@OP.function
def gather(ys: List[int], files: Artifact(List[Path])) -> {"n": int, "texts": List[str]}:
    assert isinstance(files, list), files
    return {"n": len(ys), "texts": [Path(f).read_text() for f in files]}


@OP.function
def pick(xs: object) -> {"y": object}:
    return {"y": xs}


def _doubling(kind: str) -> Steps | DAG:
    """A Steps (or DAG) that doubles its input twice."""
    inner = Steps("twice") if kind == "steps" else DAG("twice")
    inner.inputs.parameters["x"] = InputParameter()
    make = Step if kind == "steps" else Task
    first = make("first", PythonOPTemplate(double), parameters={"x": inner.inputs.parameters["x"]})
    second = make("second", PythonOPTemplate(double),
                  parameters={"x": first.outputs.parameters["y"]})
    if kind == "steps":
        inner.add(first)
        inner.add(second)
    else:
        inner.add([first, second])
    inner.outputs.parameters["y"] = OutputParameter(
        value_from_parameter=second.outputs.parameters["y"])
    return inner


@pytest.mark.parametrize("kind", ["steps", "dag"])
def test_a_loop_over_a_steps_or_dag_template_runs(hpc_home, kind) -> None:
    wf = Workflow(f"loop-{kind}")
    loop = Step("loop", _doubling(kind), parameters={"x": "{{item}}"}, with_param=argo_range(3))
    wf.add(loop)
    wf.add(Step("after", PythonOPTemplate(pick), parameters={"xs": loop.outputs.parameters["y"]}))
    wf.submit()
    assert wf.wait(timeout=90) == "Succeeded"
    assert wf.query_step(name="after")[0].outputs.parameters["y"].value == [0, 4, 8]
    items = [s for s in wf.query_step(name="loop") if s.type != "StepGroup"]
    assert [s.phase for s in items] == ["Succeeded"] * 3
    assert len(wf.query_step(name="second", type="Pod")) == 3


@pytest.mark.parametrize("loop", [{"with_param": []},
                                  {"slices": Slices(input_parameter=["x"],
                                                    output_parameter=["y"],
                                                    output_artifact=["file"])}])
def test_a_loop_over_nothing_gives_empty_outputs(hpc_home, loop) -> None:
    wf = Workflow("empty-loop")
    params = {"x": [] if "slices" in loop else "{{item}}"}
    none = Step("none", PythonOPTemplate(write), parameters=params, **loop)
    wf.add(none)
    wf.add(Step("use", PythonOPTemplate(gather),
                parameters={"ys": none.outputs.parameters["y"]},
                artifacts={"files": none.outputs.artifacts["file"]}))
    wf.submit()
    assert wf.wait(timeout=60) == "Succeeded"
    assert wf.query_step(name="none")[0].outputs.parameters["y"].value == []
    use = wf.query_step(name="use")[0].outputs.parameters
    assert (use["n"].value, use["texts"].value) == (0, [])


def test_an_optional_output_no_item_made_is_an_empty_artifact(hpc_home) -> None:
    wf = Workflow("no-optional")
    loop = Step("loop", PythonOPTemplate(maybe_write), parameters={"x": "{{item}}"},
                with_param=argo_range(2))
    wf.add(loop)
    wf.add(Step("use", PythonOPTemplate(gather), parameters={"ys": []},
                artifacts={"files": loop.outputs.artifacts["file"]}))
    wf.submit()
    assert wf.wait(timeout=60) == "Succeeded"
    assert wf.query_step(name="use")[0].outputs.parameters["texts"].value == []


def _dag_with_final_tasks(gate: Path) -> Workflow:
    """``made`` (keyed, reused on resubmission), ``skipped`` (when false) and ``empty`` (a
    loop over nothing) are final as soon as the DAG makes them; the tasks after them read
    their outputs in the same planning pass."""
    dag = DAG("final-at-birth")
    made = Task("made", PythonOPTemplate(write), parameters={"x": 3}, key="made")
    skipped = Task("skipped", PythonOPTemplate(double), parameters={"x": 1}, when="1 > 2")
    empty = Task("empty", PythonOPTemplate(double), parameters={"x": "{{item}}"},
                 with_param=[])
    after_made = Task("after-made", PythonOPTemplate(gather),
                      parameters={"ys": [made.outputs.parameters["y"]]},
                      artifacts={"files": made.outputs.artifacts["file"]})
    after_skipped = Task("after-skipped", PythonOPTemplate(pick),
                         parameters={"xs": skipped.inputs.parameters["x"]})
    after_empty = Task("after-empty", PythonOPTemplate(pick),
                       parameters={"xs": empty.outputs.parameters["y"]})
    dag.add([made, skipped, empty, after_made, after_skipped, after_empty])
    wf = Workflow("dag-final")
    wf.add(Step("dag", dag))
    return wf


def test_tasks_final_when_made_are_seen_by_the_tasks_after_them(hpc_home, tmp_path) -> None:
    first = _dag_with_final_tasks(tmp_path / "gate")
    first.submit()
    assert first.wait(timeout=60) == "Succeeded"
    again = _dag_with_final_tasks(tmp_path / "gate")
    again.submit(reuse_step=first.query_step())  # every step, most without a key
    assert again.wait(timeout=60) == "Succeeded"
    made = again.query_step(key="made")[0]
    assert made.reason.startswith(f"reused from {first.id}/")
    results = {name: again.query_step(name=name)[0].outputs.parameters
               for name in ("after-made", "after-skipped", "after-empty")}
    assert results["after-made"]["texts"].value == ["made 3"]
    assert results["after-skipped"]["y"].value == 1
    assert results["after-empty"]["y"].value == []


@OP.function
def echo(x: object) -> {"y": object}:
    return {"y": x}


def test_keys_are_labels_once_resolved(hpc_home) -> None:
    """dflow checks a key as written; what it resolves to (here '--prep-train' from an empty
    default, 'evo-[1, 2]' from a list item) is a label it keeps, and so does hpcflow."""
    block = Steps("block")
    block.inputs.parameters["block_id"] = InputParameter(value="")
    block.add(Step("prep", PythonOPTemplate(echo), parameters={"x": 1},
                   key="{{inputs.parameters.block_id}}--prep-train"))
    wf = Workflow("key-labels")
    wf.add(Step("block", block))
    wf.add(Step("evo", PythonOPTemplate(echo), parameters={"x": "{{item}}"},
                with_param=[[1, 2], [3]], key="evo-{{item}}"))
    wf.submit()
    assert wf.wait(timeout=60) == "Succeeded"
    assert wf.query_step(key="--prep-train")[0].outputs.parameters["y"].value == 1
    assert [s.outputs.parameters["y"].value for s in wf.query_step(key="evo-[1, 2]")] == [[1, 2]]
    assert sorted(wf.query_keys_of_steps()) == ["--prep-train", "evo-[1, 2]", "evo-[3]"]


@OP.function
def texts_of(files: Artifact(List[Path])) -> {"texts": List[str]}:
    return {"texts": [Path(f).read_text() for f in files]}


@OP.function
def tagged(x: int, tag: object) -> {"y": int, "tag": object}:
    return {"y": 2 * x, "tag": tag}


def test_slices_as_dflow_reads_them(hpc_home) -> None:
    """Without with_param a sliced step loops over its first sliced input; a slices text is
    pasted into code (``int('{{item}}')``); in a group each slice takes its own item while
    the group's ``{{item}}`` is its number; lists a loop makes arrive as one flat list."""
    for i in range(3):
        Path(f"in{i}.txt").write_text(f"in {i}")
    art = upload_artifact([f"in{i}.txt" for i in range(3)], archive=None)
    wf = Workflow("slices-dflow")
    implicit = Step("implicit", PythonOPTemplate(double, slices=Slices(
        input_parameter=["x"], output_parameter=["y"])), parameters={"x": [5, 6, 7]})
    by_artifact = Step("by-artifact", PythonOPTemplate(texts_of, slices=Slices(
        input_artifact=["files"], output_parameter=["texts"])), artifacts={"files": art})
    pasted = Step("pasted", PythonOPTemplate(double, slices=Slices(
        "int('{{item}}')", input_parameter=["x"], output_parameter=["y"])),
        parameters={"x": [1, 2, 3]}, with_param=["2", "0"])
    grouped = Step("grouped", PythonOPTemplate(tagged, slices=Slices(
        input_parameter=["x"], output_parameter=["y", "tag"], group_size=2)),
        parameters={"x": [0, 1, 2, 3, 4], "tag": "{{item}}"}, with_param=argo_range(5),
        key="grouped-{{item}}")
    pairs = Step("pairs", PythonOPTemplate(pair), parameters={"x": "{{item}}"},
                 with_param=argo_range(2))
    wf.add([implicit, by_artifact, pasted, grouped, pairs])
    flat = Step("flat", PythonOPTemplate(texts_of),
                artifacts={"files": pairs.outputs.artifacts["files"]})
    wf.add(flat)
    wf.submit()
    assert wf.wait(timeout=90) == "Succeeded"

    def out(name: str, output: str) -> object:
        step = next(s for s in wf.query_step(name=name) if s.type in ("StepGroup", "Pod"))
        return step.outputs.parameters[output].value

    assert out("implicit", "y") == [10, 12, 14]
    assert out("by-artifact", "texts") == [["in 0"], ["in 1"], ["in 2"]]
    assert out("pasted", "y") == [6, 2]
    assert out("grouped", "y") == [0, 2, 4, 6, 8]
    assert out("grouped", "tag") == [0, 0, 1, 1, 2]  # the group's number, as in dflow
    assert sorted(s.key for s in wf.query_step(name="grouped", type="Pod")) == [
        "grouped-0", "grouped-1", "grouped-2"]
    assert out("flat", "texts") == ["0a", "0b", "1a", "1b"]


def _sliced_writes() -> Workflow:
    wf = Workflow("modified-slice")
    writes = Step("writes", PythonOPTemplate(write, slices=Slices(
        input_parameter=["x"], output_parameter=["y"], output_artifact=["file"])),
        parameters={"x": [0, 1, 2]}, key="write-{{item}}")
    wf.add(writes)
    wf.add(Step("read", PythonOPTemplate(texts_of),
                artifacts={"files": writes.outputs.artifacts["file"]}))
    return wf


def test_a_slice_modified_with_a_positional_list_replaces_that_slice(hpc_home) -> None:
    first = _sliced_writes()
    first.submit()
    assert first.wait(timeout=60) == "Succeeded"
    assert first.query_step(name="read")[0].outputs.parameters["texts"].value == [
        "made 0", "made 1", "made 2"]
    Path("new.txt").write_text("replaced 1")
    steps = first.query_step()
    [one] = [s for s in steps if s.key == "write-1"]
    one.modify_output_artifact("file", upload_artifact([None, "new.txt"]))
    again = _sliced_writes()
    again.submit(reuse_step=steps)
    assert again.wait(timeout=60) == "Succeeded"
    assert again.query_step(name="read")[0].outputs.parameters["texts"].value == [
        "made 0", "replaced 1", "made 2"]


def test_slices_of_a_steps_template_and_when_per_item(hpc_home) -> None:
    """Slices on a step whose template is a Steps (dflow's ``dflow_slice``) loop over the
    sliced input; ``when`` on a looped step is decided per item, as Argo does."""
    wf = Workflow("slices-steps")
    sliced = Step("sliced", _doubling("steps"), parameters={"x": [1, 2, 3]},
                  slices=Slices(input_parameter=["x"], output_parameter=["y"]))
    some = Step("some", PythonOPTemplate(double), parameters={"x": "{{item}}"},
                with_param=argo_range(4), when="{{item}} >= 2")
    wf.add([sliced, some])
    wf.submit()
    assert wf.wait(timeout=90) == "Succeeded"
    group = wf.query_step(name="sliced", type="StepGroup")[0]
    assert group.outputs.parameters["y"].value == [4, 8, 12]
    items = sorted(wf.query_step(name="some", type="Pod"), key=lambda s: s.name)
    assert [s.phase for s in items] == ["Skipped", "Skipped", "Succeeded", "Succeeded"]
